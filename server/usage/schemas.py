"""Response bodies of the usage API."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TierLimitsOut(BaseModel):
    title: str
    monthly_price_cents: int
    renders_per_month: int | None = Field(description="null: unlimited")
    max_video_height: int
    watermark: bool
    priority: int
    concurrent_renders: int
    max_midi_bytes: int
    max_audio_bytes: int
    storage_quota_bytes: int
    retention_days: int
    api_requests_per_minute: int


class Usage(BaseModel):
    tier: str
    storage_bytes: int = Field(description="bytes of your stored files (MIDI, audio, ...)")
    storage_quota_bytes: int
    limits: TierLimitsOut
