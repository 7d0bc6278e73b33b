"""Refusing NUL characters at the door.

PostgreSQL text cannot hold U+0000 (SQLite can), so a NUL in a query string, a form or a JSON
body would reach the database and fail there. Refusing it up front gives the client a 422
that names the problem on every backend alike.
"""

from __future__ import annotations

from fastapi import Request

from .errors import InvalidRequestError


def _has_nul(raw: bytes) -> bool:
    lowered = raw.lower()
    return b"\x00" in raw or b"\\u0000" in lowered or b"%00" in lowered


async def refuse_nul_characters(request: Request) -> None:
    """App-wide dependency: 422 when the path, query, a JSON body or a form holds a NUL."""
    where = None
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if _has_nul(request.url.path.encode()) or _has_nul(request.url.query.encode()):
        where = "the address"
    # FastAPI has already read the body or the form before dependencies run; both are cached.
    elif content_type == "application/json" and _has_nul(await request.body()):
        where = "the request body"
    elif content_type == "application/x-www-form-urlencoded":
        form = await request.form()
        if any(isinstance(value, str) and "\x00" in value for value in form.values()):
            where = "the form"
    if where is not None:
        raise InvalidRequestError(
            f"{where.capitalize()} contains a NUL character (U+0000), which no text field can "
            "hold; remove it and send the request again."
        )
