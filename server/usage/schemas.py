"""Response bodies of the usage API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class TierLimitsOut(BaseModel):
    title: str
    monthly_price_cents: int
    renders_per_month: int | None = Field(description="null: unlimited")
    max_video_height: int
    watermark: bool
    max_fps: int
    formats: list[str] = Field(description="container formats a render may use")
    transparent_video: bool
    max_video_minutes: int = Field(description="the longest video one render may produce")
    priority: int
    concurrent_renders: int
    max_midi_bytes: int
    max_audio_bytes: int
    storage_quota_bytes: int
    retention_days: int
    api_requests_per_minute: int


class RenderUsageOut(BaseModel):
    used_this_month: int = Field(
        description="renders queued, running or succeeded this month (UTC); failed and "
        "cancelled ones do not count"
    )
    monthly_limit: int | None = Field(description="null: unlimited")
    running: int = Field(description="renders queued or running now")
    concurrent_limit: int
    resets_at: datetime = Field(description="the first day of next month, UTC")


class Usage(BaseModel):
    tier: str
    storage_bytes: int = Field(description="bytes of your stored files (MIDI, audio, ...)")
    storage_quota_bytes: int
    renders: RenderUsageOut
    limits: TierLimitsOut
