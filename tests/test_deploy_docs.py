"""docs/operations.md must not drift from what it documents: every setting, every metric a real
/metrics exports, every alert with the runbook its rule names, and links that lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from notefall.server.kit.settings import Settings

from tests.test_packaging_files import exported_names  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
OPERATIONS = (DOCS / "operations.md").read_text(encoding="utf-8")
HISTOGRAM_PARTS = ("_bucket", "_count", "_sum", "_created")


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    return {
        re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    }


def test_every_setting_is_documented_in_the_operations_guide():
    documented = set(re.findall(r"`(NOTEFALL_[A-Z0-9_]+)`", OPERATIONS))
    settings = {f"NOTEFALL_{name.upper()}" for name in Settings.model_fields}
    assert sorted(settings - documented) == []


def test_every_exported_metric_is_explained(exported_names: set[str]):  # noqa: F811
    metrics = {
        name
        for name in exported_names
        if not (name.endswith(HISTOGRAM_PARTS) and name.rsplit("_", 1)[0] in exported_names)
    }
    histograms = {
        name.removesuffix(part)
        for name in exported_names
        for part in HISTOGRAM_PARTS
        if name.endswith(part)
    }
    names = (metrics - {f"{h}{p}" for h in histograms for p in HISTOGRAM_PARTS}) | histograms
    assert len(names) >= 15
    missing = [n for n in sorted(names) if not re.search(rf"`{re.escape(n)}[`{{]", OPERATIONS)]
    assert missing == []


def test_every_alert_is_listed_with_the_runbook_its_rule_names():
    (rules,) = yaml.safe_load_all((ROOT / "packaging" / "prometheus" / "alerts.yml").read_text())
    for rule in (r for group in rules["groups"] for r in group["rules"]):
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        row = next(
            (line for line in OPERATIONS.splitlines() if line.startswith(f"| `{rule['alert']}`")),
            None,
        )
        assert row is not None, rule["alert"]
        assert f"({Path(page).name}#{anchor})" in row, (rule["alert"], row)
        assert f"| {rule['labels']['severity']} |" in row
        target = (ROOT / page).read_text(encoding="utf-8")
        assert anchor in anchors(target), rule["annotations"]["runbook"]


def test_links_in_the_operations_guide_lead_somewhere():
    links = re.findall(r"\]\(([^)\s]+)\)", OPERATIONS)
    assert len(links) >= 20
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        path, _, anchor = link.partition("#")
        target = (DOCS / path).resolve() if path else DOCS / "operations.md"
        assert target.exists(), link
        if anchor:
            assert anchor in anchors(target.read_text(encoding="utf-8")), link


def test_the_guide_names_every_packaging_file_an_operator_uses():
    for path in [
        "packaging/docker/Dockerfile",
        "packaging/docker/install-server.sh",
        "packaging/docker/entrypoint.sh",
        "packaging/compose/compose.yaml",
        "packaging/redis/redis.conf",
        "packaging/prometheus/prometheus.yml",
        "packaging/prometheus/alerts.yml",
    ]:
        assert path in OPERATIONS, path
        assert (ROOT / path).is_file()
    manifests = {p.name for p in (ROOT / "packaging" / "k8s").glob("*.yaml")}
    assert all(f"`{name}`" in OPERATIONS for name in manifests)
