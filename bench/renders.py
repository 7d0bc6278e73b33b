"""``make bench`` (render farm part): the cloud render path with real parts throughout.

A real uvicorn server in a thread (the API), a real ``redis-server``, real ``notefall
worker`` processes (Celery, FFmpeg), PostgreSQL at 127.0.0.1:5432 when reachable (else
SQLite), httpx clients in threads. Measured:

- submit latency (``POST /api/v1/renders``) p50/p99 with 100 clients submitting at once
  (no worker running, so only the API, the database and Redis are measured);
- renders per minute for 2-second clips at 256x144 with 2 workers;
- segment fan-out: one 20-second clip (2-second segments) with 2 workers against 1, each
  worker pinned to a core of its own (single-threaded, FFmpeg included), as a ratio
  measured in the same run;
- time from submit to the first progress event on the render's stream (the worker's
  "started" or a percent, whichever comes first), with an idle worker;
- the full load test: 150 renders submitted by 50 clients at once, 2 workers, with the
  count of each outcome.

Results replace the render farm section of docs/benchmarks.md (after RENDERS_MARKER), which
follows the server section; run it after bench/server.py (``make bench`` does).
Run ``python -m bench.renders --quick`` for a smoke version.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import redis
from notefall.common.tiers import Tier
from notefall.server.admin.service import AdminService
from notefall.server.kit.app import create_app
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.mail import mailer_for
from notefall.server.kit.models import utcnow
from notefall.server.kit.redis_server import RedisServer
from notefall.server.kit.settings import Environment, Settings, load_settings
from notefall.server.migrations import upgrade_to_head
from notefall.server.renders import keys
from notefall.server.renders.models import Render
from sqlalchemy import select, text

from tests.support.midi_factory import make_midi

from .run import REPORT, machine
from .server import postgres_database, running_server

RENDERS_MARKER = "<!-- render farm benchmarks (bench/renders.py) -->"
PASSWORD = "falling notes over a grand piano"
SECRET = "bench-secret-key-" + "x" * 40
FAST = {"resolution": "256x144", "fps": 24, "preset": "draft"}
TERMINAL = {"succeeded", "failed", "cancelled", "dead"}


def clip(seconds: float, pitch: int) -> bytes:
    beats = max(1, round(seconds * 2))  # 120 bpm
    return make_midi(notes=[(b, 0.9, pitch + b % 5, 90, 0) for b in range(beats)], title="Bench")


class Farm:
    """One database, one Redis, one API; workers started and stopped per measurement."""

    def __init__(self, work: Path, database_url: str, redis_url: str, **overrides: Any) -> None:
        upgrade_to_head(database_url)
        self.settings: Settings = load_settings(
            data_dir=work / "data",
            database_url=database_url,
            redis_url=redis_url,
            environment=Environment.TEST,
            secret_key=SECRET,
            public_url="http://notefall.bench",
            rate_limit_scale=1_000_000,
            render_segment_seconds=2.0,
            **overrides,
        )
        self.work = work
        self.database = Database(database_url)
        self.users = 0

    def env(self) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOTEFALL_")}
        env.update(
            NOTEFALL_DATA_DIR=str(s.data_dir),
            NOTEFALL_DATABASE_URL=s.database_url,
            NOTEFALL_REDIS_URL=str(s.redis_url),
            NOTEFALL_SECRET_KEY=SECRET,
            NOTEFALL_PUBLIC_URL=s.public_url,
            NOTEFALL_ENVIRONMENT="test",
            NOTEFALL_RENDER_SEGMENT_SECONDS=str(s.render_segment_seconds),
        )
        return env

    @contextlib.contextmanager
    def workers(self, count: int, *, one_core_each: bool = False) -> Iterator[None]:
        """``count`` workers (``-c 1``); ``one_core_each`` pins worker n, its pool and its
        FFmpeg to core n, so a worker is single-threaded whatever FFmpeg would use."""
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        processes = []
        for n in range(count):
            core = n % (os.cpu_count() or 1)

            def pin(core: int = core) -> None:
                if one_core_each:
                    os.sched_setaffinity(0, {core})

            with (logs / f"worker-{n}-{time.monotonic_ns()}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "notefall.cli", "worker", "-c", "1"],
                        env=self.env(),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        preexec_fn=pin,
                    )
                )
        try:
            yield
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()

    def clients(self, base: str, count: int, songs: int = 1, seconds: float = 1.0) -> list[Any]:
        """``count`` enterprise users, each with ``songs`` projects: (headers, [project ids])."""
        made = []
        with httpx.Client(base_url=base, timeout=60) as http:
            for _ in range(count):
                self.users += 1
                email = f"bench{self.users}@example.com"
                with transaction_scope(self.database) as session:
                    admin = AdminService(session, mailer_for(self.settings), utcnow())
                    admin.create_user(email, "Bench", PASSWORD, Tier.ENTERPRISE)
                form = {"grant_type": "password", "username": email, "password": PASSWORD}
                token = http.post("/api/v1/auth/token", data=form).raise_for_status().json()
                headers = {"Authorization": f"Bearer {token['access_token']}"}
                projects = []
                for n in range(songs):
                    created = http.post(
                        "/api/v1/projects", json={"name": f"Song {n}"}, headers=headers
                    )
                    project = created.raise_for_status().json()["id"]
                    files = {
                        "file": (
                            "song.mid",
                            clip(seconds, 36 + (self.users + 7 * n) % 48),
                            "audio/midi",
                        )
                    }
                    http.put(
                        f"/api/v1/projects/{project}/midi", files=files, headers=headers
                    ).raise_for_status()
                    projects.append(project)
                made.append((headers, projects))
        return made

    def wait(self, ids: list[str], timeout: float) -> dict[str, Render]:
        deadline = time.monotonic() + timeout
        wanted = [uuid.UUID(i) for i in ids]
        while True:
            with transaction_scope(self.database) as session:
                rows = session.scalars(select(Render).where(Render.id.in_(wanted))).all()
                for row in rows:
                    session.expunge(row)
            if len(rows) == len(ids) and all(r.status in TERMINAL for r in rows):
                return {str(r.id): r for r in rows}
            if time.monotonic() > deadline:
                return {str(r.id): r for r in rows}
            time.sleep(0.2)


def submit_concurrently(
    base: str, clients: list[Any], per_client: int, fps_values: tuple[int, ...] = (24, 25, 30, 50)
) -> tuple[list[float], list[str], Counter[int | str]]:
    """Every client submits ``per_client`` renders (one per project, or per frame rate) at
    once; the latencies in ms, the render ids and the status codes."""
    latencies: list[float] = []
    ids: list[str] = []
    codes: Counter[int | str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(len(clients))

    def run(headers: dict[str, str], projects: list[str]) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            barrier.wait()
            for n in range(per_client):
                project = projects[n % len(projects)]
                fps = fps_values[(n // len(projects)) % len(fps_values)]
                body = {"project_id": project, "settings": {**FAST, "fps": fps}}
                start = time.perf_counter()
                try:
                    response = http.post("/api/v1/renders", json=body, headers=headers)
                except httpx.HTTPError as error:
                    # Counted, not fatal: how many requests got no answer is a result too.
                    with lock:
                        latencies.append((time.perf_counter() - start) * 1000)
                        codes[type(error).__name__] += 1
                    continue
                took = (time.perf_counter() - start) * 1000
                with lock:
                    latencies.append(took)
                    codes[response.status_code] += 1
                    if response.status_code in (200, 202):
                        ids.append(response.json()["id"])

    threads = [threading.Thread(target=run, args=c) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, ids, codes


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))], 1)


def bench_submit(farm: Farm, base: str, clients: int, per_client: int) -> dict[str, Any]:
    users = farm.clients(base, clients)
    latencies, ids, codes = submit_concurrently(base, users, per_client)
    return {
        "clients": clients,
        "requests": len(latencies),
        "codes": dict(codes),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": round(max(latencies), 1),
        "ids": ids,
    }


def cancel_all(farm: Farm, ids: list[str]) -> None:
    """Leave no queued work behind for the next measurement."""
    with transaction_scope(farm.database) as session:
        session.execute(
            text("UPDATE render_steps SET status = 'failed' WHERE status IN ('pending','running')")
        )
        session.execute(
            text("UPDATE renders SET status = 'cancelled' WHERE status IN ('queued','running')")
        )
    redis.Redis.from_url(str(farm.settings.redis_url)).flushdb()


def bench_throughput(farm: Farm, base: str, renders: int) -> dict[str, Any]:
    users = farm.clients(base, max(1, renders // 4), songs=4, seconds=2.0)
    with farm.workers(2):
        start = time.perf_counter()
        _lat, ids, codes = submit_concurrently(base, users, 4)
        rows = farm.wait(ids, 600)
        took = time.perf_counter() - start
    outcomes = Counter(r.status for r in rows.values())
    return {
        "renders": len(ids),
        "codes": dict(codes),
        "seconds": round(took, 1),
        "per_minute": round(outcomes["succeeded"] / took * 60, 1),
        "outcomes": dict(outcomes),
    }


def bench_fan_out(farm: Farm, base: str) -> dict[str, Any]:
    ((headers, projects),) = farm.clients(base, 1, songs=2, seconds=20.0)
    timings = {}
    with httpx.Client(base_url=base, timeout=60) as http:
        for workers, project in ((1, projects[0]), (2, projects[1])):
            with farm.workers(workers, one_core_each=True):
                time.sleep(3)  # both workers ready before the clock starts
                start = time.perf_counter()
                body = {"project_id": project, "settings": FAST}
                render = http.post("/api/v1/renders", json=body, headers=headers).raise_for_status()
                rid = render.json()["id"]
                rows = farm.wait([rid], 600)
                timings[workers] = time.perf_counter() - start
                assert rows[rid].status == "succeeded", rows[rid].error_message
                segments = rows[rid].segment_count
    return {
        "segments": segments,
        "one_worker_s": round(timings[1], 1),
        "two_workers_s": round(timings[2], 1),
        "speed_up": round(timings[1] / timings[2], 2),
    }


def bench_first_event(farm: Farm, base: str, repeats: int) -> dict[str, Any]:
    ((headers, projects),) = farm.clients(base, 1, songs=repeats, seconds=1.0)
    client = redis.Redis.from_url(str(farm.settings.redis_url))
    waits = []
    with farm.workers(1), httpx.Client(base_url=base, timeout=60) as http:
        time.sleep(3)
        for project in projects:
            start = time.perf_counter()
            body = {"project_id": project, "settings": FAST}
            rid = http.post("/api/v1/renders", json=body, headers=headers).json()["id"]
            stream, last, seen = keys.events(rid), "0", None
            while seen is None and time.perf_counter() - start < 30:
                for _name, entries in client.xread({stream: last}, block=1000) or []:  # type: ignore[union-attr]
                    for event_id, fields in entries:
                        last = event_id
                        # The first news from a worker: "started" or a percent.
                        started = fields.get(b"status") == b"running"
                        if seen is None and (fields.get(b"type") == b"progress" or started):
                            seen = time.perf_counter() - start
            assert seen is not None, f"no progress event for render {rid} in 30 s"
            waits.append(seen * 1000)
            farm.wait([rid], 60)
    return {"repeats": repeats, "p50_ms": percentile(waits, 50), "max_ms": round(max(waits), 1)}


def bench_load(farm: Farm, base: str, clients: int, per_client: int) -> dict[str, Any]:
    users = farm.clients(base, clients, songs=per_client, seconds=1.0)
    with farm.workers(2):
        start = time.perf_counter()
        latencies, ids, codes = submit_concurrently(base, users, per_client)
        rows = farm.wait(ids, 900)
        took = time.perf_counter() - start
    outcomes = Counter(r.status for r in rows.values())
    outcomes["stuck"] = len(ids) - sum(outcomes[s] for s in TERMINAL)
    return {
        "clients": clients,
        "renders": clients * per_client,
        "codes": dict(codes),
        "accepted": len(ids),
        "outcomes": dict(outcomes),
        "seconds": round(took, 1),
        "submit_p99_ms": percentile(latencies, 99),
    }


def counts(mapping: dict[Any, int]) -> str:
    return ", ".join(f"{key} × {value}" for key, value in mapping.items())


def write_section(backend: str, results: dict[str, Any], date: str, load_average: float) -> None:
    sub, thr, fan, first, load = (
        results[k] for k in ("submit", "throughput", "fan_out", "first_event", "load")
    )
    troubled = any(code not in (200, 202) for entry in (sub, thr, load) for code in entry["codes"])
    for entry in (sub, thr, load):
        for key in ("codes", "outcomes"):
            if key in entry:
                entry[key] = counts(entry[key])
    lines = [
        RENDERS_MARKER,
        "## Render farm (bench/renders.py)",
        "",
        f"Measured on {date}, {machine()}, database {backend};",
        f"load average {load_average:.1f} when it started (other work shared the machine).",
        "A real uvicorn server in a thread, a real Redis, real `notefall worker` processes",
        "(`-c 1` each) and FFmpeg; clients are httpx threads that submit at the same moment.",
        "Clips are tiny MIDI files rendered at 256x144, 24 fps, preset draft; segments are",
        "2 seconds of video. The two workers share the machine's cores with the API, the",
        "database and Redis, so the ratios matter more than the absolute figures.",
        "",
        "| measurement | result |",
        "|---|---|",
        f"| submit latency, {sub['clients']} clients at once ({sub['requests']} requests, "
        f"answers {sub['codes']}) | p50 {sub['p50_ms']} ms, p99 {sub['p99_ms']} ms, "
        f"max {sub['max_ms']} ms |",
        f"| throughput, 2-second clips, 2 workers ({thr['renders']} renders, {thr['outcomes']}) "
        f"| {thr['per_minute']} renders per minute ({thr['seconds']} s in all) |",
        f"| fan-out, one 20-second clip ({fan['segments']} segments), one core per worker | 1 worker "
        f"{fan['one_worker_s']} s, 2 workers {fan['two_workers_s']} s: "
        f"**{fan['speed_up']}×** |",
        f"| submit → first progress event, idle worker ({first['repeats']} renders) | "
        f"p50 {first['p50_ms']} ms, max {first['max_ms']} ms |",
        f"| load: {load['renders']} renders by {load['clients']} clients, 2 workers | "
        f"{load['accepted']} accepted (answers {load['codes']}); outcomes {load['outcomes']}; "
        f"{load['seconds']} s in all; submit p99 {load['submit_p99_ms']} ms |",
        "",
        "The fan-out speed-up is below 2× because the prepare, join, thumbnail and finalize",
        "steps run once whatever the number of workers, and each segment pays FFmpeg's start.",
        "",
    ]
    if troubled:
        lines += [
            "Answers other than 202 (500, or no answer within httpx's 60 s) mean one API process",
            "did not keep up with that many simultaneous submits; the server's own errors are",
            "printed above the results when the bench runs (in the run of 2026-11-29: SQLAlchemy's",
            "connection pool, 5 + 10 connections, ran out after its 30 s wait).",
            "",
        ]
    text_ = REPORT.read_text(encoding="utf-8") if REPORT.exists() else "# Benchmarks\n"
    head = text_.split(RENDERS_MARKER)[0].rstrip("\n")
    REPORT.write_text(head + "\n\n" + "\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    args = parser.parse_args()
    quick = args.quick
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_average = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="notefall-bench-renders-") as tmp,
        RedisServer(Path(tmp) / "redis", persistent=False) as redis_server,
        postgres_database() as pg_url,
    ):
        work = Path(tmp)
        database_url = pg_url or f"sqlite:///{work / 'bench.db'}"
        backend = "PostgreSQL" if pg_url else "SQLite"
        farm = Farm(work, database_url, redis_server.url)
        app = create_app(farm.settings)
        results: dict[str, Any] = {}
        with running_server(app) as base:
            print("submit latency…", flush=True)
            sub = bench_submit(farm, base, 10 if quick else 100, 2)
            cancel_all(farm, sub.pop("ids"))
            results["submit"] = sub
            print(sub, flush=True)
            print("throughput…", flush=True)
            results["throughput"] = bench_throughput(farm, base, 8 if quick else 20)
            print(results["throughput"], flush=True)
            print("fan-out…", flush=True)
            results["fan_out"] = bench_fan_out(farm, base)
            print(results["fan_out"], flush=True)
            print("first progress event…", flush=True)
            results["first_event"] = bench_first_event(farm, base, 3 if quick else 5)
            print(results["first_event"], flush=True)
            print("load…", flush=True)
            results["load"] = bench_load(farm, base, 10 if quick else 50, 3)
            print(results["load"], flush=True)
        app.state.database.dispose()
        farm.database.dispose()
    write_section(backend, results, date, load_average)
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
