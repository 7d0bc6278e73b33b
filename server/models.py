"""Every model, imported so ``Base.metadata`` is complete (Alembic and tests read it here)."""

from notefall.server.accounts.models import (
    AuthSession,
    EmailVerificationToken,
    PasswordResetToken,
    RefreshToken,
    User,
)
from notefall.server.activity.models import ActivityEvent
from notefall.server.kit.models import Base
from notefall.server.projects.models import Project

__all__ = [
    "ActivityEvent",
    "AuthSession",
    "Base",
    "EmailVerificationToken",
    "PasswordResetToken",
    "Project",
    "RefreshToken",
    "User",
]
