"""The registered OAuth clients and the redirect URIs they may use."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    # What the consent page says the app will do with the account.
    permissions: tuple[str, ...]


DESKTOP = Client(
    client_id="notefall-desktop",
    name="Notefall Desktop",
    permissions=(
        "See your name and email address",
        "Create, render and manage your projects",
        "Upload MIDI and audio files and download your videos",
    ),
)

# Public clients only (no secret: an installed app cannot keep one, RFC 8252 §8.4), so
# PKCE is what binds a code to the app that asked for it.
CLIENTS = {client.client_id: client for client in (DESKTOP,)}


def client_by_id(client_id: str | None) -> Client | None:
    return CLIENTS.get(client_id or "")


def is_loopback_redirect(uri: str | None) -> bool:
    """An ``http://127.0.0.1:PORT/path`` or ``http://[::1]:PORT/path`` URI (RFC 8252 §7.3).

    Any port: the app listens on whatever port the system gives it. ``localhost`` is refused
    (§8.3: a name may resolve elsewhere), as are user info and fragments (RFC 6749 §3.1.2).
    """
    if not uri or len(uri) > 2000:
        return False
    try:
        parts = urlsplit(uri)
        port = parts.port
        host = ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        return False
    netloc_host = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    return (
        parts.scheme == "http"
        and host.is_loopback
        and str(host) in ("127.0.0.1", "::1")
        and netloc_host in ("127.0.0.1", "[::1]")
        and parts.username is None
        and parts.password is None
        and not parts.fragment
        and "#" not in uri
        and (parts.path == "" or parts.path.startswith("/"))
    )
