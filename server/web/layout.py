"""What every signed-in page shares: the signed-in user, the CSRF token, the navigation,
the plan badge and the billing banner, and one way to answer with the page's headers.

A page route takes ``page: SignedInPage``; a visitor who is not signed in never reaches
the route (they are sent to /signin?next=<this page>), and a POST without the session's
CSRF token is refused with the 403 page before the route runs::

    @router.get("/renders")
    def renders(page: SignedInPage) -> Response:
        return page.render("render_list.html", nav="renders", renders=...)

    @router.post("/renders/{render_id}/cancel")
    def cancel(render_id: uuid.UUID, page: SignedInPage) -> Response:
        ...  # the token was checked already
        return page.redirect(f"/renders/{render_id}")
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, Request, Response, status
from fastapi.responses import RedirectResponse
from notefall.common.tiers import limits_for
from notefall.server.accounts.models import User
from notefall.server.accounts.router import SignIn
from notefall.server.accounts.sign_in import Authenticated
from notefall.server.billing.schemas import Banner
from notefall.server.billing.service import BillingService
from notefall.server.billing.stripe_gateway import StripeGateway
from notefall.server.kit.settings import Settings
from sqlalchemy.orm import Session

from .pages import finish, page_csrf_token, render, signed_in
from .session import submitted_csrf_token

Clock = Callable[[], datetime]
Nav = Literal["dashboard", "renders", "billing", "account", ""]


class SignInRequired(Exception):
    """Raised by ``signed_in_page`` for a visitor without a live sign-in; answered with a
    redirect to the sign-in page, which comes back to ``next_path`` afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def signin_location(next_path: str) -> str:
    return f"/signin?next={quote(next_path, safe='')}"


def billing_banner(session: Session, settings: Settings, user: User, clock: Clock) -> Banner | None:
    """The billing service's banner (a failed or unconfirmed payment), asked of our rows only."""
    service = BillingService(
        session,
        settings,
        gateway=lambda: StripeGateway(settings),  # banner() never asks Stripe
        clock=clock,
        count=lambda _name: None,
    )
    return service.banner(user)


class Page:
    """A signed-in page being answered."""

    def __init__(
        self,
        request: Request,
        session: Session,
        current: Authenticated,
        csrf_token: str,
        scratch: Response,
    ) -> None:
        self.request = request
        self.session = session  # the request's database session (the route's services share it)
        self.current = current
        self.csrf_token = csrf_token
        # Collects the refreshed sign-in cookie, copied onto whatever the route answers.
        self._scratch = scratch

    @property
    def user(self) -> User:
        return self.current.user

    @property
    def settings(self) -> Settings:
        return self.request.app.state.settings

    def context(self, nav: Nav = "") -> dict[str, Any]:
        """What base.html needs: user, csrf_token, nav, plan, plan_tier and banner."""
        return {
            "user": self.user,
            "csrf_token": self.csrf_token,
            "nav": nav,
            "plan": limits_for(self.user.tier).title,
            "plan_tier": str(self.user.tier),
            "banner": billing_banner(
                self.session, self.settings, self.user, self.request.app.state.clock
            ),
        }

    def render(
        self, template: str, *, nav: Nav = "", status_code: int = 200, **context: Any
    ) -> Response:
        """The template with the common context and the page headers (no-store, CSP, ...)."""
        page = render(self.request, template, status_code, **{**self.context(nav), **context})
        return self.finish(page)

    def redirect(self, url: str) -> Response:
        """303 See Other (after a POST: the browser GETs ``url``), keeping the cookie."""
        return self.finish(RedirectResponse(url, status.HTTP_303_SEE_OTHER))

    def finish(self, response: Response) -> Response:
        """Any other answer (a download, JSON for fetch()) with the refreshed cookie."""
        return finish(response, self._scratch)


def signed_in_page(
    request: Request,
    sign_in: SignIn,
    csrf_token: Annotated[str | None, Depends(submitted_csrf_token)],
) -> Page:
    """The signed-in page, or SignInRequired; changes without the CSRF token raise
    CsrfFailedError (the 403 page)."""
    scratch = Response()
    current = signed_in(request, sign_in, scratch, csrf_token)
    if current is None:
        path = request.url.path
        if request.method == "GET" and request.url.query:
            path += "?" + request.url.query
        raise SignInRequired(path)
    return Page(request, sign_in.session, current, page_csrf_token(sign_in, current), scratch)


SignedInPage = Annotated[Page, Depends(signed_in_page)]
