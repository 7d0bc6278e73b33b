"""``notefall``: render, still, probe, serve, stack, worker, beat, flower, admin (see
docs/cli.md and docs/server.md).

Exit codes: 0 done, 2 bad input (one-line message), 1 internal error, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

from notefall.common import __version__
from notefall.common.errors import InputError, NotefallError, RenderCancelled
from notefall.common.progress import CancelToken

from .options import add_render_options, settings_mapping
from .progress_bar import ProgressBar

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_CANCELLED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line and exit code 2, like every other bad-input error.
        self.exit(
            EXIT_INPUT,
            f"notefall: error: {message} (see {self.prog} --help)\n",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="notefall", description="Falling-notes piano videos from MIDI files.")
    parser.add_argument("--version", action="version", version=f"notefall {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    render = sub.add_parser(
        "render", help="render a video", description="Render SONG.mid to a video file."
    )
    render.add_argument("song", type=Path, metavar="SONG.mid")
    render.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    render.add_argument(
        "--settings",
        type=Path,
        metavar="JSON",
        help="a settings/preset JSON file; options given here override it",
    )
    render.add_argument(
        "--frames",
        metavar="A:B",
        help="render only frames A..B-1 as a video-only segment (for joining)",
    )
    render.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    add_render_options(render)

    still = sub.add_parser(
        "still", help="render one frame as PNG", description="Render one frame of SONG.mid."
    )
    still.add_argument("song", type=Path, metavar="SONG.mid")
    still.add_argument(
        "--at", type=float, required=True, metavar="SECONDS", help="video time of the frame"
    )
    still.add_argument("-o", "--output", type=Path, required=True, metavar="FRAME.png")
    still.add_argument("--settings", type=Path, metavar="JSON")
    add_render_options(still)

    probe = sub.add_parser("probe", help="describe a MIDI file", description="Describe SONG.mid.")
    probe.add_argument("song", type=Path, metavar="SONG.mid")
    probe.add_argument("--json", action="store_true", help="machine-readable output")

    serve = sub.add_parser(
        "serve",
        help="run the API server",
        description="Run the Notefall API (settings from NOTEFALL_* variables; see docs/server.md).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not upgrade the database to the latest migration before starting",
    )

    stack = sub.add_parser(
        "stack",
        help="run the whole server on this machine",
        description="Run API, Redis, job workers and scheduler with everything in one folder.",
    )
    stack.add_argument("--data-dir", type=Path, required=True, metavar="DIR")
    stack.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    stack.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    stack.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="job worker processes (1); with 2 or more, the first takes the free queue first",
    )

    worker = sub.add_parser(
        "worker",
        help="run a job worker",
        description="Consume background jobs from NOTEFALL_REDIS_URL (see docs/server.md).",
    )
    worker.add_argument(
        "-c", "--concurrency", type=int, default=1, metavar="N", help="tasks at once (1)"
    )
    worker.add_argument(
        "-Q", "--queues", metavar="Q1,Q2", help="queues to consume, in order (default: all)"
    )

    desktop = sub.add_parser(
        "desktop",
        help="open the desktop studio",
        description="Open the Notefall desktop app (needs the [desktop] extra).",
    )
    desktop.add_argument("midi", nargs="*", type=Path, help="MIDI files to start projects from")

    sub.add_parser(
        "beat",
        help="run the periodic-job scheduler",
        description="Enqueue periodic jobs; run exactly one per deployment.",
    )
    flower = sub.add_parser(
        "flower",
        help="run Flower, Celery's web monitor, on the job queue",
        description="Flower against NOTEFALL_REDIS_URL: workers, running tasks and queues "
        "(see docs/renders.md). Keep it off the public internet, or set --basic-auth.",
    )
    flower.add_argument("--port", type=int, default=5555, metavar="P", help="port (5555)")
    flower.add_argument("--address", default="127.0.0.1", metavar="H", help="address (127.0.0.1)")
    flower.add_argument(
        "--basic-auth", metavar="USER:PASSWORD", help="ask for this user and password"
    )
    _add_admin_parser(sub)
    billing = sub.add_parser(
        "billing",
        help="Stripe catalog tasks",
        description="Billing tasks against the Stripe account of NOTEFALL_STRIPE_SECRET_KEY "
        "(see docs/billing.md).",
    )
    billing_tasks = billing.add_subparsers(
        dest="billing_command", required=True, parser_class=_Parser
    )
    billing_tasks.add_parser(
        "sync-catalog",
        help="create or update the products and prices of the paid plans",
        description="Create or update (idempotently) the Stripe products and monthly prices "
        "of the paid tiers, then print the NOTEFALL_STRIPE_PRICE_* settings.",
    )
    return parser


def _add_admin_parser(sub: Any) -> None:
    admin = sub.add_parser(
        "admin",
        help="operator tasks on accounts",
        description="Operator tasks on accounts (settings from NOTEFALL_*; see docs/server.md).",
    )
    tasks = admin.add_subparsers(dest="admin_command", required=True, parser_class=_Parser)
    tiers = "free|pro|enterprise"
    create = tasks.add_parser(
        "create-user",
        help="create a verified account",
        description="Create an account with a verified address; the password is asked for.",
    )
    create.add_argument("email", metavar="EMAIL")
    create.add_argument("--name", required=True, metavar="NAME")
    create.add_argument("--tier", default="free", metavar=tiers, help="the plan (free)")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    set_tier = tasks.add_parser(
        "set-tier", help="change an account's plan", description="Put EMAIL on TIER."
    )
    set_tier.add_argument("email", metavar="EMAIL")
    set_tier.add_argument("tier", metavar="TIER", help=tiers)
    disable = tasks.add_parser(
        "disable-2fa",
        help="turn two-factor sign-in off",
        description="For a user who lost phone and recovery codes: turn two-factor off, end "
        "their sessions and mail them a notice.",
    )
    disable.add_argument("email", metavar="EMAIL")
    show = tasks.add_parser("show-user", help="describe an account", description="Describe EMAIL.")
    show.add_argument("email", metavar="EMAIL")
    listing = tasks.add_parser("list-users", help="list accounts", description="List accounts.")
    listing.add_argument("--tier", metavar=tiers, help="only accounts on this plan")
    set_admin = tasks.add_parser(
        "set-admin",
        help="grant or revoke the operator right",
        description="Let EMAIL use the operator API (/api/v1/admin/...), or stop it with --revoke.",
    )
    set_admin.add_argument("email", metavar="EMAIL")
    set_admin.add_argument("--revoke", action="store_true", help="take the right away")
    dead = tasks.add_parser(
        "dead-letters",
        help="list, requeue or discard dead renders",
        description="Renders whose steps failed too many times (see docs/renders.md).",
    )
    dead_tasks = dead.add_subparsers(
        dest="dead_letters_command", required=True, parser_class=_Parser
    )
    dead_tasks.add_parser("list", help="list them, oldest first, with the reason")
    requeue = dead_tasks.add_parser("requeue", help="start a dead render over")
    requeue.add_argument("render_id", metavar="ID")
    discard = dead_tasks.add_parser(
        "discard", help="take it off the list (it stays dead) and delete its work files"
    )
    discard.add_argument("render_id", metavar="ID")
    tasks.add_parser(
        "reconcile",
        help="re-publish render steps Redis lost, now",
        description="Run the render reconciler once (what beat runs every "
        "NOTEFALL_RECONCILE_EVERY_SECONDS) and print what it re-published.",
    )


def _settings(args: argparse.Namespace) -> Any:
    from notefall.common.settings import settings_from_mapping

    data: dict[str, Any] = {}
    if getattr(args, "settings", None):
        try:
            data = json.loads(Path(args.settings).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"Settings file not found: {args.settings}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"Settings file {args.settings} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InputError(f"Settings file {args.settings} must hold a JSON object")
    data.update(settings_mapping(args))
    return settings_from_mapping(data)


def _song_path(path: Path) -> Path:
    if not path.exists():
        raise InputError(f"MIDI file not found: {path}", code="missing_midi")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a .mid file", code="invalid_midi")
    return path


VIDEO_SUFFIXES = {".mp4": "mp4", ".m4v": "mp4", ".webm": "webm", ".mov": "mov"}


def _video_format(args: argparse.Namespace) -> None:
    """Take the container from the output's extension unless --format says otherwise."""
    if args.output.is_dir():
        raise InputError(f"{args.output} is a folder; give a file name inside it, e.g. song.mp4.")
    suffix = args.output.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise InputError(
            f"The output name must end in .mp4, .webm or .mov (got '{args.output.name}')."
        )
    wanted = VIDEO_SUFFIXES[suffix]
    given = getattr(args, "format", None)
    if given is None:
        args.format = wanted
    elif given != wanted:
        raise InputError(
            f"--format {given} does not match the file name {args.output.name}; name it *.{given}."
        )


def _frames(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        a, b = (int(x) for x in text.split(":"))
    except ValueError:
        raise InputError(f"--frames wants A:B (frame numbers), not '{text}'") from None
    return a, b


def cmd_render(args: argparse.Namespace) -> int:
    from notefall.common.pipeline import render_video

    _video_format(args)
    settings = _settings(args)
    song = _song_path(args.song)
    cancel = CancelToken()
    bar = ProgressBar(enabled=not args.quiet)
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: cancel.cancel())
    try:
        result = render_video(
            song, args.output, settings, progress=bar, cancel=cancel, frames=_frames(args.frames)
        )
    except (KeyboardInterrupt, RenderCancelled):
        cancel.cancel()
        raise RenderCancelled("Cancelled; no file was written.") from None
    finally:
        bar.close()
        signal.signal(signal.SIGTERM, previous)
    if not args.quiet:
        took = result.seconds.get("total", 0.0)
        speed = result.duration / took if took else 0.0
        print(
            f"{result.output}  ({result.width}x{result.height}, {result.fps} fps, "
            f"{result.duration:.1f} s of video in {took:.1f} s, {speed:.1f}× real time)"
        )
    return EXIT_OK


def cmd_still(args: argparse.Namespace) -> int:
    from notefall.common.pipeline import render_still

    if args.output.suffix.lower() != ".png":
        raise InputError(f"A still is a PNG image: name it *.png (got '{args.output.name}').")
    settings = _settings(args)
    out = render_still(_song_path(args.song), args.output, settings, args.at)
    print(out)
    return EXIT_OK


def cmd_probe(args: argparse.Namespace) -> int:
    from notefall.common.midi import describe, format_probe, read_song

    song = read_song(_song_path(args.song))
    summary = describe(song)
    print(json.dumps(summary, indent=2, ensure_ascii=False) if args.json else format_probe(summary))
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    # Imported here: the server packages are an extra, and only this command needs them.
    try:
        from notefall.server.serve import serve
    except ImportError as exc:
        raise InputError(
            f"`notefall serve` needs the server packages ({exc.name} is missing): "
            "pip install 'notefall[server]'"
        ) from None
    serve(args.host, args.port, migrate=not args.no_migrate)
    return EXIT_OK


def _server_module(command: str, module: str) -> Any:
    # Imported only when asked: the server packages are an extra.
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InputError(
            f"`notefall {command}` needs the server packages ({exc.name} is missing): "
            "pip install 'notefall[server]'"
        ) from None


def _positive(value: int, option: str) -> int:
    if value < 1:
        raise InputError(f"{option} must be at least 1 (got {value})")
    return value


def cmd_stack(args: argparse.Namespace) -> int:
    stack = _server_module("stack", "notefall.server.stack")
    return int(
        stack.run_stack(
            args.data_dir,
            host=args.host,
            port=args.port,
            workers=_positive(args.workers, "--workers"),
        )
    )


def cmd_worker(args: argparse.Namespace) -> int:
    stack = _server_module("worker", "notefall.server.stack")
    queues = [q for q in (args.queues or "").split(",") if q] or None
    stack.worker(concurrency=_positive(args.concurrency, "--concurrency"), queues=queues)
    return EXIT_OK


def cmd_desktop(args: argparse.Namespace) -> int:
    try:
        from notefall.desktop.app import main as desktop_main
    except ImportError as exc:  # PySide6 missing: say how to get it, not a traceback
        raise InputError(
            f"The desktop app needs the desktop extra ({exc.name} is missing): "
            "pip install 'notefall[desktop]'",
            code="desktop_missing",
        ) from None
    return desktop_main(["notefall-desktop", *(str(p) for p in args.midi)])


def cmd_beat(_args: argparse.Namespace) -> int:
    _server_module("beat", "notefall.server.stack").beat()
    return EXIT_OK


def cmd_flower(args: argparse.Namespace) -> int:
    settings = _server_module("flower", "notefall.server.stack").settings_or_input_error()
    _server_module("flower", "notefall.server.jobs.worker").run_flower(
        settings, port=args.port, address=args.address, basic_auth=args.basic_auth
    )
    return EXIT_OK


def cmd_admin(args: argparse.Namespace) -> int:
    _server_module("admin", "notefall.server.admin.commands").run(args)
    return EXIT_OK


def cmd_billing(args: argparse.Namespace) -> int:
    _server_module("billing", "notefall.server.billing.commands").run(args)
    return EXIT_OK


COMMANDS = {
    "render": cmd_render,
    "still": cmd_still,
    "probe": cmd_probe,
    "serve": cmd_serve,
    "stack": cmd_stack,
    "worker": cmd_worker,
    "beat": cmd_beat,
    "desktop": cmd_desktop,
    "admin": cmd_admin,
    "flower": cmd_flower,
    "billing": cmd_billing,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except RenderCancelled as exc:
        print(f"notefall: {exc.message}", file=sys.stderr)
        return EXIT_CANCELLED
    except InputError as exc:
        print(f"notefall: error: {exc.message}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("notefall: Cancelled; no file was written.", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        # The reader went away (e.g. `notefall probe --json | head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (NotefallError, Exception) as exc:  # anything else is our bug, said in one line
        if args.debug:
            traceback.print_exc()
        detail = exc.message if isinstance(exc, NotefallError) else f"{type(exc).__name__}: {exc}"
        print(f"notefall: internal error: {detail} (run with --debug for details)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
