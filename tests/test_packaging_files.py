"""packaging/ files for operators: they parse, and they name what the code really has.

The alert rules are checked against the exposition of a real app (real Redis, a migrated
SQLite database), so renaming a metric without updating its alert fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml
from notefall.server.kit.app import create_app
from notefall.server.migrations import upgrade_to_head
from notefall.server.renders import keys, metrics
from notefall.server.renders.queues import RENDER_QUEUES
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import TestClient, make_settings
from tests.support.redis_server import running_redis

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
RENDERS_GUIDE = ROOT / "docs" / "renders.md"
METRIC_NAME = re.compile(r"\bnotefall_[a-z_]+\b")


def yaml_documents(path: Path) -> list[dict]:
    documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert documents and all(isinstance(d, dict) for d in documents), path
    return documents


def test_every_yaml_file_parses():
    files = sorted([*PACKAGING.rglob("*.yml"), *PACKAGING.rglob("*.yaml")])
    assert {f.name for f in files} >= {
        "alerts.yml",
        "prometheus.yml",
        "worker-scaledobject.yaml",
        "compose.yaml",
    }
    for path in files:
        yaml_documents(path)


def alert_rules() -> list[dict]:
    (document,) = yaml_documents(PACKAGING / "prometheus" / "alerts.yml")
    return [rule for group in document["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def exported_names(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Every sample name GET /metrics of a real app exports, with each counter, histogram
    and consumption gauge given a value first (some appear only once they have one)."""
    folder = tmp_path_factory.mktemp("metrics")
    url = f"sqlite:///{folder / 'notefall.db'}"
    upgrade_to_head(url)
    with running_redis(folder / "redis") as server:
        client = redis.Redis.from_url(server.url)
        metrics.record_outcome(client, "failed")
        metrics.record_retry(client)
        metrics.observe_render_seconds(client, "720p", 12.0)
        client.hset(keys.CONSUMED, "render.free", "1700000000")
        client.close()
        settings = make_settings(folder / "data", url, redis_url=server.url)
        with TestClient(create_app(settings)) as app:
            response = app.get("/metrics")
    assert response.status_code == 200
    yield {
        sample.name
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_alert_expressions_use_only_metrics_that_exist(exported_names: set[str]):
    rules = alert_rules()
    assert len(rules) >= 5
    for rule in rules:
        used = set(METRIC_NAME.findall(rule["expr"]))
        assert used, rule["alert"]
        assert used <= exported_names, (rule["alert"], used - exported_names)


def test_the_issue_s_alerts_exist_each_with_a_runbook_in_the_guide():
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert {
        "NotefallBacklogGrowing",
        "NotefallNoConsumers",
        "NotefallDeadLettersGrowing",
        "NotefallFailureRateHigh",
        "NotefallStaleHeartbeats",
    } <= set(rules)
    guide = RENDERS_GUIDE.read_text(encoding="utf-8")
    # GitHub's anchors: lower case, spaces to dashes, punctuation dropped.
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", guide, flags=re.MULTILINE)
    }
    for name, rule in rules.items():
        runbook = rule["annotations"]["runbook"]
        page, _, anchor = runbook.partition("#")
        assert page == "docs/renders.md" and anchor in anchors, (name, runbook)
        assert rule["labels"]["severity"] in {"warning", "critical"}


def redis_settings() -> dict[str, str]:
    settings = {}
    for line in (PACKAGING / "redis" / "redis.conf").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, rest = line.partition(" ")
            settings[name.lower()] = rest.strip()
    return settings


def test_redis_conf_keeps_queued_jobs():
    settings = redis_settings()
    assert settings["appendonly"] == "yes"
    assert settings["appendfsync"] == "everysec"
    assert settings["maxmemory-policy"] == "noeviction"


def test_keda_scales_on_every_render_queue_and_waits_for_a_segment_on_shutdown():
    (scaled,) = yaml_documents(PACKAGING / "k8s" / "worker-scaledobject.yaml")
    deployment, _budget = yaml_documents(PACKAGING / "k8s" / "worker.yaml")
    assert scaled["kind"] == "ScaledObject" and scaled["apiVersion"].startswith("keda.sh/")
    triggers = scaled["spec"]["triggers"]
    assert all(t["type"] == "redis" for t in triggers)
    assert {t["metadata"]["listName"] for t in triggers} == set(RENDER_QUEUES.values())
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert scaled["spec"]["minReplicaCount"] >= 1
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= 60
