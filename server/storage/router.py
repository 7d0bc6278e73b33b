"""``GET /files/{key}``: serves a local-storage file to whoever holds a signed, unexpired link.

Only local storage links here; S3 serves its own pre-signed links, so with S3 storage
every request to this route is refused like a bad link.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from notefall.server.kit.errors import NotFoundError, problem_responses

from .errors import InvalidFileLinkError
from .local import FILES_PATH, LocalStorage
from .storage import LINK_CACHE_CONTROL, content_disposition

router = APIRouter(prefix=FILES_PATH, tags=["files"])


@router.get(
    "/{key:path}",
    response_class=FileResponse,
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
    name: Annotated[
        str | None, Query(description="the download name the link was signed with")
    ] = None,
) -> FileResponse:
    storage = request.app.state.storage
    if (
        not isinstance(storage, LocalStorage)
        or expires is None
        or sig is None
        or not storage.verify(key, expires, sig, name)
    ):
        raise InvalidFileLinkError("This file link is invalid or has expired; ask for a new one.")
    if not storage.exists(key):
        raise NotFoundError("This file no longer exists.")
    # Browsers and proxies on the way must not keep it (the link is the credential) ...
    headers = {"Cache-Control": LINK_CACHE_CONTROL}
    if storage.edge_cached:
        # ... but the operator's CDN, whose cache key is the whole signed URL, may serve
        # this very link again (a player's Range requests) until it expires, never longer.
        # CDN-Cache-Control (RFC 9213) speaks to CDNs only and overrides Cache-Control there.
        headers["CDN-Cache-Control"] = f"max-age={storage.seconds_left(expires)}"
    if name is not None:
        headers["Content-Disposition"] = content_disposition(name)
    # FileResponse streams the file and answers Range requests (video players seek).
    return FileResponse(storage.path_of(key), headers=headers)
