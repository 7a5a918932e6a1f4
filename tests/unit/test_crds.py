"""The committed CRDs are what the generator writes, and they are good CRDs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelship.api import GROUP, KINDS, VERSION, Kind
from modelship.api.crdgen import crd_files

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"
SHORT_NAMES = {"Experiment": ["exp"], "ModelVersion": ["mv"], "ModelDeployment": ["mdep"], "RegisteredModel": ["rm"]}
# The standard top-level fields every kind has; Kubernetes documents them itself.
STANDARD_FIELDS = {"apiVersion", "kind", "metadata"}


def _crd(kind: Kind) -> dict[str, Any]:
    return yaml.safe_load((CRD_DIR / f"{kind.crd_name}.yaml").read_text())


def _schema(kind: Kind) -> dict[str, Any]:
    return _crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _nodes(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node under ``node`` (itself included), with a readable path."""
    yield path, node
    for name, sub in (node.get("properties") or {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}{{}}")
    for i, sub in enumerate(node.get("anyOf") or []):
        yield from _nodes(sub, f"{path}|anyOf{i}")


def _fields(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every named property (field) under ``node``."""
    for name, sub in (node.get("properties") or {}).items():
        yield f"{path}.{name}", sub
        yield from _fields(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _fields(node[key], f"{path}[]")


def test_committed_crds_match_the_generator() -> None:
    generated = crd_files()
    # Nothing else in crds/: `kubectl apply --server-side -f crds/` applies every file there
    # (a kustomization.yaml made it fail with `no matches for kind "Kustomization"`).
    committed = {p.name: p.read_text() for p in CRD_DIR.iterdir()}
    assert set(committed) == set(generated), "crds/ has other files than the generator writes; run `modelship crds`"
    for name, text in generated.items():
        assert committed[name] == text, (
            f"crds/{name} drifted from modelship.api: run `modelship crds` and commit the result"
        )


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural(kind: Kind) -> None:
    problems = []
    for path, node in _nodes(_schema(kind), kind.kind):
        if "$ref" in node or "$defs" in node:
            problems.append(f"{path}: $ref/$defs must be inlined")
        if "nullable" in node:
            problems.append(f"{path}: nullable is not used; optional fields are just not required")
        if any(isinstance(s, dict) and s.get("type") == "null" for s in node.get("anyOf") or []):
            problems.append(f"{path}: anyOf with null (an X | None that was not flattened)")
        typed = (
            "type" in node
            or node.get("x-kubernetes-preserve-unknown-fields")
            or node.get("x-kubernetes-int-or-string")
            or "|anyOf" in path
        )
        if not typed:
            problems.append(f"{path}: no type (nor preserve-unknown-fields / int-or-string)")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_field_has_a_description(kind: Kind) -> None:
    schema = _schema(kind)
    assert schema.get("description"), f"{kind.kind}: the kind itself needs a description"
    missing = [
        path
        for path, node in _fields(schema, kind.kind)
        if not node.get("description") and path.split(".", 1)[1] not in STANDARD_FIELDS
    ]
    assert not missing, "fields without description (add Field(description=...)):\n" + "\n".join(missing)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_names_subresource_and_columns(kind: Kind) -> None:
    crd = _crd(kind)
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{kind.plural}.{GROUP}"
    assert spec["group"] == GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["shortNames"] == SHORT_NAMES[kind.kind]
    assert spec["names"]["categories"] == ["modelship"]
    (version,) = spec["versions"]
    assert version["name"] == VERSION and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert {"Ready", "Age"} <= set(columns)
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    for column in columns.values():
        assert column["type"] in {"string", "integer", "number", "boolean", "date"}
        assert column["jsonPath"].startswith(".")
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert "observedGeneration" in status
    condition = status["conditions"]["items"]["properties"]
    assert {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"} <= set(condition)
