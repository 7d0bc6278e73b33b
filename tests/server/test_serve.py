"""``notefall serve``: a real uvicorn process, and clear one-line refusals."""

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from notefall.cli.main import EXIT_INPUT, main
from notefall.server.serve import RedactTokens


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_migrates_and_answers_health_and_readiness(tmp_path: Path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTEFALL_")}
    env["NOTEFALL_DATA_DIR"] = str(tmp_path)
    server = subprocess.Popen(
        [sys.executable, "-m", "notefall.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start within 30 s"
                time.sleep(0.1)
        assert health.json() == {"status": "ok"}
        # Readiness needs the migrated database in DATA_DIR.
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        assert (tmp_path / "notefall.db").exists()
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=15)
    # uvicorn finishes its shutdown, then re-raises SIGTERM so the exit status reports it.
    assert server.returncode in (0, -signal.SIGTERM)
    assert b"Application shutdown complete" in output


def test_serve_refuses_production_with_the_default_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("NOTEFALL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NOTEFALL_ENVIRONMENT", "production")
    assert main(["serve"]) == EXIT_INPUT
    error = capsys.readouterr().err
    assert error.startswith("notefall: error: Invalid server settings: NOTEFALL_SECRET_KEY")
    assert len(error.strip().splitlines()) == 1
    assert not (tmp_path / "notefall.db").exists()


def test_serve_without_the_server_packages_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setitem(sys.modules, "notefall.server.serve", None)
    assert main(["serve"]) == EXIT_INPUT
    assert "pip install 'notefall[server]'" in capsys.readouterr().err


def test_access_tokens_in_query_strings_never_reach_the_log():
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/api/v1/renders/x/events?last_event_id=1-0&access_token=eyJ.sec.ret"),
        None,
    )  # fmt: skip
    assert RedactTokens().filter(record)
    assert "eyJ" not in record.getMessage()
    assert "last_event_id=1-0&access_token=[redacted]" in record.getMessage()
