"""WebSocket ``/api/v1/renders/{id}/events``: a render's progress, live.

On connect the client gets a ``snapshot`` of the render from the database (the record of
truth) carrying the id of the render's last event at that moment, then every later event
of the render's Redis Stream (events.py), each with its stream ``id``. A client that
reconnects passes the last id it saw as ``?last_event_id=`` and resumes right after it.
When the render ends, the final event (or the snapshot of a finished render) is sent and
the socket closes with code 1000.

Authentication, in order: ``Authorization: Bearer`` header; ``?access_token=`` (browsers
cannot set headers on a WebSocket, but a token in a URL lands in proxy and server logs, so
pages should rely on the cookie); the browser's sign-in cookie (refused from a page of
another origin). Failures close the socket after accepting it, so that browsers see the
code: 4401 (not signed in), 4404 (no such render of yours).

If Redis does not answer, the render is still watchable: the row is polled every
POLL_SECONDS and a ``snapshot`` is sent whenever it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

import redis
import redis.asyncio as aioredis
from fastapi import FastAPI, Request, Response, WebSocket, WebSocketDisconnect
from notefall.server.accounts.errors import InvalidAccessTokenError
from notefall.server.accounts.sign_in import SignInService
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.web.session import SESSION_COOKIE, authenticate_cookie, same_origin
from starlette.concurrency import run_in_threadpool
from starlette.routing import WebSocketRoute

from . import keys
from .models import Render
from .states import TERMINAL, RenderStatus

log = logging.getLogger("notefall.server.renders.websocket")


# Close codes (4000-4999 are the application's own).
CLOSE_NORMAL = 1000
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
# A quiet render still gets a message this often, so proxies keep the socket open and the
# database is re-checked (a render whose final event Redis lost still ends the socket).
KEEPALIVE_SECONDS = 15.0
# One XREAD waits at most this long, so a client that left is noticed soon.
BLOCK_MILLISECONDS = 5000
POLL_SECONDS = 1.0


# Authentication ------------------------------------------------------------------------------


def _bearer(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return websocket.query_params.get("access_token") or None


def _owner_of_connection(websocket: WebSocket) -> uuid.UUID | None:
    """The signed-in user's id, or None (runs in a worker thread: the database is sync)."""
    app = websocket.app
    settings = app.state.settings
    token = _bearer(websocket)
    cookie = websocket.cookies.get(SESSION_COOKIE)
    with transaction_scope(app.state.database) as session:
        sign_in = SignInService(session, settings, app.state.clock)
        try:
            if token is not None:
                return sign_in.authenticate(token).user.id
            if cookie is None:
                return None
            # The handshake is a GET: the cookie path's rules for reads apply (no CSRF token),
            # but a page of another site must not watch with the user's cookie.
            request = Request({**websocket.scope, "type": "http", "method": "GET"})
            if not same_origin(request, settings.public_url):
                return None
            return authenticate_cookie(request, Response(), sign_in, cookie, None).user.id
        except InvalidAccessTokenError:
            return None


# Messages ------------------------------------------------------------------------------------


def _number(value: str | bytes | None) -> float | None:
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None


def snapshot_of(render: Render, event_id: str | None) -> dict[str, Any]:
    """The render as the database has it, in the shape of an event."""
    status = RenderStatus(render.status)
    error = None
    if render.error_code is not None:
        error = {"code": render.error_code, "message": render.error_message or ""}
    output = None
    if status is RenderStatus.SUCCEEDED:
        output = {
            "duration": render.output_duration,
            "bytes": render.output_bytes,
            "codec": render.output_codec,
            "width": render.width,
            "height": render.height,
            "fps": render.fps,
            "format": render.format,
            "download": f"/api/v1/renders/{render.id}/download",
        }
    return {
        "id": event_id,
        "type": "snapshot",
        "render_id": str(render.id),
        "status": status.value,
        "stage": render.stage,
        "percent": render.percent,
        "eta_seconds": render.eta_seconds,
        "message": render.error_message or "",
        "error": error,
        "segments": {"done": render.segments_done, "total": render.segment_count},
        "output": output,
    }


def event_message(event_id: str | bytes, fields: dict[Any, Any]) -> dict[str, Any]:
    """A stream entry as the client gets it: numbers as numbers, empty strings as null."""
    text = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }
    message: dict[str, Any] = {"id": event_id.decode() if isinstance(event_id, bytes) else event_id}
    for name, value in text.items():
        if name in ("percent", "eta_seconds"):
            message[name] = _number(value)
        elif name in ("stage", "error_code"):
            message[name] = value or None
        else:
            message[name] = value
    return message


def _is_final(message: dict[str, Any]) -> bool:
    status = message.get("status")
    return message.get("type") in ("state", "snapshot") and status in {s.value for s in TERMINAL}


# The socket ----------------------------------------------------------------------------------


def _load(database: Database, render_id: uuid.UUID) -> Render | None:
    with database.read_sessions() as session:
        return session.get(Render, render_id)


async def _last_event_id(client: aioredis.Redis, render_id: uuid.UUID) -> str:
    latest = await client.xrevrange(keys.events(render_id), count=1)
    if not latest:
        return "0-0"
    event_id = latest[0][0]
    return event_id.decode() if isinstance(event_id, bytes) else str(event_id)


async def _until_disconnect(websocket: WebSocket) -> None:
    """Returns when the client leaves; what it sends is ignored."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def render_events(websocket: WebSocket) -> None:
    render_id = str(websocket.path_params["render_id"])
    await websocket.accept()
    owner = await run_in_threadpool(_owner_of_connection, websocket)
    if owner is None:
        await websocket.close(
            CLOSE_UNAUTHENTICATED,
            "Sign in: send 'Authorization: Bearer <token>', ?access_token=, or the sign-in cookie",
        )
        return
    database: Database = websocket.app.state.database
    try:
        wanted = uuid.UUID(render_id)
    except ValueError:
        wanted = None
    render = None if wanted is None else await run_in_threadpool(_load, database, wanted)
    if render is None or render.owner_id != owner:
        await websocket.close(CLOSE_NOT_FOUND, "You have no render with this id; list yours first")
        return
    settings = websocket.app.state.settings
    client = (
        None
        if not settings.redis_url
        else aioredis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=2,
            socket_timeout=BLOCK_MILLISECONDS / 1000 + 5,
        )
    )
    try:
        await _stream(websocket, database, client, render)
    except WebSocketDisconnect:
        pass
    finally:
        if client is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                await client.aclose()


async def _stream(
    websocket: WebSocket, database: Database, client: aioredis.Redis | None, render: Render
) -> None:
    event_id: str | None = None
    if client is not None:
        try:
            # The id first, then the row: an event that lands in between is sent again
            # (harmless) rather than missed.
            event_id = await _last_event_id(client, render.id)
        except (redis.RedisError, OSError) as error:
            log.info(
                "events of render %s: Redis unavailable, polling the database: %s", render.id, error
            )
            client = None
        fresh = await run_in_threadpool(_load, database, render.id)
        render = fresh if fresh is not None else render
    snapshot = snapshot_of(render, event_id)
    await websocket.send_json(snapshot)
    if _is_final(snapshot):
        await websocket.close(CLOSE_NORMAL)
        return
    resume = websocket.query_params.get("last_event_id") or event_id
    receiver = asyncio.ensure_future(_until_disconnect(websocket))
    try:
        if client is not None and resume is not None:
            finished = await _follow(websocket, database, client, render.id, resume, receiver)
            if finished is None:
                return  # the client left
            if finished:
                await websocket.close(CLOSE_NORMAL)
                return
            # Redis stopped answering mid-way: keep the render watchable from the database.
        if await _poll(websocket, database, render.id, snapshot, receiver):
            await websocket.close(CLOSE_NORMAL)
    finally:
        receiver.cancel()


async def _follow(
    websocket: WebSocket,
    database: Database,
    client: aioredis.Redis,
    render_id: uuid.UUID,
    after: str,
    receiver: asyncio.Future[None],
) -> bool | None:
    """Send stream events after ``after``: True when the render ended, False when Redis
    failed, None when the client left."""
    stream = keys.events(render_id)
    quiet = 0.0
    while True:
        read = asyncio.ensure_future(
            client.xread({stream: after}, block=BLOCK_MILLISECONDS, count=100)
        )
        done, _ = await asyncio.wait({read, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if receiver in done:
            read.cancel()
            return None
        try:
            answer = read.result()
        except (redis.RedisError, OSError) as error:
            log.info(
                "events of render %s: Redis failed, polling the database: %s", render_id, error
            )
            return False
        if not answer:
            quiet += BLOCK_MILLISECONDS / 1000
            if quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                render = await run_in_threadpool(_load, database, render_id)
                if render is None:
                    return True
                snapshot = snapshot_of(render, after)
                if _is_final(snapshot):
                    await websocket.send_json(snapshot)
                    return True
                await websocket.send_json({"id": after, "type": "ping"})
            continue
        quiet = 0.0
        for _stream_name, entries in answer:
            for entry_id, fields in entries:
                message = event_message(entry_id, fields)
                after = message["id"]
                await websocket.send_json(message)
                if _is_final(message):
                    return True


async def _poll(
    websocket: WebSocket,
    database: Database,
    render_id: uuid.UUID,
    last: dict[str, Any],
    receiver: asyncio.Future[None],
) -> bool:
    """Without Redis: send a snapshot whenever the row changes; True when it ended."""
    sent = json.dumps({k: v for k, v in last.items() if k != "id"}, sort_keys=True)
    quiet = 0.0
    while True:
        try:
            await asyncio.wait_for(asyncio.shield(receiver), timeout=POLL_SECONDS)
            return False  # the client left
        except TimeoutError:
            pass
        render = await run_in_threadpool(_load, database, render_id)
        if render is None:
            return True
        snapshot = snapshot_of(render, last.get("id"))
        current = json.dumps({k: v for k, v in snapshot.items() if k != "id"}, sort_keys=True)
        quiet += POLL_SECONDS
        if current != sent:
            sent, quiet = current, 0.0
            await websocket.send_json(snapshot)
        elif quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            await websocket.send_json({"id": last.get("id"), "type": "ping"})
        if _is_final(snapshot):
            return True


def install(app: FastAPI, prefix: str) -> None:
    """Mount the socket as a plain Starlette route: the app's HTTP-only dependencies (which
    read a request body) do not apply to a WebSocket, and it authenticates itself."""
    app.router.routes.append(
        WebSocketRoute(f"{prefix}/renders/{{render_id}}/events", render_events)
    )
