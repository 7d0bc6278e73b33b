"""``GET /oauth/authorize`` and its consent form: the browser half of the desktop sign-in."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.responses import RedirectResponse
from notefall.server.accounts.router import SignIn
from notefall.server.web.errors import CsrfFailedError
from notefall.server.web.pages import (
    device_of,
    error_page,
    finish,
    page_csrf_token,
    render,
    signed_in,
)
from notefall.server.web.router import signin_redirect
from notefall.server.web.session import submitted_csrf_token

from .service import (
    AuthorizationRequestError,
    AuthorizationService,
    UntrustedRedirectError,
    check_authorization_request,
)

router = APIRouter(prefix="/oauth", include_in_schema=False)

AUTHORIZE_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "code_challenge",
    "code_challenge_method",
    "state",
    "scope",
)


def authorization_service(sign_in: SignIn) -> AuthorizationService:
    return AuthorizationService(sign_in.session, sign_in.settings, sign_in.clock)


Authorizations = Annotated[AuthorizationService, Depends(authorization_service)]


def _untrusted(request: Request, error: UntrustedRedirectError) -> Response:
    return error_page(request, status.HTTP_400_BAD_REQUEST, "Sign-in stopped", error.detail)


def _redirect(location: str) -> Response:
    # RFC 6749 §4.1.2: the answer goes back to the app as a plain redirect.
    return RedirectResponse(location, status.HTTP_302_FOUND)


@router.get("/authorize")
def authorize(request: Request, sign_in: SignIn) -> Response:
    params = {
        name: request.query_params[name]
        for name in AUTHORIZE_FIELDS
        if name in request.query_params
    }
    try:
        checked = check_authorization_request(params)
    except UntrustedRedirectError as error:
        return _untrusted(request, error)
    except AuthorizationRequestError as error:
        return _redirect(error.redirect_to)
    scratch = Response()
    current = signed_in(request, sign_in, scratch, None)
    if current is None:
        return signin_redirect(f"{request.url.path}?{urlencode(checked.as_fields())}")
    page = render(
        request,
        "consent.html",
        client=checked.client,
        user=current.user,
        csrf_token=page_csrf_token(sign_in, current),
        fields=checked.as_fields(),
        redirect_host=urlsplit(checked.redirect_uri).netloc,
    )
    return finish(page, scratch)


Field = Annotated[str | None, Form(max_length=2000)]


@router.post("/authorize")
def decide(
    request: Request,
    sign_in: SignIn,
    authorizations: Authorizations,
    csrf_token: Annotated[str | None, Depends(submitted_csrf_token)],
    decision: Annotated[str, Form(max_length=10)] = "",
    response_type: Field = None,
    client_id: Field = None,
    redirect_uri: Field = None,
    code_challenge: Field = None,
    code_challenge_method: Field = None,
    state: Field = None,
    scope: Field = None,
) -> Response:
    """The consent form's answer: Allow sends a code to the app, Deny says access_denied."""
    submitted = {
        "response_type": response_type,
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": code_challenge,
        "code_challenge_method": code_challenge_method,
        "state": state,
        "scope": scope,
    }
    try:
        checked = check_authorization_request(
            {name: value for name, value in submitted.items() if value is not None}
        )
    except UntrustedRedirectError as error:
        return _untrusted(request, error)
    except AuthorizationRequestError as error:
        return _redirect(error.redirect_to)
    scratch = Response()
    try:
        current = signed_in(request, sign_in, scratch, csrf_token)
    except CsrfFailedError as error:
        return error_page(request, status.HTTP_403_FORBIDDEN, "Sign-in stopped", error.detail)
    if current is None:
        return signin_redirect(f"{request.url.path}?{urlencode(checked.as_fields())}")
    if decision == "allow":
        return _redirect(authorizations.allow(current.user, checked, device_of(request)))
    return _redirect(authorizations.deny(checked))
