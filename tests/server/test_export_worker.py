"""A data export end to end: the API enqueues, a real Celery worker process builds the zip."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from urllib.parse import urlsplit

from notefall.server.kit.settings import Settings

from .conftest import TEST_SECRET_KEY, TestClient, signed_in_headers


def test_a_requested_export_is_built_by_a_worker_and_downloadable(
    client: TestClient, settings: Settings
):
    headers = signed_in_headers(client, settings, "ada@example.com")
    client.post("/api/v1/projects", json={"name": "Nocturne", "tags": ["recital"]}, headers=headers)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTEFALL_")}
    env.update(
        NOTEFALL_DATA_DIR=str(settings.data_dir),
        NOTEFALL_DATABASE_URL=settings.database_url,
        NOTEFALL_REDIS_URL=str(settings.redis_url),
        NOTEFALL_SECRET_KEY=TEST_SECRET_KEY,
        NOTEFALL_PUBLIC_URL=settings.public_url,
        NOTEFALL_ENVIRONMENT="test",
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "notefall.cli", "worker", "-c", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        requested = client.post("/api/v1/me/export", headers=headers)
        assert requested.status_code == 202, requested.text
        url = f"/api/v1/me/exports/{requested.json()['id']}"
        deadline = time.monotonic() + 90
        while (export := client.get(url, headers=headers).json())["status"] == "pending":
            assert time.monotonic() < deadline, "no worker built the export"
            time.sleep(0.2)
        assert export["status"] == "ready", export
        link = urlsplit(export["download_url"])
        download = client.get(f"{link.path}?{link.query}")
        assert download.status_code == 200
        archive = zipfile.ZipFile(io.BytesIO(download.content))
        account = json.loads(archive.read("account.json"))
        assert account["profile"]["email"] == "ada@example.com"
        assert [p["name"] for p in account["projects"]] == ["Nocturne"]
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output.decode(errors="replace")
