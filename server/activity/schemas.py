"""What GET /api/v1/me/activity returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ActivityOut(BaseModel):
    kind: str = Field(description="What happened, e.g. signed_in, password_changed, render_failed.")
    at: datetime
    ip: str | None
    user_agent: str | None
    detail: dict[str, Any]


class ActivityPage(BaseModel):
    items: list[ActivityOut]
    next_before: datetime | None = Field(
        description="Pass as `before` to read older events; null when there are none."
    )
