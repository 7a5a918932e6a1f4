"""Install manifests, Helm chart and examples agree with the code; no cluster, no helm needed.

The RBAC checks derive what is needed from ``modelship.controllers.rbac.REQUIRED_RULES``:
the manifests must grant exactly that, so that the chart grants what the code uses.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelship import __version__
from modelship.api import KINDS, kind_by_name
from modelship.controllers import main
from modelship.controllers.rbac import REQUIRED_RULES, granted_by, grants, required_grants
from modelship.resources.acceptance import parse_spec

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "manifests" / "install"
CHART = ROOT / "charts" / "modelship"
EXAMPLES = ROOT / "manifests" / "examples" / "quickstart"
IMAGE = f"ghcr.io/modelship/modelship:{__version__}"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _install() -> dict[tuple[str, str], dict[str, Any]]:
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(INSTALL.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in _docs(path):
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def _operator_args(args: list[str]) -> argparse.Namespace:
    assert args[0] == "operator", "the operator container runs `modelship operator`"
    parser = argparse.ArgumentParser(exit_on_error=False)
    main.add_arguments(parser)
    return parser.parse_args(args[1:])


# --- RBAC ------------------------------------------------------------------------------


def _explain(expected: set[tuple[str, str, str]], actual: set[tuple[str, str, str]], where: str) -> str:
    missing, extra = sorted(expected - actual), sorted(actual - expected)
    return (
        f"{where} must grant exactly controllers/rbac.py REQUIRED_RULES.\n"
        f"  missing (add them): {missing}\n  extra (remove them, or add a Rule with a reason): {extra}"
    )


def test_rules_have_reasons_and_no_wildcards() -> None:
    for rule in REQUIRED_RULES:
        assert rule.why, rule
        assert "*" not in rule.verbs and "*" not in rule.resources, rule


def test_the_controllers_kinds_are_covered() -> None:
    needed = required_grants(peering=False)
    for kind in KINDS:
        for verb in ("get", "list", "watch", "patch"):
            assert ("modelship.io", kind.plural, verb) in needed
        assert ("modelship.io", f"{kind.plural}/status", "patch") in needed
    assert ("", "events", "create") in needed


def test_install_clusterrole_grants_exactly_what_the_code_needs() -> None:
    role = _install()[("ClusterRole", "modelship-operator")]
    actual = granted_by(role["rules"])
    expected = required_grants(peering=False)
    assert actual == expected, _explain(expected, actual, "manifests/install/clusterrole.yaml")


def test_chart_rules_grant_exactly_what_the_code_needs() -> None:
    base = granted_by(yaml.safe_load((CHART / "files/rbac/rules.yaml").read_text()))
    assert base == required_grants(peering=False), _explain(required_grants(peering=False), base, "chart files/rbac/rules.yaml")
    peering = granted_by(yaml.safe_load((CHART / "files/rbac/peering-rules.yaml").read_text()))
    expected = grants(r for r in REQUIRED_RULES if r.peering_only)
    assert peering == expected, _explain(expected, peering, "chart files/rbac/peering-rules.yaml")


def test_install_binding_ties_the_role_to_the_deployments_account() -> None:
    objects = _install()
    binding = objects[("ClusterRoleBinding", "modelship-operator")]
    deployment = objects[("Deployment", "modelship-operator")]
    account = objects[("ServiceAccount", "modelship-operator")]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "modelship-operator"}
    (subject,) = binding["subjects"]
    pod = deployment["spec"]["template"]["spec"]
    assert subject == {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "modelship-system"}
    assert account["metadata"]["namespace"] == "modelship-system"


# --- the install Deployment ------------------------------------------------------------


def test_install_deployment() -> None:
    objects = _install()
    assert ("Namespace", "modelship-system") in objects
    deployment = objects[("Deployment", "modelship-operator")]
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate", "standalone: one replica, never two"
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    args = _operator_args(container["args"])
    config = main.config_from_args(args)
    assert config.clusterwide and config.health_host == "0.0.0.0" and config.peering_name is None
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": config.liveness_port, "metrics": config.metrics_port}
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz" and probe["port"] in ("health", config.liveness_port)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"requests", "limits"} <= set(container["resources"])
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/tmp" in mounts, "a read-only root needs a writable /tmp"


def test_kustomizations_list_existing_files() -> None:
    crd_kustomization = yaml.safe_load((ROOT / "crds" / "kustomization.yaml").read_text())
    assert sorted(crd_kustomization["resources"]) == sorted(f"{k.crd_name}.yaml" for k in KINDS)
    for directory in (INSTALL, EXAMPLES):
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        for resource in kustomization["resources"]:
            assert (directory / resource).exists(), f"{directory}/kustomization.yaml: {resource} does not exist"
    install = yaml.safe_load((INSTALL / "kustomization.yaml").read_text())["resources"]
    assert "../../crds" in install
    listed = {r for r in install if not r.startswith("..")}
    present = {p.name for p in INSTALL.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present, "every file of manifests/install is in its kustomization"


# --- the chart -------------------------------------------------------------------------


def _values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def _values_schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def test_values_match_the_schema() -> None:
    jsonschema.Draft7Validator.check_schema(_values_schema())
    jsonschema.Draft7Validator(_values_schema()).validate(_values())


@pytest.mark.parametrize(
    "bad",
    [
        {"unknown": 1},
        {"operator": {"replicas": "two"}},
        {"operator": {"logFormat": "xml"}},
        {"operator": {"watchNamespaces": ["Not_A_Namespace"]}},
        {"image": {"repository": "x", "pullPolicy": "Sometimes"}},
        {"crds": {"keep": "yes"}},
    ],
)
def test_the_schema_refuses_mistakes(bad: dict[str, Any]) -> None:
    values = _values()
    for key, value in bad.items():
        values[key] = {**values[key], **value} if isinstance(values.get(key), dict) else value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(_values_schema()).validate(values)


def _object_nodes(node: dict[str, Any], path: str = "values") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if "properties" in node:
        found.append((path, node))
        for name, sub in node["properties"].items():
            found.extend(_object_nodes(sub, f"{path}.{name}"))
    if isinstance(node.get("items"), dict):
        found.extend(_object_nodes(node["items"], f"{path}[]"))
    return found


def test_schema_objects_refuse_unknown_keys() -> None:
    loose = [
        path for path, node in _object_nodes(_values_schema())
        if node.get("additionalProperties") is not False and path != "values.operator.extraEnv[]"  # EnvVar has many shapes
    ]
    assert not loose, f"add additionalProperties: false to {loose}"


def test_every_value_is_commented() -> None:
    """Each leaf value (or a whole map/list value) has a comment right above it."""
    missing, documented_indent, commented = [], None, False
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            commented = False
            continue
        if stripped.startswith("#"):
            commented = True
            continue
        indent = len(line) - len(line.lstrip())
        if documented_indent is not None and indent > documented_indent:
            continue  # part of a documented value, e.g. resources.requests.cpu
        documented_indent = None
        key, _, rest = stripped.partition(":")
        if commented:
            documented_indent = indent
        elif rest.strip():
            missing.append(key)
        commented = False
    assert not missing, f"values without a comment above them: {missing}"


def test_chart_crds_are_the_generated_ones() -> None:
    chart = {p.name: p.read_text() for p in (CHART / "files" / "crds").glob("*.yaml")}
    generated = {f"{k.crd_name}.yaml": (ROOT / "crds" / f"{k.crd_name}.yaml").read_text() for k in KINDS}
    assert chart == generated, (
        "charts/modelship/files/crds drifted from crds/: run "
        "`modelship crds && cp crds/*.modelship.io.yaml charts/modelship/files/crds/`"
    )


def test_chart_version_and_image() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == __version__
    assert _values()["image"]["repository"] == IMAGE.rsplit(":", 1)[0]
    for name in ("_helpers.tpl", "NOTES.txt", "crds.yaml", "deployment.yaml", "clusterrole.yaml", "serviceaccount.yaml"):
        assert (CHART / "templates" / name).exists(), name
    assert "helm.sh/resource-policy" in (CHART / "templates" / "crds.yaml").read_text()


def _find_helm() -> str | None:
    """$MODELSHIP_HELM, else the helm that scripts/setup.sh builds into the cache, else PATH."""
    if os.environ.get("MODELSHIP_HELM"):
        return os.environ["MODELSHIP_HELM"]
    cache = Path(os.environ.get("MODELSHIP_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelship")
    built = sorted(cache.glob("tools/helm-*/helm"))
    return str(built[-1]) if built else shutil.which("helm")


HELM = _find_helm()


@pytest.mark.parametrize(
    ("sets", "peering"),
    [([], False), (["peering.enabled=true", "operator.replicas=2", "operator.watchNamespaces={a,b}"], True)],
)
def test_rendered_chart(sets: list[str], peering: bool) -> None:
    assert HELM, "helm is needed to render the chart: scripts/setup.sh builds it (MODELSHIP_HELM names it)"
    command = [str(HELM), "template", "ms", str(CHART), "--namespace", "modelship-system", "--kube-version", "1.36.0"]
    for item in sets:
        command += ["--set", item]
    docs = [d for d in yaml.safe_load_all(subprocess.run(command, check=True, capture_output=True, text=True).stdout) if d]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    (role,) = by_kind["ClusterRole"]
    assert granted_by(role["rules"]) == required_grants(peering=peering)
    crds = {d["metadata"]["name"]: d for d in by_kind["CustomResourceDefinition"]}
    for kind in KINDS:
        crd = crds[kind.crd_name]
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        generated = yaml.safe_load((ROOT / "crds" / f"{kind.crd_name}.yaml").read_text())
        assert crd["spec"] == generated["spec"]
    (deployment,) = by_kind["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    config = main.config_from_args(_operator_args(container["args"]))
    assert (config.peering_name is not None) is peering
    assert container["image"] == IMAGE


# --- examples --------------------------------------------------------------------------


def _example_objects() -> list[dict[str, Any]]:
    return [doc for path in sorted(EXAMPLES.glob("*.yaml")) if path.name != "kustomization.yaml" for doc in _docs(path)]


def test_quickstart_has_one_of_each_kind() -> None:
    assert sorted(o["kind"] for o in _example_objects()) == sorted(k.kind for k in KINDS)


@pytest.mark.parametrize("obj", _example_objects(), ids=lambda o: o["kind"])
def test_examples_are_valid(obj: dict[str, Any]) -> None:
    kind = kind_by_name(obj["kind"])
    assert obj["apiVersion"] == kind.api_version
    crd = yaml.safe_load((ROOT / "crds" / f"{kind.crd_name}.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    # OpenAPI v3 of a CRD is close to draft 4 (boolean exclusiveMinimum); x-kubernetes-*
    # keywords are ignored here and CEL rules are checked by the API server in e2e.
    jsonschema.Draft4Validator(schema).validate(obj)
    parsed = parse_spec(kind.spec, obj["spec"])
    assert parsed.ok, [p.describe() for p in parsed.problems]
