"""Errors on browser pages answered as pages (404, 403, 500, ...), not problem+json.

The API's handlers (kit/errors.py) stay the one place that decides status and wording; for
a page request their answer is re-dressed as HTML with the same status and message. API
addresses keep problem+json whatever the browser asks for.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from .account_pages import FORM_EXPIRED
from .errors import CsrfFailedError
from .layout import SignInRequired, signin_location
from .pages import error_page

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]

NOT_FOUND_MESSAGE = (
    "There is nothing at this address. Check the link, or go back to your dashboard."
)
STARLETTE_NOT_FOUND = "There is nothing at this address."
# What a page says for each status; anything else shows the handler's title.
HEADINGS = {
    HTTPStatus.NOT_FOUND: "Page not found",
    HTTPStatus.FORBIDDEN: "Not allowed",
    HTTPStatus.INTERNAL_SERVER_ERROR: "Something went wrong",
}
# Headers of the API's answer that still mean something on a page.
KEPT_HEADERS = ("retry-after", "allow")
# Not pages, whatever the Accept header says: files, static assets, the API.
NOT_PAGES = ("/files/", "/static/", "/metrics")


def is_page_request(request: Request, api_prefix: str) -> bool:
    """True for a browser page: a route of the page routers (left out of the OpenAPI
    schema, outside the API prefix), or an unknown address a browser asked HTML for."""
    path = request.url.path
    if path == api_prefix or path.startswith((api_prefix + "/", *NOT_PAGES)):
        return False
    route = request.scope.get("route")
    if isinstance(route, APIRoute):
        return not route.include_in_schema
    return "text/html" in request.headers.get("accept", "")


def _bad_path(exc: Exception) -> bool:
    # /projects/not-an-id: for a person that is a page that does not exist.
    return isinstance(exc, RequestValidationError) and any(
        error["loc"][:1] == ("path",) for error in exc.errors()
    )


def _as_page(request: Request, answer: Response, exc: Exception) -> Response:
    code = answer.status_code
    try:
        body: dict[str, Any] = json.loads(bytes(answer.body))
    except ValueError:
        body = {}
    if _bad_path(exc):
        code, body = HTTPStatus.NOT_FOUND, {}
    detail = body.get("detail") or HTTPStatus(code).description
    # Starlette's "nothing at this address" speaks of requests; a person wants a way on.
    if code == HTTPStatus.NOT_FOUND and body.get("detail") in (None, STARLETTE_NOT_FOUND):
        detail = NOT_FOUND_MESSAGE
    if isinstance(exc, RequestValidationError) and code != HTTPStatus.NOT_FOUND:
        errors = body.get("errors") or []
        fields = ", ".join(sorted({e["field"] for e in errors if e.get("field")}))
        detail = (
            f"The form could not be used as sent ({fields or 'its fields'}); go back, check "
            "it and send it again."
        )
    heading = HEADINGS.get(HTTPStatus(code), body.get("title") or HTTPStatus(code).phrase)
    if isinstance(exc, CsrfFailedError):
        # The API's words name headers and endpoints; a person only needs to reload.
        detail = FORM_EXPIRED
    page = error_page(request, code, heading, detail)
    for name in KEPT_HEADERS:
        if name in answer.headers:
            page.headers[name] = answer.headers[name]
    return page


def _for_pages(handler: Handler, api_prefix: str) -> Handler:
    async def answer(request: Request, exc: Exception) -> Response:
        response = handler(request, exc)
        if inspect.isawaitable(response):
            response = await response
        assert isinstance(response, Response)
        if not is_page_request(request, api_prefix):
            return response
        return _as_page(request, response, exc)

    return answer


async def _to_signin(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(signin_location(exc.next_path), status.HTTP_303_SEE_OTHER)


def install_error_pages(app: FastAPI, api_prefix: str) -> None:
    """Call after the API's handlers are installed: it wraps each of them."""
    for key, handler in list(app.exception_handlers.items()):
        app.exception_handlers[key] = _for_pages(handler, api_prefix)
    app.add_exception_handler(SignInRequired, _to_signin)
