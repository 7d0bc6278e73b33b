"""Domain errors and their one mapping to ``application/problem+json`` (RFC 9457).

Every error body has ``type``, ``title``, ``status``, ``detail`` and a stable ``code``
that clients branch on; ``detail`` is for people and says what to do.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError
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

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(ProblemError):
    status = HTTPStatus.NOT_FOUND
    code = "not_found"
    title = "Not found"


class ServiceUnavailableError(ProblemError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "service_unavailable"
    title = "Service unavailable"


class InvalidRequestError(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "invalid_request"
    title = "Invalid request"


class Problem(BaseModel):
    """The error body, for the OpenAPI schema."""

    type: str
    title: str
    status: int
    detail: str
    code: str


def problem_responses(*errors: type[ProblemError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for an endpoint that may raise ``errors`` (plus invalid bodies)."""
    codes_by_status: dict[int, list[str]] = {}
    documented: list[type[ProblemError]] = [*errors, InvalidRequestError]
    for error in documented:
        codes_by_status.setdefault(int(error.status), []).append(f"`{error.code}`: {error.title}")
    return {
        status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": "; ".join(codes)}
        for status, codes in codes_by_status.items()
    }


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


async def _on_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    response = problem_response(exc.status, exc.code, exc.title, exc.detail)
    response.headers.update(exc.headers)
    return response


async def _on_invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(p) for p in error["loc"] if p != "body"),
            "message": str(error["msg"]).removeprefix("Value error, "),
        }
        for error in exc.errors()
    ]
    fields = sorted({e["field"] for e in errors if e["field"]})
    named = " and ".join([", ".join(fields[:-1]), fields[-1]] if len(fields) > 1 else fields)
    return problem_response(
        InvalidRequestError.status,
        InvalidRequestError.code,
        InvalidRequestError.title,
        f"Fix {named or 'the request body'} and send the request again.",
        errors=errors,
    )


_HTTP_CODES = {
    HTTPStatus.NOT_FOUND: ("not_found", "There is nothing at this address."),
    HTTPStatus.METHOD_NOT_ALLOWED: (
        "method_not_allowed",
        "This address does not take that method.",
    ),
}


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    # Starlette raises these for unknown routes and wrong methods, before any endpoint runs.
    assert isinstance(exc, StarletteHTTPException)
    status = HTTPStatus(exc.status_code)
    code, detail = _HTTP_CODES.get(status, (status.name.lower(), str(exc.detail)))
    response = problem_response(status, code, status.phrase, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _on_data_error(_request: Request, exc: Exception) -> JSONResponse:
    # A value the database cannot store (out of range, bad text) that validation let through:
    # the client's input, answered as such instead of a 500; logged so the gap gets closed.
    log.warning("database refused a value", exc_info=exc)
    return problem_response(
        InvalidRequestError.status,
        InvalidRequestError.code,
        InvalidRequestError.title,
        "A value in the request is out of range or not valid text; fix it and send the "
        "request again.",
    )


async def _on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return problem_response(
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
    app.add_exception_handler(Exception, _on_unexpected)
