"""The server image, proven without Docker: its install steps, read from the Dockerfile itself,
run in a clean virtual environment, and the cloud is started from that environment the way
the compose file starts it (migrate once, then API, worker and beat, against PostgreSQL and a
Redis with packaging/redis/redis.conf), down to a real render by the image's FFmpeg.

What this cannot prove (no Docker daemon here): the base image, the apt-get and user steps of
the runtime stage, file ownership and tini. docs/operations.md says so too.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import postgres_scratch_database  # noqa: F401 - a fixture
from tests.support.render_farm import project_with_midi, submit_render, wait_for_status

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "packaging" / "docker" / "Dockerfile"
REDIS_CONF = ROOT / "packaging" / "redis" / "redis.conf"
# Where the Dockerfile builds the environment; the test builds it in a temporary folder.
IMAGE_PREFIX = "/opt/notefall"
# The locked wheels, downloaded once per development environment: the build stage then
# installs from here (PIP_NO_INDEX), as a docker build behind a local package mirror would.
# Only the first run pays for the downloads (several minutes; pip's own cache does not help
# on every machine).
WHEELHOUSE = Path(sys.prefix) / "notefall-wheelhouse"

pytestmark = pytest.mark.xdist_group("packaging")


@dataclass
class Stage:
    name: str
    base: str
    # (instruction, its arguments), continuation lines joined, comments dropped.
    steps: list[tuple[str, str]] = field(default_factory=list)


def dockerfile_stages(text: str) -> dict[str, Stage]:
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    logical = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        logical += stripped.removesuffix("\\").strip() + " "
        if stripped.endswith("\\"):
            continue
        instruction, _, arguments = logical.strip().partition(" ")
        logical = ""
        instruction = instruction.upper()
        if instruction == "FROM":
            base, _, name = arguments.partition(" AS ")
            current = Stage(name.strip(), base.strip())
            stages[current.name] = current
        elif current is not None:
            current.steps.append((instruction, arguments.strip()))
    return stages


def copy_sources(arguments: str) -> tuple[list[str], str, bool]:
    """(sources, destination, from another stage) of a COPY instruction."""
    words = shlex.split(arguments)
    from_stage = any(w.startswith("--from=") for w in words)
    words = [w for w in words if not w.startswith("--")]
    return words[:-1], words[-1], from_stage


@dataclass
class Image:
    prefix: Path  # the venv the build stage made (/opt/notefall in the image)
    bin_dir: Path  # what the runtime stage copies to /usr/local/bin
    entrypoint: Path
    container_tool: Path
    build_log: str


def _locked_wheels() -> list[str]:
    """``name==version`` of everything the build stage installs: the server lock (and the
    base lock it includes) plus the build backend pinned in install-server.sh."""
    pins = []
    for lock in ("base.txt", "server.txt"):
        for line in (ROOT / "requirements" / lock).read_text(encoding="utf-8").splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-"):
                pins.append(line)
    script = (ROOT / "packaging" / "docker" / "install-server.sh").read_text(encoding="utf-8")
    (backend,) = re.findall(r"^SETUPTOOLS=(\S+)$", script, flags=re.MULTILINE)
    return [*pins, backend]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def fill_wheelhouse() -> None:
    """Download (without dependencies: the locks are complete) whatever pin has no file yet."""
    WHEELHOUSE.mkdir(exist_ok=True)
    present = {
        tuple(_normalized(part) for part in f.name.split("-")[:2]) for f in WHEELHOUSE.iterdir()
    }
    missing = [
        pin
        for pin in _locked_wheels()
        if tuple(_normalized(part) for part in pin.split("==")) not in present
    ]
    if missing:
        download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        done = subprocess.run(
            [*download, "--dest", str(WHEELHOUSE), *missing],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr


def _run_build_stage(stage: Stage, workdir: Path, prefix: Path) -> str:
    fill_wheelhouse()
    pip_env = {
        **os.environ,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    log = []
    for instruction, arguments in stage.steps:
        if instruction == "COPY":
            sources, destination, _ = copy_sources(arguments)
            target = workdir / destination
            for source in sources:
                origin = ROOT / source
                into = target / origin.name if destination.endswith("/") else target
                if origin.is_dir():
                    shutil.copytree(
                        origin, into, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                    )
                else:
                    into.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, into)
        elif instruction == "RUN":
            command = arguments.replace(IMAGE_PREFIX, str(prefix))
            done = subprocess.run(
                ["sh", "-c", command],
                cwd=workdir,
                env=pip_env,
                capture_output=True,
                text=True,
                timeout=480,
            )
            log.append(f"$ {command}\n{done.stdout}{done.stderr}")
            assert done.returncode == 0, "\n".join(log)
        else:
            # WORKDIR is the temporary folder; ENV only quiets pip and Python in the image
            # (PIP_NO_CACHE_DIR would only make this run slower here).
            assert instruction in {"WORKDIR", "ENV", "ARG"}, instruction
    return "\n".join(log)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The Dockerfile's build stage run here, and the runtime stage's own files put in place."""
    stages = dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8"))
    folder = tmp_path_factory.mktemp("image")
    prefix, workdir, bin_dir = folder / "opt-notefall", folder / "src", folder / "usr-local-bin"
    workdir.mkdir()
    bin_dir.mkdir()
    build_log = _run_build_stage(stages["build"], workdir, prefix)
    for instruction, arguments in stages["runtime"].steps:
        if instruction != "COPY":
            continue
        sources, destination, from_stage = copy_sources(arguments)
        if from_stage:
            assert sources == [IMAGE_PREFIX] and destination == IMAGE_PREFIX
            continue
        assert destination.startswith("/usr/local/bin/"), destination
        (source,) = sources
        target = bin_dir / Path(destination).name
        shutil.copy2(ROOT / source, target)
        target.chmod(0o755)
    return Image(
        prefix,
        bin_dir,
        bin_dir / "notefall-entrypoint",
        bin_dir / "notefall-container.py",
        build_log,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Cloud:
    image: Image
    env: dict[str, str]
    folder: Path
    api_url: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def run(self, *arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """The entry point with ``arguments``, as `docker compose run` would start it."""
        return subprocess.run(
            [str(self.image.entrypoint), *arguments],
            env=self.env,
            cwd=self.folder,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def check(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """The container tool (health checks) with the image's Python."""
        return subprocess.run(
            [str(self.image.prefix / "bin" / "python"), str(self.image.container_tool), *arguments],
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start(self, name: str, *arguments: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [str(self.image.entrypoint), *arguments],
            env=self.env,
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-4000:]

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            with suppress(subprocess.TimeoutExpired):
                process.wait(30)
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def redis_with_production_conf(folder: Path, prefix: Path) -> Iterator[str]:
    """packaging/redis/redis.conf with the compose file's overrides (address, data folder)."""
    executable = shutil.which("redis-server") or str(prefix / "bin" / "redis-server")
    port = free_port()
    folder.mkdir()
    process = subprocess.Popen(
        [
            executable,
            str(REDIS_CONF),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
        ],
        stdout=(folder / "redis.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        import redis

        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert process.poll() is None, (folder / "redis.log").read_text()
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)
        assert client.config_get("appendonly")["appendonly"] == "yes"
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(30)


def wait_until(check, what: str, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.3)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.timeout(900)
def test_the_image_s_install_steps_give_a_cloud_that_migrates_once_serves_and_renders(
    image: Image,
    tmp_path: Path,
    postgres_scratch_database: str,  # noqa: F811 - a fixture
):
    # FFmpeg is the static build of the locked imageio-ffmpeg wheel, inside the environment.
    assert f"FFmpeg: {image.prefix}/" in image.build_log
    with redis_with_production_conf(tmp_path / "redis", image.prefix) as redis_url:
        port = free_port()
        api_url = f"http://127.0.0.1:{port}"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("NOTEFALL_", "VIRTUAL_ENV", "PYTHON"))
        }
        env.update(
            # The image's PATH: its venv first, then its own scripts.
            PATH=f"{image.prefix / 'bin'}:{image.bin_dir}:/usr/bin:/bin",
            NOTEFALL_ENVIRONMENT="production",
            NOTEFALL_SECRET_KEY="deploy-test-" + "k" * 40,
            NOTEFALL_DATA_DIR=str(tmp_path / "data"),
            NOTEFALL_DATABASE_URL=postgres_scratch_database,
            NOTEFALL_REDIS_URL=redis_url,
            NOTEFALL_STORAGE_URL=(tmp_path / "storage").as_uri(),
            NOTEFALL_PUBLIC_URL=api_url,
            NOTEFALL_RENDER_SEGMENT_SECONDS="1",
        )
        cloud = Cloud(image, env, tmp_path, api_url)
        try:
            _migrate_once_then_serve_and_render(cloud, port)
        finally:
            cloud.stop_all()


def _migrate_once_then_serve_and_render(cloud: Cloud, port: int) -> None:
    # Init containers wait; before `migrate` they say what is missing.
    waiting = cloud.run("wait-for-migrations", "--timeout", "0")
    assert waiting.returncode == 1 and "run `migrate`" in waiting.stderr, waiting

    # Two migrations at once (a retried Job, two init containers): the lock serialises them.
    both = [
        subprocess.Popen(
            [str(cloud.image.entrypoint), "migrate"],
            env=cloud.env,
            cwd=cloud.folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in both:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "database at the latest migration" in out
    assert cloud.run("wait-for-migrations", "--timeout", "5").returncode == 0

    # The compose file's order: API, workers and beat once the migration has finished.
    cloud.start("api", "api", "--host", "127.0.0.1", "--port", str(port))
    worker = cloud.start("worker", "worker", "-c", "1")
    cloud.start("beat", "beat")
    wait_until(lambda: _ready(cloud.api_url), f"/readyz answers 200:\n{cloud.log('api')}")

    healthy = cloud.check("api-healthy", "--url", cloud.api_url)
    assert healthy.returncode == 0, healthy.stderr
    alive = wait_until(
        lambda: (done := cloud.check("worker-alive")).returncode == 0 and done,
        f"the worker's liveness check passes:\n{cloud.log('worker')}",
    )
    assert "idle and its queues are empty" in alive.stdout

    # Operator commands go through the same entry point (`docker compose run api admin ...`).
    created = cloud.run(
        "admin", "create-user", "ops@example.com", "--name", "Ops", "--tier", "pro",
        "--password-stdin", stdin="falling notes over a grand piano\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    with httpx.Client(base_url=cloud.api_url, timeout=30) as client:
        token = client.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "password",
                "username": "ops@example.com",
                "password": "falling notes over a grand piano",
            },
        )
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        project = project_with_midi(client, headers)
        render = submit_render(client, headers, project)
        done = wait_for_status(client, headers, render["id"], ("succeeded", "failed", "dead"), 180)
        assert done["status"] == "succeeded", f"{done}\n{cloud.log('worker')}"
        video = client.get(f"/api/v1/renders/{render['id']}/download", headers=headers)
        assert video.status_code == 307, video.text
        served = client.get(video.headers["location"])
        assert served.status_code == 200 and served.content[4:8] == b"ftyp"

    # SIGTERM (docker stop, a pod's end): a warm shutdown that exits 0, and the liveness
    # check stops passing at once, since the worker removed its record.
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0, cloud.log("worker")
    gone = cloud.check("worker-alive")
    assert gone.returncode == 1 and "recorded itself in Redis" in gone.stderr, gone


def test_the_dockerfile_pins_its_base_runs_unprivileged_and_checks_health():
    stages = dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8"))
    assert list(stages) == ["build", "runtime", "worker", "api"]
    arguments = dict(
        a.partition("=")[::2]
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.startswith("ARG ")
        for a in [line.removeprefix("ARG ")]
    )
    base = arguments["PYTHON_IMAGE"]
    # An exact patch release of the Python the locks are made with, never a moving tag.
    assert base.startswith(f"python:{sys.version_info.major}.{sys.version_info.minor}.")
    assert base.count(".") >= 2 and "latest" not in base
    runtime = stages["runtime"].steps
    assert ("USER", "10001:10001") in runtime
    entrypoint = next(a for i, a in runtime if i == "ENTRYPOINT")
    assert "tini" in entrypoint
    for target, check in (("api", "api-healthy"), ("worker", "worker-alive")):
        steps = dict(stages[target].steps)
        assert check in steps["HEALTHCHECK"], target
        assert stages[target].base == "runtime"


def test_the_build_context_lets_in_everything_the_dockerfile_copies():
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "**"  # everything else stays out of the context
    allowed = [rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]
    for stage in dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8")).values():
        for instruction, arguments in stage.steps:
            if instruction != "COPY":
                continue
            sources, _, from_stage = copy_sources(arguments)
            if from_stage:
                continue
            for source in sources:
                assert (ROOT / source).exists(), source
                assert any(source.rstrip("/") == a or source.startswith(f"{a}/") for a in allowed)
