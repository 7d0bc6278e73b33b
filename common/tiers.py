"""The one table of subscription tiers: every limit a plan sets lives here.

The server enforces these; the desktop app and browser pages only display them. A limit of
``None`` means unlimited.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MB = 1024 * 1024
GB = 1024 * MB


class Tier(StrEnum):
    FREE = "free"
    PRO = "pro"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True)
class TierLimits:
    tier: Tier
    title: str
    # Price in US cents per month; Stripe holds the real price, this is for display.
    monthly_price_cents: int
    renders_per_month: int | None
    # The tallest output, in pixels of the shorter side (720 = 1280x720, 2160 = 3840x2160).
    max_video_height: int
    watermark: bool
    # Frames per second, container formats and transparency a render may use.
    max_fps: int
    formats: tuple[str, ...]
    transparent_video: bool
    # The longest video one render may produce, in minutes.
    max_video_minutes: int
    # Celery queue priority: higher goes first.
    priority: int
    concurrent_renders: int
    max_midi_bytes: int
    max_audio_bytes: int
    storage_quota_bytes: int
    # Days a finished render's video (and a data export) is kept before cleanup.
    retention_days: int
    # Authenticated API requests per minute.
    api_requests_per_minute: int

    @property
    def max_resolution_label(self) -> str:
        return {720: "720p", 1080: "1080p", 1440: "1440p", 2160: "2160p (4K)"}.get(
            self.max_video_height, f"{self.max_video_height}p"
        )


TIERS: dict[Tier, TierLimits] = {
    Tier.FREE: TierLimits(
        tier=Tier.FREE,
        title="Free",
        monthly_price_cents=0,
        renders_per_month=5,
        max_video_height=720,
        watermark=True,
        max_fps=30,
        formats=("mp4", "webm"),
        transparent_video=False,
        max_video_minutes=10,
        priority=1,
        concurrent_renders=1,
        max_midi_bytes=2 * MB,
        max_audio_bytes=50 * MB,
        storage_quota_bytes=500 * MB,
        retention_days=7,
        api_requests_per_minute=60,
    ),
    Tier.PRO: TierLimits(
        tier=Tier.PRO,
        title="Pro",
        monthly_price_cents=999,
        renders_per_month=50,
        max_video_height=1080,
        watermark=False,
        max_fps=60,
        formats=("mp4", "webm", "mov"),
        transparent_video=True,
        max_video_minutes=30,
        priority=5,
        concurrent_renders=2,
        max_midi_bytes=8 * MB,
        max_audio_bytes=200 * MB,
        storage_quota_bytes=10 * GB,
        retention_days=30,
        api_requests_per_minute=300,
    ),
    Tier.ENTERPRISE: TierLimits(
        tier=Tier.ENTERPRISE,
        title="Enterprise",
        monthly_price_cents=2999,
        renders_per_month=None,
        max_video_height=2160,
        watermark=False,
        max_fps=60,
        formats=("mp4", "webm", "mov"),
        transparent_video=True,
        max_video_minutes=120,
        priority=9,
        concurrent_renders=4,
        max_midi_bytes=16 * MB,
        max_audio_bytes=500 * MB,
        storage_quota_bytes=100 * GB,
        retention_days=90,
        api_requests_per_minute=1200,
    ),
}


def limits_for(tier: Tier | str) -> TierLimits:
    """The limits of ``tier`` (a Tier or its name); an unknown name is a ValueError."""
    return TIERS[Tier(tier)]
