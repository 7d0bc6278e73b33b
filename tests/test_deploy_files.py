"""The compose file and the Kubernetes manifests name what the code really has: settings that
exist, commands the CLI accepts, probes that run, one grace period for a segment, and secrets
only by reference. (Their JSON-schema validation needs packages this repository does not
pin yet: docs/operations.md, "What was not run here".)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from notefall.cli.main import build_parser
from notefall.server.kit.settings import Settings

from tests.test_deploy_image import DOCKERFILE, dockerfile_stages

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "packaging" / "compose" / "compose.yaml"
K8S = ROOT / "packaging" / "k8s"
ENTRYPOINT = ROOT / "packaging" / "docker" / "entrypoint.sh"
# Read by KEDA's Redis scaler from the worker's environment, not by the server.
KEDA_VARIABLES = {"NOTEFALL_REDIS_ADDRESS", "NOTEFALL_REDIS_PASSWORD"}
SETTING_VARIABLES = {f"NOTEFALL_{name.upper()}" for name in Settings.model_fields}


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def manifests() -> list[dict[str, Any]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return found


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests() if m["kind"] == kind}


def pod_specs() -> dict[str, dict[str, Any]]:
    workloads = {**by_kind("Deployment"), **by_kind("Job")}
    return {name: w["spec"]["template"]["spec"] for name, w in workloads.items()}


def notefall_argv(arguments: list[str]) -> list[str] | None:
    """What the entry point runs for ``arguments``, as `notefall` argv (None: not the CLI)."""
    command, rest = arguments[0], arguments[1:]
    if command == "api":
        return ["serve", "--no-migrate", "--host", "0.0.0.0", "--port", "8000", *rest]
    if command == "flower":
        return ["flower", "--address", "0.0.0.0", "--port", "5555", *rest]
    if command in ("migrate", "wait-for-migrations"):
        return None
    return arguments


def test_the_entrypoint_turns_each_command_into_what_the_cli_accepts():
    script = ENTRYPOINT.read_text(encoding="utf-8")
    assert 'exec notefall serve --no-migrate --host 0.0.0.0 --port 8000 "$@"' in script
    assert 'exec notefall flower --address 0.0.0.0 --port 5555 "$@"' in script
    commands = [
        s["command"] for s in compose()["services"].values() if "build" in s or "pull_policy" in s
    ]
    commands += [c["args"] for spec in pod_specs().values() for c in spec["containers"]]
    commands += [c["args"] for spec in pod_specs().values() for c in spec.get("initContainers", [])]
    assert len(commands) >= 10
    parser = build_parser()
    for arguments in commands:
        argv = notefall_argv([re.sub(r"\$\((\w+)\)", "user:password", a) for a in arguments])
        if argv is not None:
            parser.parse_args(argv)  # exits (SystemExit) on anything the CLI refuses
        else:
            assert arguments[0] in script


def test_every_notefall_variable_is_a_real_setting():
    named = set(re.findall(r"\bNOTEFALL_[A-Z0-9_]+", COMPOSE.read_text(encoding="utf-8")))
    for path in K8S.glob("*.yaml"):
        named |= set(re.findall(r"\bNOTEFALL_[A-Z0-9_]+", path.read_text(encoding="utf-8")))
    assert len(named) >= 10
    assert named - SETTING_VARIABLES - KEDA_VARIABLES == set()


def test_compose_runs_the_whole_cloud_and_migrates_once_before_the_api():
    services = compose()["services"]
    assert {
        "postgres", "redis", "migrate", "api", "worker", "beat", "flower", "prometheus", "mailpit",
    } <= set(services)  # fmt: skip
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("api", "worker", "worker-free-first", "beat"):
        assert (
            services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        ), name
    # Every image from elsewhere is pinned to a release; ours are built here.
    for name, service in services.items():
        image = service["image"]
        if image.startswith("notefall-"):
            assert "build" in service or service["pull_policy"] == "never", name
            continue
        assert re.search(r":v?\d+\.\d+", image) and "latest" not in image, (name, image)
    # Nothing listens beyond this machine.
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port
    targets = set(dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8")))
    for service in services.values():
        if "build" in service:
            build = service["build"]
            context = (COMPOSE.parent / build["context"]).resolve()
            assert context == ROOT and (context / build["dockerfile"]).is_file()
            assert build["target"] in targets


def test_compose_redis_and_prometheus_use_the_packaged_configuration():
    services = compose()["services"]
    redis_command = services["redis"]["command"]
    assert redis_command[:2] == ["redis-server", "/usr/local/etc/redis/redis.conf"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in services["redis"]["volumes"]}
    assert (COMPOSE.parent / mounts["/usr/local/etc/redis/redis.conf"]).resolve() == (
        ROOT / "packaging" / "redis" / "redis.conf"
    )
    prometheus = {m.split(":")[1]: m.split(":")[0] for m in services["prometheus"]["volumes"]}
    folder = (COMPOSE.parent / prometheus["/etc/prometheus"]).resolve()
    assert (folder / "prometheus.yml").is_file() and (folder / "alerts.yml").is_file()
    # prometheus.yml scrapes notefall-api:8000: the compose alias and the Kubernetes Service.
    scrape = yaml.safe_load((folder / "prometheus.yml").read_text(encoding="utf-8"))
    (target,) = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert target == "notefall-api:8000"
    assert "notefall-api" in services["api"]["networks"]["default"]["aliases"]
    assert by_kind("Service")["notefall-api"]["spec"]["ports"][0]["port"] == 8000
    assert services["api"]["environment"]["NOTEFALL_SMTP_URL"] == "smtp://mailpit:1025"


def _seconds(duration: str) -> int:
    assert duration.endswith("s"), duration
    return int(duration[:-1])


def test_workers_get_one_segment_s_grace_everywhere_and_a_meaningful_liveness_check():
    grace = pod_specs()["notefall-worker"]["terminationGracePeriodSeconds"]
    assert grace >= 120  # docs/renders.md: 120 s is generous for 10 s segments at 1080p
    services = compose()["services"]
    assert _seconds(services["worker"]["stop_grace_period"]) == grace
    assert _seconds(services["worker-free-first"]["stop_grace_period"]) == grace
    (worker,) = pod_specs()["notefall-worker"]["containers"]
    liveness = worker["livenessProbe"]["exec"]["command"]
    assert liveness[-1] == "worker-alive"
    # Restarted only after several failures in a row: one idle moment between tasks is not it.
    assert (
        worker["livenessProbe"]["failureThreshold"] * worker["livenessProbe"]["periodSeconds"] >= 60
    )
    healthcheck = dict(dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8"))["worker"].steps)
    assert healthcheck["HEALTHCHECK"].endswith('"worker-alive"]')


def test_the_api_is_probed_on_healthz_and_readyz_and_never_loses_its_last_pod():
    (api,) = pod_specs()["notefall-api"]["containers"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["startupProbe"]["httpGet"]["path"] == "/healthz"
    budgets = {
        b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]: b
        for b in by_kind("PodDisruptionBudget").values()
    }
    assert budgets["notefall-api"]["spec"]["minAvailable"] == 1
    assert budgets["notefall-worker"]["spec"]["maxUnavailable"] == 1
    assert by_kind("Deployment")["notefall-beat"]["spec"]["replicas"] == 1
    assert by_kind("Deployment")["notefall-beat"]["spec"]["strategy"]["type"] == "Recreate"


@pytest.mark.parametrize(
    "name", ["notefall-api", "notefall-worker", "notefall-beat", "notefall-migrate"]
)
def test_every_workload_waits_for_or_runs_the_migration_runs_unprivileged_and_asks_for_resources(
    name: str,
):
    spec = pod_specs()[name]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001
    containers = spec["containers"] + spec.get("initContainers", [])
    for container in containers:
        assert container["image"] == "notefall"  # set once, in kustomization.yaml
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["requests"]["memory"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    first = [c["args"][0] for c in containers]
    assert "migrate" in first if name == "notefall-migrate" else "wait-for-migrations" in first


def test_secrets_are_referenced_never_written_into_the_manifests():
    configuration = by_kind("ConfigMap")["notefall-settings"]["data"]
    secret_settings = {
        "NOTEFALL_SECRET_KEY",
        "NOTEFALL_DATABASE_URL",
        "NOTEFALL_REDIS_URL",
        "NOTEFALL_SMTP_URL",
        "NOTEFALL_STRIPE_SECRET_KEY",
        "NOTEFALL_STRIPE_WEBHOOK_SECRET",
    }
    assert not secret_settings & set(configuration)
    assert by_kind("Secret") == {}
    for name, spec in pod_specs().items():
        for container in spec["containers"]:
            sources = container.get("envFrom", [])
            refs = {s["secretRef"]["name"] for s in sources if "secretRef" in s}
            keyed = {
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in container.get("env", [])
                if "valueFrom" in e
            }
            assert refs | keyed == {"notefall-secrets"}, name
            assert all("value" not in e for e in container.get("env", [])), name


def test_kustomize_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert [image["name"] for image in kustomization["images"]] == ["notefall"]
