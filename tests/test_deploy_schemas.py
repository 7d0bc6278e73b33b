"""(P1 proposal: becomes tests/test_deploy_schemas.py once requirements/dev.txt pins
check-jsonschema==0.39.0 and kubernetes-validate==1.37.0 with their locked dependencies.
NOT run by P1: the packages are not installed.)

The compose file against the Compose Specification's JSON schema (vendored by
check-jsonschema), and every Kubernetes manifest of a built-in kind against the Kubernetes
OpenAPI-derived JSON schemas (kubernetes-validate, strict: unknown fields are errors). The
KEDA ScaledObject is a custom resource with no schema in either package; its fields are
checked in tests/test_packaging_files.py.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "packaging" / "compose" / "compose.yaml"
K8S = ROOT / "packaging" / "k8s"
# The oldest Kubernetes these manifests promise to work on (policy/v1 PDBs: 1.21+).
KUBERNETES_VERSION = "1.28.0"


def compose_schema() -> dict:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text(encoding="utf-8"))


def compose_validator() -> jsonschema.protocols.Validator:
    # The schema's own dialect (2020-12): under draft 7 the siblings of a $ref are ignored,
    # and a misspelt service key would pass.
    schema = compose_schema()
    return jsonschema.validators.validator_for(schema)(schema)


def test_the_compose_file_follows_the_compose_specification():
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    validator = compose_validator()
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors] == []


def test_a_misspelt_compose_key_is_caught_by_the_schema():
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    document["services"]["api"]["depends_onn"] = document["services"]["api"].pop("depends_on")
    errors = list(compose_validator().iter_errors(document))
    assert any("depends_onn" in e.message for e in errors), errors


def built_in_resources() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document and not document["apiVersion"].startswith("keda.sh/"):
                found.append(
                    (f"{path.name}:{document['kind']}/{document['metadata']['name']}", document)
                )
    return found


@pytest.mark.parametrize(
    ("where", "resource"), built_in_resources(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_manifest_follows_the_kubernetes_schema(where: str, resource: dict):
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{where}: {'.'.join(map(str, error.path))}: {error.message}")


def test_a_misspelt_manifest_field_is_caught_by_the_schema():
    (_, deployment) = next(r for r in built_in_resources() if r[1]["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
