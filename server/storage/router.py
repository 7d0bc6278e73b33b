"""``GET /files/{key}``: serves a stored file to whoever holds a signed, unexpired link."""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from notefall.server.kit.errors import NotFoundError, problem_responses

from .errors import InvalidFileLinkError
from .storage import FILES_PATH, Storage

router = APIRouter(prefix=FILES_PATH, tags=["files"])


@router.get(
    "/{key:path}",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file"},
        **problem_responses(InvalidFileLinkError, NotFoundError),
    },
    summary="A stored file, through a signed link that expires",
)
def download(
    key: str,
    request: Request,
    expires: Annotated[int | None, Query()] = None,
    sig: Annotated[str | None, Query()] = None,
) -> Response:
    storage: Storage = request.app.state.storage
    if expires is None or sig is None or not storage.verify(key, expires, sig):
        raise InvalidFileLinkError("This file link is invalid or has expired; ask for a new one.")
    try:
        data = storage.get(key)
    except FileNotFoundError:
        raise NotFoundError("This file no longer exists.") from None
    media_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    # The link is the credential: keep it out of shared caches.
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, no-store"})
