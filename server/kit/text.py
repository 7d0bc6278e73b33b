"""Refusing NUL characters at the door.

PostgreSQL text cannot hold U+0000 (SQLite can), so a NUL in a query string, a form or a JSON
body would reach the database and fail there. Refusing it up front gives the client a 422
that names the problem on every backend alike.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from fastapi import Request
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema

from .errors import InvalidRequestError

# A JSON "\u0000" escape: one not itself escaped (an even run of backslashes before it).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _in_address(raw: bytes) -> bool:
    return b"\x00" in raw or b"%00" in raw


def _in_json(raw: bytes) -> bool:
    return b"\x00" in raw or _JSON_NUL.search(raw) is not None


async def refuse_nul_characters(request: Request) -> None:
    """App-wide dependency: 422 when the path, query, a JSON body or a form holds a NUL."""
    where = None
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if _in_address(request.url.path.encode()) or _in_address(request.url.query.encode()):
        where = "the address"
    # FastAPI has already read the body or the form before dependencies run; both are cached.
    elif content_type == "application/json" and _in_json(await request.body()):
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


# Cc: control characters (tab, newline, NUL, ...); Zl/Zp: line and paragraph separators.
_FORBIDDEN_CATEGORIES = {"Cc", "Zl", "Zp"}
# Bidirectional overrides and isolates: they make a name display as something else
# ("txt.exe" shown as "exe.txt"), a known spoofing trick in names others see.
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def _one_line(value: str, max_length: int) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    if len(value) > max_length:
        raise ValueError(f"must be at most {max_length} characters")
    if any(unicodedata.category(c) in _FORBIDDEN_CATEGORIES for c in value):
        raise ValueError("must not contain control characters such as tabs or line breaks")
    if any(c in _BIDI_CONTROLS for c in value):
        raise ValueError("must not contain right-to-left or left-to-right override characters")
    return value


class OneLine:
    """Annotated metadata for a name people see (a person's, a project's, a tag): one line,
    trimmed, not blank, at most ``max_length`` characters after trimming.

    ``Annotated[str, OneLine(200)]``.
    """

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            lambda value: _one_line(value, self.max_length), handler(source)
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        json_schema = dict(handler(schema))
        json_schema.update(minLength=1, maxLength=self.max_length)
        return json_schema


def file_size(n_bytes: int) -> str:
    """A size for people: "1.5 GB", "320.0 KB", "12 bytes"."""
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{n_bytes} bytes"
