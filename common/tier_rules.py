"""What a plan allows a render to be: checked by the API at submit, re-applied by the worker.

The worker never trusts what it is handed: it runs ``apply_tier_rules`` again with the
owner's tier, so a row edited by hand or a client that skipped the API still gets the
watermark and the caps of its plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import PlanLimitError
from .settings import RESOLUTIONS, RenderSettings
from .tiers import TierLimits


@dataclass(frozen=True, slots=True)
class PlanProblem:
    code: str  # stable, machine-readable: resolution_not_in_plan, ...
    message: str  # says what the plan allows and what to do


def _upgrade_hint(limits: TierLimits) -> str:
    return "" if limits.tier == "enterprise" else " Upgrade your plan for more."


def plan_problems(
    settings: RenderSettings, limits: TierLimits, video_seconds: float | None = None
) -> list[PlanProblem]:
    """Every way ``settings`` (and a video of ``video_seconds``) exceed ``limits``."""
    problems: list[PlanProblem] = []
    hint = _upgrade_hint(limits)
    width, height = settings.size
    cap = limits.max_video_height
    # The shorter side bounds the height class (a vertical 1080x1920 is "1080p"), and the
    # pixel count bounds odd shapes (4096x720 is not "720p" work).
    if min(width, height) > cap or width * height > cap * cap * 16 // 9:
        problems.append(
            PlanProblem(
                "resolution_not_in_plan",
                f"{width}x{height} is above the {limits.max_resolution_label} your "
                f"{limits.title} plan renders; choose {cap}p or lower.{hint}",
            )
        )
    if settings.fps > limits.max_fps:
        problems.append(
            PlanProblem(
                "frame_rate_not_in_plan",
                f"{settings.fps} fps is above the {limits.max_fps} fps your {limits.title} "
                f"plan renders; choose {limits.max_fps} fps or fewer.{hint}",
            )
        )
    if settings.format.value not in limits.formats:
        problems.append(
            PlanProblem(
                "format_not_in_plan",
                f"{settings.format.value.upper()} is not included in your {limits.title} plan; "
                f"choose {' or '.join(f.upper() for f in limits.formats)}.{hint}",
            )
        )
    if settings.transparent and not limits.transparent_video:
        problems.append(
            PlanProblem(
                "transparency_not_in_plan",
                f"Transparent video is not included in your {limits.title} plan; turn "
                f"transparency off.{hint}",
            )
        )
    if video_seconds is not None and video_seconds > limits.max_video_minutes * 60:
        problems.append(
            PlanProblem(
                "video_too_long_for_plan",
                f"This video would last {video_seconds / 60:.1f} minutes; your {limits.title} "
                f"plan renders up to {limits.max_video_minutes} minutes. Set start and end to "
                f"render a part of the song.{hint}",
            )
        )
    return problems


def apply_tier_rules(
    settings: RenderSettings, limits: TierLimits, video_seconds: float | None = None
) -> RenderSettings:
    """``settings`` as the plan renders them (the watermark forced where the plan has one);
    raises ``PlanLimitError`` naming the first problem when the plan does not allow them."""
    problems = plan_problems(settings, limits, video_seconds)
    if problems:
        raise PlanLimitError(problems[0].message, code=problems[0].code)
    if limits.watermark and not settings.watermark:
        return settings.model_copy(update={"watermark": True})
    return settings


def plan_defaults(given: Mapping[str, Any], limits: TierLimits) -> dict[str, Any]:
    """Values for the output fields ``given`` leaves unset whose defaults the plan does not
    render (1080p and 30 fps are the defaults): the best the plan offers instead. A field
    the user did set is never changed here; ``plan_problems`` refuses it if it is too much."""
    defaults: dict[str, Any] = {}
    default = RenderSettings.model_validate({})
    if "resolution" not in given and min(default.size) > limits.max_video_height:
        label = f"{limits.max_video_height}p"
        if label in RESOLUTIONS:
            defaults["resolution"] = label
    if "fps" not in given and default.fps > limits.max_fps:
        defaults["fps"] = limits.max_fps
    return defaults
