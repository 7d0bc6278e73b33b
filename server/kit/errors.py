"""Domain errors and their one mapping to ``application/problem+json`` (RFC 9457).

Every error body has ``type``, ``title``, ``status``, ``detail`` and a stable ``code``
that clients branch on; ``detail`` is for people and says what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any, ClassVar, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.params import Form
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("notefall.server")


def problem_type(code: str) -> str:
    # A URN: stable and unique per code, with no promise of a page behind it.
    return f"urn:notefall:problem:{code}"


class ProblemError(Exception):
    """Base of every error the API reports on purpose; subclasses fix status, code and title."""

    status: ClassVar[int] = HTTPStatus.BAD_REQUEST
    # Not a ClassVar: an error relayed from the engine carries the engine's own code.
    code: str = "bad_request"
    title: ClassVar[str] = "Bad request"
    # Extra response headers, e.g. WWW-Authenticate on a 401.
    headers: ClassVar[dict[str, str]] = {}
    # True for errors that must not undo what led to them (a reused refresh token revokes
    # its session): the request's changes are committed before the error is answered.
    keeps_changes: ClassVar[bool] = False
    # The RFC 6749 §5.2 ``error`` name this answers with at the token endpoint, when it is not
    # the code itself (see ``oauth_error_name``).
    oauth_error: ClassVar[str | None] = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        # Extra members of this answer's body (e.g. ``upgrade_url`` on a plan limit).
        self.members: dict[str, Any] = {}


class NotFoundError(ProblemError):
    status = HTTPStatus.NOT_FOUND
    code = "not_found"
    title = "Not found"


class ServiceUnavailableError(ProblemError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "service_unavailable"
    title = "Service unavailable"


class DatabaseBusyError(ServiceUnavailableError):
    code = "database_busy"
    title = "Database busy"


class InvalidRequestError(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "invalid_request"
    title = "Invalid request"


class Problem(BaseModel):
    """The error body, for the OpenAPI schema (answers may add members such as ``errors``)."""

    type: str
    title: str
    status: int
    detail: str
    code: str


# Inlined rather than a $ref: a response without "model" is the only way FastAPI leaves its
# content alone, and with "model" it also declares the error under application/json.
_PROBLEM_SCHEMA = Problem.model_json_schema()


def problem_responses(*errors: type[ProblemError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for an endpoint that may raise ``errors`` (plus invalid bodies)."""
    by_status: dict[int, list[type[ProblemError]]] = {}
    documented: list[type[ProblemError]] = [*errors, InvalidRequestError]
    for error in documented:
        by_status.setdefault(int(error.status), []).append(error)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, same_status in by_status.items():
        first = same_status[0]
        example = {
            "type": problem_type(first.code),
            "title": first.title,
            "status": status,
            "detail": "What went wrong and what to do about it.",
            "code": first.code,
        }
        responses[status] = {
            "description": "; ".join(f"`{error.code}`: {error.title}" for error in same_status),
            "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA, "example": example}},
        }
    return responses


Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
_OAUTH_MARK = "_notefall_oauth_token_endpoint"
# RFC 6749 §5.2 names that are also our codes: such an error needs no ``oauth_error``.
_OAUTH_ERROR_NAMES = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    }
)


def oauth_token_endpoint(endpoint: Endpoint) -> Endpoint:
    """Marks an OAuth2 token endpoint: its errors also carry RFC 6749 §5.2 ``error`` and
    ``error_description``, which OAuth clients (Swagger UI's Authorize dialog) show."""
    setattr(endpoint, _OAUTH_MARK, True)
    return endpoint


def oauth_error_name(code: str, status: int, oauth_error: str | None = None) -> str:
    if oauth_error is not None:
        return oauth_error
    if code in _OAUTH_ERROR_NAMES:
        return code
    # Beyond §5.2's list: the names OAuth servers commonly give a busy or broken server.
    if status in (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE):
        return "temporarily_unavailable"
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return "server_error"
    return "invalid_request"


def _route(request: Request) -> APIRoute | None:
    route = request.scope.get("route")
    return route if isinstance(route, APIRoute) else None


def _at_token_endpoint(request: Request) -> bool:
    route = _route(request)
    return route is not None and getattr(route.endpoint, _OAUTH_MARK, False)


def problem_response(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": problem_type(code),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _answer(
    request: Request,
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    oauth_error: str | None = None,
    **extra: Any,
) -> JSONResponse:
    if _at_token_endpoint(request):
        extra["error"] = oauth_error_name(code, status, oauth_error)
        extra["error_description"] = detail
    return problem_response(status, code, title, detail, **extra)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    response = _answer(
        request,
        exc.status,
        exc.code,
        exc.title,
        exc.detail,
        oauth_error=exc.oauth_error,
        **getattr(exc, "members", {}),
    )
    response.headers.update(exc.headers)
    return response


SEND_JSON = "send a JSON object as the body, with Content-Type: application/json"
_NOT_AN_OBJECT = frozenset({"model_type", "model_attributes_type", "dict_type", "missing"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _form_fields(request: Request) -> list[str] | None:
    """The field names of the route's form body, or None when it does not take a form."""
    route = _route(request)
    body = route.body_field if route is not None else None
    if body is None or not isinstance(body.field_info, Form):
        return None
    model = body.field_info.annotation
    fields = getattr(model, "model_fields", None)
    return list(fields) if fields else [body.name]


def _whole_body_problem(
    request: Request, errors: Sequence[Any], body: Any
) -> tuple[str, str] | None:
    """(detail, message) when the body as a whole is unusable, else None."""
    for error in errors:
        if error["type"] == "json_invalid" and isinstance(body, str):
            position = error["loc"][1] if len(error["loc"]) > 1 else 0
            line = body.count("\n", 0, position) + 1
            column = position - body.rfind("\n", 0, position)
            where = f"{error['ctx']['error']} at line {line}, column {column}"
            return (
                f"The request body is not valid JSON ({where}); fix it and {SEND_JSON}.",
                f"Not valid JSON: {where}",
            )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    form_fields = _form_fields(request)
    if form_fields is not None:
        if content_type in _FORM_TYPES:
            return None
        shown = ", ".join(form_fields[:3]) + (" …" if len(form_fields) > 3 else "")
        sent = content_type or "no Content-Type"
        return (
            f"This address takes application/x-www-form-urlencoded form fields ({shown}), "
            f"not {sent}; send them as a form.",
            "Not a form",
        )
    if any(e["type"] in _NOT_AN_OBJECT and tuple(e["loc"]) == ("body",) for e in errors):
        return f"The request body is not a JSON object; {SEND_JSON}.", "Not a JSON object"
    return None


async def _on_invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    oauth_error = (
        "unsupported_grant_type"
        if any(
            e["type"] == "literal_error" and tuple(e["loc"]) == ("body", "grant_type") for e in raw
        )
        else None
    )
    whole = _whole_body_problem(request, raw, exc.body)
    if whole is not None:
        detail, message = whole
        return _answer(
            request,
            InvalidRequestError.status,
            InvalidRequestError.code,
            InvalidRequestError.title,
            detail,
            errors=[{"field": "", "message": message}],
        )
    errors = [
        {
            "field": ".".join(str(p) for p in error["loc"] if p != "body"),
            "message": str(error["msg"]).removeprefix("Value error, "),
        }
        for error in raw
    ]
    fields = sorted({e["field"] for e in errors if e["field"]})
    named = " and ".join([", ".join(fields[:-1]), fields[-1]] if len(fields) > 1 else fields)
    if not named:
        # A rule over several fields (e.g. what a grant type needs): its message is the news.
        named = f"the request body ({'; '.join(e['message'] for e in errors)})"
    return _answer(
        request,
        InvalidRequestError.status,
        InvalidRequestError.code,
        InvalidRequestError.title,
        f"Fix {named} and send the request again.",
        oauth_error=oauth_error,
        errors=errors,
    )


_HTTP_CODES = {
    # FastAPI's answer to a body it cannot parse at all, e.g. a broken multipart upload.
    HTTPStatus.BAD_REQUEST: (
        "bad_request",
        "The request body could not be read (a broken form or upload); check the "
        "Content-Type and send the request again.",
    ),
    HTTPStatus.NOT_FOUND: ("not_found", "There is nothing at this address."),
    HTTPStatus.METHOD_NOT_ALLOWED: (
        "method_not_allowed",
        "This address does not take that method.",
    ),
}


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    # Starlette raises these for unknown routes and wrong methods, before any endpoint runs.
    assert isinstance(exc, StarletteHTTPException)
    status = HTTPStatus(exc.status_code)
    code, detail = _HTTP_CODES.get(status, (status.name.lower(), str(exc.detail)))
    response = _answer(request, status, code, status.phrase, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _on_data_error(request: Request, exc: Exception) -> JSONResponse:
    # A value the database cannot store (out of range, bad text) that validation let through:
    # the client's input, answered as such instead of a 500; logged so the gap gets closed.
    log.warning("database refused a value", exc_info=exc)
    return _answer(
        request,
        InvalidRequestError.status,
        InvalidRequestError.code,
        InvalidRequestError.title,
        "A value in the request is out of range or not valid text; fix it and send the "
        "request again.",
    )


async def _on_pool_timeout(request: Request, exc: Exception) -> JSONResponse:
    # Every database connection stayed busy for the pool's timeout: a load peak, not a bug.
    # 503 with Retry-After lets clients back off instead of reporting an internal error.
    log.warning("no database connection became free in time: %s", exc)
    response = _answer(
        request,
        DatabaseBusyError.status,
        DatabaseBusyError.code,
        DatabaseBusyError.title,
        "The server is busier than it can answer right now; try again in a few seconds.",
    )
    response.headers["Retry-After"] = "5"
    return response


async def _on_operational_error(request: Request, exc: Exception) -> JSONResponse:
    # SQLite's single writer stayed busy past its timeout, or a read transaction's write met
    # a newer commit: like a full pool, a moment of load the client can retry.
    if "database is locked" in str(exc):
        return await _on_pool_timeout(request, exc)
    return await _on_unexpected(request, exc)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return _answer(
        request,
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "internal_error",
        "Internal server error",
        "Something went wrong on our side; try again, and tell us if it keeps happening.",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_invalid_request)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(DataError, _on_data_error)
    # SQLite's driver refuses an integer beyond 64 bits with a bare OverflowError where
    # PostgreSQL raises DataError: the same client mistake, the same answer.
    app.add_exception_handler(OverflowError, _on_data_error)
    app.add_exception_handler(PoolTimeoutError, _on_pool_timeout)
    app.add_exception_handler(OperationalError, _on_operational_error)
    app.add_exception_handler(Exception, _on_unexpected)
