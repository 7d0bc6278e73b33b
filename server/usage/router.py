"""HTTP endpoints of the usage domain: /api/v1/usage."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Request
from notefall.common.tiers import limits_for
from notefall.server.accounts.errors import InvalidAccessTokenError
from notefall.server.accounts.router import Current, RequestSession
from notefall.server.kit.errors import problem_responses
from notefall.server.renders.service import render_usage

from .schemas import RenderUsageOut, TierLimitsOut, Usage
from .service import UsageService

router = APIRouter(
    prefix="/usage", tags=["usage"], responses=problem_responses(InvalidAccessTokenError)
)


@router.get("", summary="Your stored bytes and renders this month against the limits of your plan")
def get_usage(request: Request, current: Current, session: RequestSession) -> Usage:
    limits = limits_for(current.user.tier)
    fields = dataclasses.asdict(limits)
    fields.pop("tier")
    renders = render_usage(session, current.user, request.app.state.clock())
    return Usage(
        tier=str(limits.tier),
        storage_bytes=UsageService(session).stored_bytes(current.user.id),
        storage_quota_bytes=limits.storage_quota_bytes,
        renders=RenderUsageOut(
            used_this_month=renders.used,
            monthly_limit=renders.limit,
            running=renders.running,
            concurrent_limit=renders.concurrent_limit,
            resets_at=renders.resets_at,
        ),
        limits=TierLimitsOut(**fields),
    )
