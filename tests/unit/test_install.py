"""Install manifests, Helm chart and examples agree with the code; no cluster.

The chart is rendered with the helm that scripts/setup.sh builds (``helm template``, no
cluster); manifests/install.yaml is the chart rendered by scripts/render_install.py, and a
test fails when it drifts. The RBAC checks derive what is needed from
``modelship.controllers.rbac.REQUIRED_RULES`` (and ``REGISTRY_READER_RULES`` /
``REGISTRY_WRITER_RULES`` for the tracking server's registry API): the chart must grant
exactly that.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from scripts import render_install

from modelship import __version__, kube
from modelship.api import KINDS, kind_by_name
from modelship.controllers import main
from modelship.controllers.rbac import (
    ALL,
    REGISTRY_READER_RULES,
    REGISTRY_WRITER_RULES,
    REQUIRED_RULES,
    SOME,
    UI_CLUSTER_RULE,
    UI_LIVE_RULE,
    WEBHOOK_RECORD_RULE,
    WEBHOOK_SECRET_RULE,
    granted_by,
    grants,
    required_grants,
)
from modelship.resources.acceptance import parse_spec
from modelship.tracking import cli_db, cli_server
from modelship.tracking.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "manifests" / "install.yaml"
CHART = ROOT / "charts" / "modelship"
EXAMPLES = ROOT / "manifests" / "examples" / "quickstart"
IMAGE = f"ghcr.io/modelship/modelship:{__version__}"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _install() -> dict[tuple[str, str], dict[str, Any]]:
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in _docs(INSTALL):
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in objects, f"manifests/install.yaml has {key} twice"
        objects[key] = doc
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
    for rule in REQUIRED_RULES + REGISTRY_READER_RULES + REGISTRY_WRITER_RULES:
        assert rule.why, rule
        assert "*" not in rule.verbs and "*" not in rule.resources, rule


def test_the_controllers_kinds_are_covered() -> None:
    needed = required_grants(peering=False)
    for kind in KINDS:
        for verb in ("list", "watch", "patch"):  # kopf's; nothing gets them one by one
            assert ("modelship.io", kind.plural, verb) in needed
        assert ("modelship.io", f"{kind.plural}/status", "patch") in needed
    assert ("", "events", "create") in needed


def _operator_grants(
    objects: dict[tuple[str, str], dict[str, Any]], name: str, namespace: str | None = None
) -> set[tuple[str, str, str]]:
    """What the operator's roles grant together: its ClusterRole (cluster-scoped resources) and,
    for namespaced ones, the second ClusterRole (every namespace) or the Role in ``namespace``."""
    namespaced = objects.get(("ClusterRole", f"{name}-namespaced")) or objects[("Role", f"{namespace}/{name}")]
    return granted_by(objects[("ClusterRole", name)]["rules"]) | granted_by(namespaced["rules"])


def test_install_clusterroles_grant_exactly_what_the_code_needs() -> None:
    objects = _install()
    actual = _operator_grants(objects, "modelship-operator")
    expected = required_grants(peering=False, watching=ALL)
    assert actual == expected, _explain(expected, actual, "manifests/install.yaml's ClusterRoles")
    for name in ("modelship-operator", "modelship-operator-namespaced"):
        assert objects[("ClusterRoleBinding", name)]["roleRef"]["name"] == name, "all namespaces: bound cluster-wide"


def test_chart_rbac_files_are_generated_from_the_declaration() -> None:
    """charts/modelship/files/rbac/*.yaml are what scripts/render_install.py renders from controllers/rbac.py."""
    rendered = render_install.render_rbac_files()
    assert {p.name for p in (CHART / "files" / "rbac").glob("*.yaml")} == {p.name for p in rendered}
    for path, text in rendered.items():
        assert path.read_text() == text, f"{path.name} drifted from controllers/rbac.py: run `{render_install.COMMAND}`"
    base = granted_by(yaml.safe_load((CHART / "files/rbac/rules.yaml").read_text()))
    assert base == required_grants(peering=False, cluster_scoped=False)


def test_no_clusterrole_grants_secrets() -> None:
    """The operator reads one Secret, by name; the chart never grants Secrets cluster-wide."""
    for sets in ((), ("operator.webhookSecret=ml/hooks",), ("peering.enabled=true",)):
        for (kind, name), obj in _render(*sets).items():
            if kind == "ClusterRole":
                assert not [g for g in granted_by(obj["rules"]) if g[1] == "secrets"], (name, sets)


def test_the_webhook_secret_is_granted_by_name_in_its_namespace() -> None:
    objects = _render("operator.webhookSecret=ml/hooks")
    role = objects[("Role", f"ml/{OPERATOR}-webhook-secret")]
    (rule,) = role["rules"]
    assert rule["resourceNames"] == ["hooks"]
    assert granted_by([rule]) == grants([WEBHOOK_SECRET_RULE])
    binding = objects[("RoleBinding", f"ml/{OPERATOR}-webhook-secret")]
    assert binding["roleRef"]["name"] == f"{OPERATOR}-webhook-secret"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": OPERATOR, "namespace": NAMESPACE}]
    assert not [k for k in _render() if k[1].endswith("-webhook-secret")], "no webhookSecret, no Secret role"


@pytest.mark.parametrize("peering", [False, True])
def test_watched_namespaces_get_roles_not_a_clusterrole(peering: bool) -> None:
    """operator.watchNamespaces: the namespaced rules are a Role in each of those namespaces and
    nothing cluster-wide; the cluster-scoped ones (CRDs, namespaces) stay in the ClusterRole."""
    sets = ("operator.watchNamespaces={team-a,team-b}", *(("peering.enabled=true",) if peering else ()))
    objects = _render(*sets)
    assert ("ClusterRole", f"{OPERATOR}-namespaced") not in objects
    assert ("ClusterRoleBinding", f"{OPERATOR}-namespaced") not in objects
    assert objects[("ClusterRoleBinding", OPERATOR)]["roleRef"]["name"] == OPERATOR
    assert granted_by(objects[("ClusterRole", OPERATOR)]["rules"]) == required_grants(
        peering=peering, cluster_scoped=True, watching=SOME
    )
    for namespace in ("team-a", "team-b"):
        role = objects[("Role", f"{namespace}/{OPERATOR}")]
        assert granted_by(role["rules"]) == required_grants(peering=peering, cluster_scoped=False, watching=SOME)
        binding = objects[("RoleBinding", f"{namespace}/{OPERATOR}")]
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": OPERATOR}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": OPERATOR, "namespace": NAMESPACE}]
    assert sorted(k for k in objects if k[0] in ("Role", "RoleBinding") and "-test" not in k[1]) == [
        ("Role", f"team-a/{OPERATOR}"),
        ("Role", f"team-b/{OPERATOR}"),
        ("RoleBinding", f"team-a/{OPERATOR}"),
        ("RoleBinding", f"team-b/{OPERATOR}"),
    ]


def test_an_operator_of_every_namespace_is_granted_no_namespace_watch() -> None:
    """kopf lists and watches Namespaces only when it serves some of them; KopfPeerings only then too."""
    for sets in ((), ("peering.enabled=true",)):
        grants = _operator_grants(_render(*sets), OPERATOR)
        assert not [g for g in grants if g[1] in ("namespaces", "kopfpeerings")], (sets, grants)


def test_chart_tracking_rules_grant_exactly_what_the_registry_reader_needs() -> None:
    declared = granted_by(yaml.safe_load((CHART / "files/rbac/tracking-rules.yaml").read_text()))
    expected = grants(REGISTRY_READER_RULES)
    assert declared == expected, _explain(expected, declared, "chart files/rbac/tracking-rules.yaml").replace(
        "REQUIRED_RULES", "REGISTRY_READER_RULES"
    )


def test_chart_tracking_write_rules_grant_exactly_what_the_registry_writer_needs() -> None:
    declared = granted_by(yaml.safe_load((CHART / "files/rbac/tracking-write-rules.yaml").read_text()))
    expected = grants(REGISTRY_WRITER_RULES)
    assert declared == expected, _explain(expected, declared, "chart files/rbac/tracking-write-rules.yaml").replace(
        "REQUIRED_RULES", "REGISTRY_WRITER_RULES"
    )


def _verb(method: str, path: str, params: dict[str, Any]) -> tuple[str, str, str]:
    """The (group, resource, verb) that RBAC checks for one API call."""
    parts = path.strip("/").split("/")
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    if rest[0] == "namespaces" and len(rest) > 2:
        rest = rest[2:]
    resource = f"{rest[0]}/{rest[2]}" if len(rest) > 2 else rest[0]
    if method == "GET":
        verb = "get" if len(rest) > 1 else "watch" if params.get("watch") else "list"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
    return group, resource, verb


@pytest.mark.parametrize("namespace", [None, "ml"])
def test_the_registry_reader_uses_exactly_its_rules(monkeypatch: pytest.MonkeyPatch, namespace: str | None) -> None:
    """KubeReader's API calls, as RBAC sees them, are REGISTRY_READER_RULES (no more, no fewer)."""
    from modelship.tracking.server.registry import KubeReader

    calls: set[tuple[str, str, str]] = set()
    pages = iter([{"items": [{"a": 1}], "metadata": {"continue": "next"}}, {"items": [{"b": 2}], "metadata": {}}])

    def request(method: str, path: str, body: Any = None, **params: Any) -> Any:
        calls.add(_verb(method, path, params))
        return next(pages)

    monkeypatch.setattr(kube, "request", request)
    assert KubeReader(namespace).list_versions() == [{"a": 1}, {"b": 2}]
    pages = iter([{"items": [], "metadata": {}}])
    assert KubeReader(namespace).list_registered_models() == []
    for listing in ("list_experiments", "list_deployments"):  # the web UI's Kubernetes views
        pages = iter([{"items": [{"c": 3}], "metadata": {}}])
        assert getattr(KubeReader(namespace), listing)() == [{"c": 3}]
    pages = iter([{"data": {"delivery-x": "{}"}}])  # the registry page's webhook delivery record, by name
    assert KubeReader(namespace).webhook_deliveries("ml") == {"delivery-x": "{}"}
    pages = iter([{"items": [{"s": 1}], "metadata": {}}])  # the Deployments page's live figures
    assert KubeReader(namespace).endpoint_slices("ml", ["d-blue", "d-blue-canary"]) == [{"s": 1}]
    expected = grants(REGISTRY_READER_RULES)
    assert calls == expected, (
        _explain(expected, calls, "KubeReader's calls")
        .replace("must grant exactly", "must use exactly")
        .replace("REQUIRED_RULES", "REGISTRY_READER_RULES")
    )


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def test_the_registry_writer_uses_exactly_its_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every MLflow registry write, through KubeObjects: its API calls, as RBAC sees them, are
    REGISTRY_READER_RULES + REGISTRY_WRITER_RULES (no more, no fewer). The fake API server
    here numbers and observes instantly, as the operator would."""
    import copy

    from modelship.tracking.server.registry import KubeReader
    from modelship.tracking.server.registry_write import KubeObjects, RegistryWrites, WriteSettings

    calls: set[tuple[str, str, str]] = set()
    stored: dict[tuple[str, str], dict[str, Any]] = {}

    def request(method: str, path: str, body: Any = None, **params: Any) -> Any:
        calls.add(_verb(method, path, params))
        parts = path.strip("/").split("/")  # apis/modelship.io/v1alpha1/namespaces/ml/<plural>[/<name>]
        plural, name = parts[5], (parts[6] if len(parts) > 6 else None)
        if method == "GET" and name is None:
            return {"items": [copy.deepcopy(o) for (p, _), o in stored.items() if p == plural], "metadata": {}}
        if method == "POST":
            obj = copy.deepcopy(body)
            meta = obj["metadata"]
            meta.setdefault("name", f"{meta.get('generateName')}{len(stored):05d}")
            meta.update(generation=1, creationTimestamp="2026-01-01T00:00:00Z")
            if plural == "modelversions":
                numbered = sum(1 for p, _ in stored if p == plural)
                obj["status"] = {"version": numbered + 1, "observedGeneration": 1}
            stored[(plural, meta["name"])] = obj
            return copy.deepcopy(obj)
        if (plural, name) not in stored:
            raise kube.KubeError(404, "not found")
        if method == "GET":
            return copy.deepcopy(stored[(plural, name)])
        if method == "DELETE":
            return stored.pop((plural, name))
        obj = stored[(plural, name)]
        _merge(obj, body)
        obj["metadata"]["generation"] += 1
        obj.setdefault("status", {})["observedGeneration"] = obj["metadata"]["generation"]
        return copy.deepcopy(obj)

    monkeypatch.setattr(kube, "request", request)
    writes = RegistryWrites(
        KubeReader("ml"), WriteSettings(KubeObjects(), "ml", wait=1, poll=0.01), run_artifact_uri=lambda _: None
    )
    model = {"name": "iris"}
    for method, path, params in [
        ("POST", "registered-models/create", {**model, "tags": [{"key": "a", "value": "b"}]}),
        ("POST", "model-versions/create", {**model, "source": "runs:/r/model", "run_id": "r"}),
        ("POST", "model-versions/create", {**model, "source": "runs:/r/model", "run_id": "r"}),
        ("POST", "model-versions/transition-stage", {**model, "version": "2", "stage": "Production"}),
        (
            "POST",
            "model-versions/transition-stage",
            {**model, "version": "1", "stage": "Production", "archive_existing_versions": True},
        ),
        ("POST", "registered-models/alias", {**model, "alias": "champion", "version": "2"}),
        ("DELETE", "registered-models/alias", {**model, "alias": "champion"}),
        ("PATCH", "registered-models/update", {**model, "description": "d"}),
        ("POST", "registered-models/set-tag", {**model, "key": "k", "value": "v"}),
        ("DELETE", "registered-models/delete-tag", {**model, "key": "k"}),
        ("PATCH", "model-versions/update", {**model, "version": "1", "description": "d"}),
        ("POST", "model-versions/set-tag", {**model, "version": "1", "key": "k", "value": "v"}),
        ("DELETE", "model-versions/delete-tag", {**model, "version": "1", "key": "k"}),
        ("DELETE", "model-versions/delete", {**model, "version": "1"}),
        ("DELETE", "registered-models/delete", model),
    ]:
        writes(method, path, params)
    assert stored == {}
    # Writes read the registry's two kinds, not the web UI's (Experiments, ModelDeployments, the delivery record).
    expected = grants(REGISTRY_READER_RULES + REGISTRY_WRITER_RULES) - grants(
        (UI_CLUSTER_RULE, WEBHOOK_RECORD_RULE, UI_LIVE_RULE)
    )
    assert calls == expected, (
        _explain(expected, calls, "RegistryWrites' calls")
        .replace("must grant exactly", "must use exactly")
        .replace("REQUIRED_RULES", "REGISTRY_READER_RULES + REGISTRY_WRITER_RULES")
    )


def test_install_binding_ties_the_role_to_the_deployments_account() -> None:
    objects = _install()
    binding = objects[("ClusterRoleBinding", "modelship-operator")]
    deployment = objects[("Deployment", "modelship-operator")]
    account = objects[("ServiceAccount", "modelship-operator")]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "modelship-operator",
    }
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


def test_quickstart_kustomization_lists_existing_files() -> None:
    kustomization = yaml.safe_load((EXAMPLES / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (EXAMPLES / resource).exists(), f"{EXAMPLES}/kustomization.yaml: {resource} does not exist"


def test_install_yaml_is_the_rendered_chart() -> None:
    """manifests/install.yaml is exactly what scripts/render_install.py renders from the chart today."""
    assert HELM, "helm is needed to render the chart: scripts/setup.sh builds it (MODELSHIP_HELM names it)"
    assert INSTALL.read_text() == render_install.render(HELM), (
        f"manifests/install.yaml drifted from charts/modelship: run `{render_install.COMMAND}` and commit it"
    )


def test_install_yaml_is_a_whole_install() -> None:
    """CRDs, a restricted namespace, the operator pointed at the tracking server, RBAC; all adoptable by helm."""
    objects = _install()
    kinds = sorted(kind for kind, _ in objects)
    assert kinds.count("CustomResourceDefinition") == len(KINDS)
    assert {("Deployment", "modelship-operator"), ("Deployment", "modelship-tracking")} <= set(objects)
    namespace = objects[("Namespace", "modelship-system")]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    _, container = _pod(objects, "modelship-operator")
    assert _operator_args(container["args"]).tracking_url == "http://modelship-tracking.modelship-system:5000"
    for (kind, name), obj in objects.items():
        if kind == "Namespace":
            continue
        meta = obj["metadata"]
        assert meta.get("namespace") in (None, "modelship-system"), (kind, name)
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm", (kind, name)
        assert meta["annotations"]["meta.helm.sh/release-name"] == "modelship", (kind, name)
        assert meta["annotations"]["meta.helm.sh/release-namespace"] == "modelship-system", (kind, name)
    assert not [o for o in objects.values() if "helm.sh/hook" in (o["metadata"].get("annotations") or {})]


def test_crds_directory_holds_only_crds() -> None:
    """`kubectl apply --server-side -f crds/` applies every file of crds/: only CRDs may be there."""
    for path in sorted((ROOT / "crds").iterdir()):
        assert [d["kind"] for d in _docs(path)] == ["CustomResourceDefinition"], path.name


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
        {"tracking": {"enabled": "yes"}},
        {"tracking": {"replicas": 2}},  # one replica by design: SQLite has one writer
        {"tracking": {"backendStoreUri": "mysql://db/tracking"}},
        {"tracking": {"backendStoreUriSecret": {"name": "tracking-db", "key": ""}}},
        {"tracking": {"authTokenSecret": {"name": "tracking-token"}}},
        {"tracking": {"authTokenSecret": {"name": "tracking-token", "key": "token", "optional": True}}},
        {"tracking": {"artifactsDestination": "relative/artifacts"}},
        {"tracking": {"persistence": {"enabled": "false"}}},
        {"tracking": {"persistence": {"size": "ten gigs"}}},
        {"tracking": {"persistence": {"existingClaim": "Not_A_Claim"}}},
        {"tracking": {"registry": {"enabled": 1}}},
        {"tracking": {"service": {"type": "Ingress"}}},
        {"tracking": {"service": {"port": 70000}}},
        {"tracking": {"resources": {"request": {"cpu": "1"}}}},
    ],
)
def test_the_schema_refuses_mistakes(bad: dict[str, Any]) -> None:
    values = _values()
    for key, value in bad.items():
        values[key] = {**values[key], **value} if isinstance(values.get(key), dict) else value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(_values_schema()).validate(values)


@pytest.mark.parametrize(
    "good",
    [
        {"tracking": {"enabled": False}},
        {"tracking": {"backendStoreUri": "postgresql://mlflow@db.ml:5432/tracking"}},
        {"tracking": {"backendStoreUriSecret": {"name": "tracking-db", "key": "uri"}}},
        {"tracking": {"authTokenSecret": {"name": "tracking-token", "key": "token"}}},
        {"tracking": {"artifactsDestination": "s3://bucket/mlflow"}},
        {"tracking": {"persistence": {"enabled": True, "size": "50Gi", "storageClass": "-", "existingClaim": "data"}}},
        {"tracking": {"extraEnv": [{"name": "MLFLOW_S3_ENDPOINT_URL", "value": "http://minio.minio:9000"}]}},
    ],
)
def test_the_schema_accepts_the_documented_shapes(good: dict[str, Any]) -> None:
    values = _values()
    for key, value in good.items():
        values[key] = {**values[key], **value}
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
        path
        for path, node in _object_nodes(_values_schema())
        if node.get("additionalProperties") is not False
        and path not in ("values.operator.extraEnv[]", "values.tracking.extraEnv[]")  # EnvVar has many shapes
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
    for name in (
        "_helpers.tpl",
        "NOTES.txt",
        "crds.yaml",
        "deployment.yaml",
        "clusterrole.yaml",
        "serviceaccount.yaml",
        "tracking-deployment.yaml",
        "tracking-service.yaml",
        "tracking-pvc.yaml",
        "tracking-serviceaccount.yaml",
        "tracking-rbac.yaml",
    ):
        assert (CHART / "templates" / name).exists(), name
    assert "helm.sh/resource-policy" in (CHART / "templates" / "crds.yaml").read_text()


HELM = render_install.find_helm()
NAMESPACE = "modelship-system"
OPERATOR = "ms-modelship-operator"  # release "ms": <release>-modelship-operator
TRACKING = "ms-modelship-tracking"
TRACKING_URL = f"http://{TRACKING}.{NAMESPACE}:5000"


@cache
def _render(*sets: str) -> dict[tuple[str, str], dict[str, Any]]:
    """``helm template`` of release "ms" with these ``--set``s: (kind, name) -> object (the name
    is namespace/name for an object outside the release's namespace)."""
    assert HELM, "helm is needed to render the chart: scripts/setup.sh builds it (MODELSHIP_HELM names it)"
    command = [str(HELM), "template", "ms", str(CHART), "--namespace", NAMESPACE, "--kube-version", "1.36.0"]
    for item in sets:
        command += [item] if item.startswith("--") else ["--set", item]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in yaml.safe_load_all(out):
        if doc:
            namespace, name = doc["metadata"].get("namespace"), doc["metadata"]["name"]
            key = (doc["kind"], name if namespace in (None, NAMESPACE) else f"{namespace}/{name}")
            assert key not in objects, f"rendered twice: {key}"
            objects[key] = doc
    return objects


def _pod(objects: dict[tuple[str, str], dict[str, Any]], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod spec and the only container of Deployment ``name``."""
    pod = objects[("Deployment", name)]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def _operator_tracking_url(objects: dict[tuple[str, str], dict[str, Any]]) -> str | None:
    _, container = _pod(objects, OPERATOR)
    url: str | None = _operator_args(container["args"]).tracking_url
    return url


@pytest.mark.parametrize(("sets", "forbidden"), [((), False), (("operator.forbidPickle=true",), True)])
def test_the_chart_can_forbid_pickle_models_cluster_wide(sets: tuple[str, ...], forbidden: bool) -> None:
    _, container = _pod(_render(*sets), OPERATOR)
    assert main.config_from_args(_operator_args(container["args"])).forbid_pickle is forbidden


def _tracking_args(container: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    """The server's arguments as `modelship tracking-server` parses them in the pod: flag
    defaults come from ServerSettings(), i.e. from the pod's environment, so that a Secret's
    value (faked here as "<secret>/<key>") is what the server uses unless a flag overrides it."""
    assert container["args"][0] == "tracking-server", "the tracking container runs `modelship tracking-server`"
    for name in ServerSettings.model_fields:
        monkeypatch.delenv(f"MODELSHIP_TRACKING_{name.upper()}", raising=False)
    for env in container.get("env") or []:
        ref = (env.get("valueFrom") or {}).get("secretKeyRef")
        monkeypatch.setenv(env["name"], f"{ref['name']}/{ref['key']}" if ref else env["value"])
    parser = argparse.ArgumentParser(exit_on_error=False)
    cli_server.add_arguments(parser)
    return parser.parse_args(container["args"][1:])


@pytest.mark.parametrize(
    ("sets", "peering"),
    [((), False), (("peering.enabled=true", "operator.replicas=2", "operator.watchNamespaces={a,b}"), True)],
)
def test_rendered_chart(sets: tuple[str, ...], peering: bool) -> None:
    objects = _render(*sets)
    watching = SOME if any(s.startswith("operator.watchNamespaces") for s in sets) else ALL
    assert _operator_grants(objects, OPERATOR, "a") == required_grants(peering=peering, watching=watching)
    for kind in KINDS:
        crd = objects[("CustomResourceDefinition", kind.crd_name)]
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        generated = yaml.safe_load((ROOT / "crds" / f"{kind.crd_name}.yaml").read_text())
        assert crd["spec"] == generated["spec"]
    _, container = _pod(objects, OPERATOR)
    config = main.config_from_args(_operator_args(container["args"]))
    assert (config.peering_name is not None) is peering
    assert container["image"] == IMAGE


# --- the chart's tracking server -------------------------------------------------------

TRACKING_KINDS = {
    "Deployment",
    "Service",
    "PersistentVolumeClaim",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
}


def _tracking_kinds(objects: dict[tuple[str, str], dict[str, Any]]) -> set[str]:
    return {kind for kind, name in objects if name == TRACKING}


def test_rendered_tracking_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """By default: a one-replica server on SQLite in a PVC, its Service, and the registry reader's RBAC."""
    objects = _render()
    assert _tracking_kinds(objects) == TRACKING_KINDS
    deployment = objects[("Deployment", TRACKING)]
    assert deployment["metadata"]["namespace"] == NAMESPACE
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}, "SQLite has one writer: never two pods at once"
    pod, container = _pod(objects, TRACKING)
    operator_pod, operator_container = _pod(objects, OPERATOR)
    assert pod["securityContext"] == operator_pod["securityContext"]
    assert container["securityContext"] == operator_container["securityContext"]
    assert pod["enableServiceLinks"] is False, "service links would set MODELSHIP_TRACKING_PORT=tcp://..."
    assert container["image"] == IMAGE
    assert "env" not in container, "no secrets and no extraEnv: nothing in the environment"
    args = _tracking_args(container, monkeypatch)
    assert (args.host, args.port) == ("0.0.0.0", 5000)
    assert args.backend_store_uri == "sqlite:////data/tracking.db"
    assert args.artifacts_destination == "/data/artifacts"
    assert args.registry_in_cluster and args.registry_namespace is None and args.registry_kubeconfig is None
    assert args.auth_token is None and args.workers == 1
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": args.port}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    assert {"requests", "limits"} <= set(container["resources"])
    assert {m["mountPath"]: m["name"] for m in container["volumeMounts"]} == {"/data": "data", "/tmp": "tmp"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": TRACKING}
    pvc = objects[("PersistentVolumeClaim", TRACKING)]
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert "storageClassName" not in pvc["spec"], "empty storageClass: the cluster's default"

    labels = deployment["spec"]["template"]["metadata"]["labels"]
    operator_labels = objects[("Deployment", OPERATOR)]["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = objects[("Service", TRACKING)]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= labels.items()
    assert not service["spec"]["selector"].items() <= operator_labels.items()
    assert not objects[("Deployment", OPERATOR)]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (5000, "http")

    assert pod["serviceAccountName"] == TRACKING
    assert objects[("ServiceAccount", TRACKING)]["metadata"]["namespace"] == NAMESPACE
    assert granted_by(objects[("ClusterRole", TRACKING)]["rules"]) == grants(
        REGISTRY_READER_RULES + REGISTRY_WRITER_RULES
    )
    assert args.registry_writes and args.registry_write_namespace is None
    binding = objects[("ClusterRoleBinding", TRACKING)]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": TRACKING}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": TRACKING, "namespace": NAMESPACE}]

    assert _operator_tracking_url(objects) == TRACKING_URL


def test_rendered_chart_without_tracking() -> None:
    objects = _render("tracking.enabled=false")
    assert not [key for key in objects if "tracking" in key[1]]
    assert _operator_tracking_url(objects) is None


@pytest.mark.parametrize(
    ("sets", "url"),
    [
        ((), TRACKING_URL),
        (("tracking.service.port=8080",), f"http://{TRACKING}.{NAMESPACE}:8080"),
        (("operator.trackingUrl=http://mlflow.ml:5000",), "http://mlflow.ml:5000"),
        (("tracking.enabled=false",), None),
        (("tracking.enabled=false", "operator.trackingUrl=http://mlflow.ml:5000"), "http://mlflow.ml:5000"),
    ],
)
def test_the_operators_tracking_url(sets: tuple[str, ...], url: str | None) -> None:
    """operator.trackingUrl when set, else the chart's tracking Service when tracking.enabled."""
    objects = _render(*sets)
    assert _operator_tracking_url(objects) == url
    if ("Service", TRACKING) in objects:
        (port,) = objects[("Service", TRACKING)]["spec"]["ports"]
        assert port["port"] == (8080 if "tracking.service.port=8080" in sets else 5000)
        _, container = _pod(objects, TRACKING)
        assert container["ports"] == [{"name": "http", "containerPort": 5000, "protocol": "TCP"}]


@pytest.mark.parametrize(
    ("sets", "data", "pvc"),
    [
        ((), {"persistentVolumeClaim": {"claimName": TRACKING}}, True),
        (("tracking.persistence.enabled=false",), {"emptyDir": {}}, False),
        (
            ("tracking.persistence.existingClaim=tracking-data",),
            {"persistentVolumeClaim": {"claimName": "tracking-data"}},
            False,
        ),
        (
            ("tracking.persistence.enabled=false", "tracking.persistence.existingClaim=tracking-data"),
            {"emptyDir": {}},
            False,
        ),
    ],
)
def test_rendered_tracking_data_volume(sets: tuple[str, ...], data: dict[str, Any], pvc: bool) -> None:
    objects = _render(*sets)
    pod, _ = _pod(objects, TRACKING)
    (volume,) = [v for v in pod["volumes"] if v["name"] == "data"]
    assert {k: v for k, v in volume.items() if k != "name"} == data
    assert (("PersistentVolumeClaim", TRACKING) in objects) is pvc


@pytest.mark.parametrize(("storage_class", "expected"), [("fast-ssd", "fast-ssd"), ("-", "")])
def test_rendered_tracking_storage_class(storage_class: str, expected: str) -> None:
    spec = _render(f"tracking.persistence.storageClass={storage_class}", "tracking.persistence.size=50Gi")[
        ("PersistentVolumeClaim", TRACKING)
    ]["spec"]
    assert spec["storageClassName"] == expected
    assert spec["resources"]["requests"]["storage"] == "50Gi"


def test_rendered_tracking_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secret-sourced URL and token reach the server through the environment, and no flag overrides them."""
    objects = _render(
        "tracking.backendStoreUriSecret.name=tracking-db",
        "tracking.backendStoreUriSecret.key=uri",
        "tracking.authTokenSecret.name=tracking-token",
        "tracking.authTokenSecret.key=token",
        "tracking.artifactsDestination=s3://bucket/mlflow",
        "tracking.extraEnv[0].name=MLFLOW_S3_ENDPOINT_URL",
        "tracking.extraEnv[0].value=http://minio.minio:9000",
    )
    _, container = _pod(objects, TRACKING)
    env = {e["name"]: e for e in container["env"]}
    assert env["MODELSHIP_TRACKING_BACKEND_STORE_URI"]["valueFrom"] == {
        "secretKeyRef": {"name": "tracking-db", "key": "uri"}
    }
    assert env["MODELSHIP_TRACKING_AUTH_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "tracking-token", "key": "token"}
    }
    assert env["MLFLOW_S3_ENDPOINT_URL"] == {"name": "MLFLOW_S3_ENDPOINT_URL", "value": "http://minio.minio:9000"}
    assert not [a for a in container["args"] if a.startswith(("--backend-store-uri", "--auth-token"))]
    args = _tracking_args(container, monkeypatch)
    assert args.backend_store_uri == "tracking-db/uri", "the Secret's URL, not the flag's default"
    assert args.auth_token == "tracking-token/token"
    assert args.artifacts_destination == "s3://bucket/mlflow"


def test_rendered_tracking_backend_store_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = _render("tracking.backendStoreUri=postgresql://mlflow@db.ml:5432/tracking")
    _, container = _pod(objects, TRACKING)
    assert "env" not in container
    assert _tracking_args(container, monkeypatch).backend_store_uri == "postgresql://mlflow@db.ml:5432/tracking"


@pytest.mark.parametrize(
    "sets",
    [
        (),
        ("tracking.backendStoreUri=postgresql://mlflow@db.ml:5432/tracking",),
        (
            "tracking.backendStoreUriSecret.name=tracking-db",
            "tracking.backendStoreUriSecret.key=uri",
            "tracking.authTokenSecret.name=tracking-token",
            "tracking.authTokenSecret.key=token",
            "tracking.extraEnv[0].name=PGSSLMODE",
            "tracking.extraEnv[0].value=require",
        ),
    ],
)
def test_the_tracking_database_is_migrated_before_the_server_starts(
    sets: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An init container runs `modelship db-upgrade` on the server's database, with the
    server's image, volumes and extra environment, outside the startup probe that a long
    migration would outlast; it gets no auth token, which it does not use."""
    pod, server = _pod(_render(*sets), TRACKING)
    (init,) = pod["initContainers"]
    assert init["name"] == "db-upgrade" and init["args"][0] == "db-upgrade"
    assert (init["image"], init["imagePullPolicy"]) == (server["image"], server["imagePullPolicy"])
    assert init["volumeMounts"] == server["volumeMounts"]
    assert init["securityContext"] == server["securityContext"] and init["resources"] == server["resources"]
    server_env = {e["name"]: e for e in server.get("env") or []}
    init_env = {e["name"]: e for e in init.get("env") or []}
    assert init_env == {k: v for k, v in server_env.items() if k != "MODELSHIP_TRACKING_AUTH_TOKEN"}
    url = _tracking_args(server, monkeypatch).backend_store_uri
    parser = argparse.ArgumentParser(exit_on_error=False)
    cli_db.add_arguments(parser)
    migrated = parser.parse_args(init["args"][1:]).url or ServerSettings().backend_store_uri  # as cli_db.run reads it
    assert migrated == url


@pytest.mark.parametrize(
    ("sets", "kinds"),
    [
        (("tracking.registry.enabled=false",), {"Deployment", "Service", "PersistentVolumeClaim"}),
        (("rbac.create=false",), TRACKING_KINDS - {"ClusterRole", "ClusterRoleBinding"}),
    ],
)
def test_rendered_tracking_registry_reader(
    sets: tuple[str, ...], kinds: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = _render(*sets)
    assert _tracking_kinds(objects) == kinds
    pod, container = _pod(objects, TRACKING)
    registry = "ServiceAccount" in kinds
    assert _tracking_args(container, monkeypatch).registry_in_cluster is registry
    if registry:
        assert pod["serviceAccountName"] == TRACKING
    else:
        assert "serviceAccountName" not in pod and pod["automountServiceAccountToken"] is False


def test_rendered_tracking_registry_without_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """tracking.registry.writes=false: --no-registry-writes, and the ClusterRole grants only the reader's rules."""
    objects = _render("tracking.registry.writes=false")
    _, container = _pod(objects, TRACKING)
    assert _tracking_args(container, monkeypatch).registry_writes is False
    assert granted_by(objects[("ClusterRole", TRACKING)]["rules"]) == grants(REGISTRY_READER_RULES)
    ml = _render("tracking.registry.writeNamespace=ml")
    assert _tracking_args(_pod(ml, TRACKING)[1], monkeypatch).registry_write_namespace == "ml"


def test_rendered_tracking_scheduling() -> None:
    objects = _render(
        "tracking.nodeSelector.disk=ssd",
        "tracking.tolerations[0].key=dedicated",
        "tracking.tolerations[0].operator=Exists",
        "tracking.podAnnotations.team=ml",
        "tracking.service.type=LoadBalancer",
        "tracking.resources.limits.memory=2Gi",
    )
    deployment = objects[("Deployment", TRACKING)]
    pod, container = _pod(objects, TRACKING)
    assert pod["nodeSelector"] == {"disk": "ssd"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {"team": "ml"}
    assert container["resources"]["limits"]["memory"] == "2Gi"
    assert objects[("Service", TRACKING)]["spec"]["type"] == "LoadBalancer"
    operator_pod, _ = _pod(objects, OPERATOR)
    assert "nodeSelector" not in operator_pod and "tolerations" not in operator_pod


# --- examples --------------------------------------------------------------------------


def _example_objects() -> list[dict[str, Any]]:
    return [doc for path in sorted(EXAMPLES.glob("*.yaml")) if path.name != "kustomization.yaml" for doc in _docs(path)]


def test_quickstart_makes_one_of_each_kind() -> None:
    """Every kind is applied but the ModelVersion, which the Experiment registers: the model the
    ModelDeployment serves is the one trained from the MLproject in the image."""
    objects = {o["kind"]: o for o in _example_objects()}
    assert sorted(objects) == sorted(k.kind for k in KINDS if k.kind != "ModelVersion")
    experiment, deployment = objects["Experiment"]["spec"], objects["ModelDeployment"]["spec"]
    assert experiment["project"]["path"].startswith("/opt/modelship/examples/")
    example = ROOT / "manifests" / "examples" / experiment["project"]["path"].removeprefix("/opt/modelship/examples/")
    assert (example / "MLproject").is_file()
    assert experiment["register"]["modelName"] == deployment["model"] == objects["RegisteredModel"]["spec"]["model"]
    assert [v["stage"] for v in deployment["variants"]] == [experiment["register"]["stage"]]


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


# --- Argo CD ---------------------------------------------------------------------------

ARGOCD = ROOT / "manifests" / "argocd"


def test_argocd_application_syncs_the_chart() -> None:
    """The Application points at this chart, applies server-side, and creates a restricted namespace."""
    (app,) = _docs(ARGOCD / "application.yaml")
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    source, destination, policy = app["spec"]["source"], app["spec"]["destination"], app["spec"]["syncPolicy"]
    assert (ROOT / source["path"] / "Chart.yaml").exists(), source["path"]
    assert source["helm"]["releaseName"] == "modelship"
    assert destination["namespace"] == NAMESPACE
    assert {"ServerSideApply=true", "CreateNamespace=true"} <= set(policy["syncOptions"])
    assert policy["managedNamespaceMetadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def _wave(obj: dict[str, Any]) -> int:
    return int((obj["metadata"].get("annotations") or {}).get("argocd.argoproj.io/sync-wave", "0"))


@pytest.mark.parametrize("sets", [(), ("peering.enabled=true",)])
def test_argocd_syncs_the_crds_first_and_never_prunes_them(sets: tuple[str, ...]) -> None:
    objects = _render(*sets)
    crds = [o for (kind, _), o in objects.items() if kind == "CustomResourceDefinition"]
    others = [o for (kind, _), o in objects.items() if kind != "CustomResourceDefinition"]
    assert crds and others
    assert max(_wave(c) for c in crds) < min(_wave(o) for o in others), "CRDs sync in an earlier wave"
    for crd in crds:
        options = crd["metadata"]["annotations"]["argocd.argoproj.io/sync-options"].split(",")
        assert "Prune=false" in options, crd["metadata"]["name"]


# --- optional objects ------------------------------------------------------------------


def test_no_optional_object_by_default() -> None:
    kinds = {kind for kind, _ in _render()}
    assert not kinds & {"PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor"}


def test_several_operator_replicas_get_a_disruption_budget() -> None:
    objects = _render("peering.enabled=true", "operator.replicas=2")
    pdb = objects[("PodDisruptionBudget", OPERATOR)]
    assert pdb["spec"]["minAvailable"] == 1
    labels = objects[("Deployment", OPERATOR)]["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize(("served", "made"), [(False, False), (True, True)])
def test_the_service_monitor_needs_its_crd(served: bool, made: bool) -> None:
    sets = ["metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom"]
    if served:
        sets.append("--api-versions=monitoring.coreos.com/v1/ServiceMonitor")
    objects = _render(*sets)
    assert (("ServiceMonitor", OPERATOR) in objects) is made
    if made:
        monitor = objects[("ServiceMonitor", OPERATOR)]
        assert monitor["metadata"]["labels"]["release"] == "prom"
        service = objects[("Service", f"{OPERATOR}-metrics")]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_network_policies_open_only_the_served_ports() -> None:
    objects = _render("networkPolicy.enabled=true")
    for name in (OPERATOR, TRACKING):
        policy = objects[("NetworkPolicy", name)]
        pod = objects[("Deployment", name)]["spec"]["template"]
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        (rule,) = policy["spec"]["ingress"]
        opened = {p["port"] for p in rule["ports"]}
        (container,) = pod["spec"]["containers"]
        assert opened == {p["name"] for p in container["ports"]}, name
        assert "from" not in rule, "any pod may reach them (sidecars and clients live in every namespace)"


def test_the_image_by_digest() -> None:
    digest = "sha256:" + "ab" * 32
    objects = _render(f"image.digest={digest}", "image.tag=ignored")
    images = {
        c["image"]
        for obj in objects.values()
        if obj["kind"] in ("Deployment", "Pod")
        for spec in [obj["spec"]["template"]["spec"] if obj["kind"] == "Deployment" else obj["spec"]]
        for c in spec["containers"]
    }
    assert images == {f"ghcr.io/modelship/modelship@{digest}"}


def test_the_tracking_server_reads_configmaps_by_name_only() -> None:
    """The registry page's webhook delivery record: ``get`` on one ConfigMap name, never on
    every ConfigMap (the registry counters and outboxes hold the webhook bodies)."""
    from modelship.resources.webhooks import DELIVERIES_CONFIGMAP

    role = _render()[("ClusterRole", TRACKING)]
    rules = [r for r in role["rules"] if "configmaps" in r["resources"]]
    assert rules == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [DELIVERIES_CONFIGMAP], "verbs": ["get"]}
    ]
