"""Every model, imported so ``Base.metadata`` is complete (Alembic and tests read it here)."""

from notefall.server.accounts.models import (
    AuthSession,
    RecoveryCode,
    RefreshToken,
    SingleUseToken,
    TwoFactor,
    User,
)
from notefall.server.activity.models import ActivityEvent
from notefall.server.billing.models import BillingCustomer, Invoice, Subscription, WebhookEvent
from notefall.server.kit.models import Base
from notefall.server.oauth.models import AuthorizationCode
from notefall.server.profile.models import DataExport, UserProfile
from notefall.server.projects.models import Collaborator, Project, ProjectTag, ShareLink
from notefall.server.renders.models import Render, RenderStep
from notefall.server.usage.models import ChargedFile
from notefall.server.web.models import BrowserSession

__all__ = [
    "ActivityEvent",
    "AuthSession",
    "AuthorizationCode",
    "Base",
    "BillingCustomer",
    "BrowserSession",
    "ChargedFile",
    "Collaborator",
    "DataExport",
    "Invoice",
    "Project",
    "ProjectTag",
    "RecoveryCode",
    "RefreshToken",
    "Render",
    "RenderStep",
    "ShareLink",
    "SingleUseToken",
    "Subscription",
    "TwoFactor",
    "User",
    "UserProfile",
    "WebhookEvent",
]
