"""``python -m tests.support.stripe_server --port P --webhook-url URL --webhook-secret whsec_...``

``--fd N`` serves on an already bound listening socket (what the pytest fixture passes, so the
port is chosen by the OS with no race); the base URL is then taken from that socket.
"""

from __future__ import annotations

import argparse
import socket

import uvicorn

from .app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.stripe_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--fd", type=int, default=None, help="a bound, listening TCP socket")
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--webhook-secret", default=None)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    sock = None
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
        host, port = sock.getsockname()[:2]
    else:
        host, port = args.host, args.port
    app = create_app(f"http://{host}:{port}", args.webhook_url, args.webhook_secret)
    config = uvicorn.Config(app, host=host, port=port, log_level=args.log_level, lifespan="on")
    server = uvicorn.Server(config)
    server.run(sockets=[sock] if sock is not None else None)


if __name__ == "__main__":
    main()
