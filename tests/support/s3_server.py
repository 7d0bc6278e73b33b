"""A real S3-compatible HTTP server for tests: moto in server mode, on a free local port.

moto serves the S3 API but does not check the signature or the expiry of pre-signed
(query-string) URLs, which is exactly what the storage tests must see refused. So the
server runs moto behind a small WSGI layer that does what S3 itself does with such a URL:
it recomputes the AWS Signature Version 4 from the request and the secret key and refuses
a mismatch (403 ``SignatureDoesNotMatch``) or a URL used after ``X-Amz-Date +
X-Amz-Expires`` (403 ``AccessDenied``, "Request has expired"). Requests signed in the
``Authorization`` header (what boto3 sends) pass to moto untouched.

The layer reads "now" from ``S3Server.clock``; tests move it forward instead of sleeping.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

ACCESS_KEY_ID = "AKIANOTEFALLTEST0001"
SECRET_ACCESS_KEY = "notefall-test-secret-access-key-0000000000"
REGION = "eu-west-1"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class S3Server:
    endpoint_url: str
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def credentials_environment(self) -> dict[str, str]:
        """The standard AWS variables boto3 reads, pointing at this server's test keys."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }


@contextmanager
def running_s3_server() -> Iterator[S3Server]:
    """moto's S3 behind the pre-signed URL checks, on 127.0.0.1 and a free port."""
    holder: dict[str, S3Server] = {}
    app = _PresignedUrlChecks(
        DomainDispatcherApplication(create_backend_app), lambda: holder["server"].clock()
    )
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    holder["server"] = S3Server(f"http://127.0.0.1:{server.server_port}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["server"]
    finally:
        server.shutdown()
        thread.join()


class _PresignedUrlChecks:
    def __init__(self, app: WSGIApp, now: Callable[[], datetime]) -> None:
        self.app = app
        self.now = now

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        params = dict(query)
        if "X-Amz-Signature" in params:
            refusal = self._refusal(environ, query, params)
            if refusal is not None:
                code, message = refusal
                body = (
                    f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                    f"<Message>{message}</Message></Error>"
                ).encode()
                start_response(
                    "403 Forbidden",
                    [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
                )
                return [body]
        return self.app(environ, start_response)

    def _refusal(
        self, environ: dict[str, Any], query: list[tuple[str, str]], params: dict[str, str]
    ) -> tuple[str, str] | None:
        try:
            access_key, date, region, service, terminator = params["X-Amz-Credential"].split("/")
            signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
                tzinfo=UTC
            )
            expires_in = int(params["X-Amz-Expires"])
        except (KeyError, ValueError):
            return "AuthorizationQueryParametersError", "Malformed pre-signed URL"
        if access_key != ACCESS_KEY_ID:
            return "InvalidAccessKeyId", "The AWS access key Id does not exist"
        if params.get("X-Amz-SignedHeaders") != "host":
            return "SignatureDoesNotMatch", "Only the host header may be signed here"
        canonical_query = "&".join(
            f"{_encode(name)}={_encode(value)}"
            for name, value in sorted(query)
            if name != "X-Amz-Signature"
        )
        raw_path = environ.get("RAW_URI", environ.get("REQUEST_URI", "")).split("?")[0]
        canonical_request = "\n".join(
            [
                environ["REQUEST_METHOD"],
                raw_path or quote(environ.get("PATH_INFO", "/")),
                canonical_query,
                f"host:{environ['HTTP_HOST']}\n",
                "host",
                "UNSIGNED-PAYLOAD",
            ]
        )
        scope = f"{date}/{region}/{service}/{terminator}"
        string_to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                params["X-Amz-Date"],
                scope,
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            ]
        )
        key = f"AWS4{SECRET_ACCESS_KEY}".encode()
        for part in (date, region, service, terminator):
            key = hmac.digest(key, part.encode(), "sha256")
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
            return "SignatureDoesNotMatch", "The request signature we calculated does not match"
        if self.now() > signed_at + timedelta(seconds=expires_in):
            return "AccessDenied", "Request has expired"
        return None


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")
