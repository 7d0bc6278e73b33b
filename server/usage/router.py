"""HTTP endpoints of the usage domain: /api/v1/usage."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter
from notefall.common.tiers import limits_for
from notefall.server.accounts.errors import InvalidAccessTokenError
from notefall.server.accounts.router import Current, RequestSession
from notefall.server.kit.errors import problem_responses

from .schemas import TierLimitsOut, Usage
from .service import UsageService

router = APIRouter(
    prefix="/usage", tags=["usage"], responses=problem_responses(InvalidAccessTokenError)
)


@router.get("", summary="Your stored bytes, your quota and the limits of your plan")
def get_usage(current: Current, session: RequestSession) -> Usage:
    limits = limits_for(current.user.tier)
    fields = dataclasses.asdict(limits)
    fields.pop("tier")
    return Usage(
        tier=str(limits.tier),
        storage_bytes=UsageService(session).stored_bytes(current.user.id),
        storage_quota_bytes=limits.storage_quota_bytes,
        limits=TierLimitsOut(**fields),
    )
