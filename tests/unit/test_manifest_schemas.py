"""Checks that tools outside the project make: ``helm lint --strict`` of the chart, and
``kubeconform -strict`` of every rendered value set and of manifests/ against the schemas of
the pinned Kubernetes release, generated from that release's own OpenAPI document
(tests/tools/kubeconform.py). kube-linter is not among them: the Go module proxy does not
serve golang.stackrox.io/kube-linter; test_pod_security.py runs the Pod Security library
(k8s.io/pod-security-admission, tests/tools/podsecurity.py) at ``restricted`` instead, and the
e2e suite has the API server enforce it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from tests.tools import kubeconform
from tests.unit.test_install import CHART, HELM, NAMESPACE, ROOT

VALUE_SETS = [
    (),
    ("peering.enabled=true", "operator.replicas=2", "operator.watchNamespaces={a,b}", "networkPolicy.enabled=true"),
    ("operator.webhookSecret=modelship-system/hooks", "operator.webhookUrls={https://hooks.example.com/x}"),
    ("tracking.enabled=false",),
    ("tracking.registry.enabled=false", "tracking.persistence.enabled=false", "rbac.create=false"),
    ("tracking.backendStoreUriSecret.name=db", "tracking.backendStoreUriSecret.key=uri", "crds.enabled=false"),
]
IDS = [",".join(s) or "defaults" for s in VALUE_SETS]


def _sets(sets: tuple[str, ...]) -> list[str]:
    return [arg for item in sets for arg in ("--set", item)]


@pytest.mark.parametrize("sets", VALUE_SETS, ids=IDS)
def test_helm_lint_strict(sets: tuple[str, ...]) -> None:
    assert HELM, "helm is needed: scripts/setup.sh builds it"
    done = subprocess.run(
        [HELM, "lint", "--strict", str(CHART), "--namespace", NAMESPACE, "--kube-version", "1.36.0", *_sets(sets)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def _summary(done: subprocess.CompletedProcess[str]) -> tuple[int, int]:
    match = re.search(r"(\d+) resources found.*Valid: (\d+), Invalid: 0, Errors: 0, Skipped: 0", done.stdout)
    assert done.returncode == 0 and match, done.stdout + done.stderr
    return int(match.group(1)), int(match.group(2))


@pytest.mark.parametrize("sets", VALUE_SETS, ids=IDS)
def test_rendered_chart_is_valid_for_the_pinned_release(sets: tuple[str, ...]) -> None:
    assert HELM, "helm is needed: scripts/setup.sh builds it"
    rendered = subprocess.run(
        [HELM, "template", "ms", str(CHART), "--namespace", NAMESPACE, "--kube-version", "1.36.0", *_sets(sets)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found, valid = _summary(kubeconform.run("-", stdin=rendered))
    assert found == valid > 5


def _manifests() -> list[Path]:
    """Every Kubernetes object file under manifests/ (not kustomizations, the argocd-cm patch or
    Argo CD's own Application, whose CRD is Argo CD's)."""
    skip = {"kustomization.yaml", "argocd-cm-patch.yaml", "application.yaml", "health_test.yaml", "python_env.yaml"}
    return sorted(p for p in (ROOT / "manifests").rglob("*.yaml") if p.name not in skip)


def test_manifests_are_valid_for_the_pinned_release() -> None:
    paths = _manifests()
    assert ROOT / "manifests" / "install.yaml" in paths and len(paths) > 20
    found, valid = _summary(kubeconform.run(*paths))
    assert found == valid >= len(paths)


def test_kubeconform_refuses_what_the_api_server_would() -> None:
    """The schemas are strict: an unknown field and a wrong type are errors, for core kinds and ours."""
    bad = """apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replicas: "one"
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: c, image: i, ports: [{containerPort: 80, hostport: 8}]}]
---
apiVersion: modelship.io/v1alpha1
kind: ModelVersion
metadata: {name: v}
spec: {model: m, source: s, stagee: Production}
"""
    done = kubeconform.run("-", stdin=bad)
    assert done.returncode == 1
    assert (
        "'hostport' not allowed" in done.stdout and "replicas" in done.stdout and "'stagee' not allowed" in done.stdout
    )


def test_helm_is_built_for_the_pinned_release(tmp_path: Path) -> None:
    """Without a cluster to ask (``helm template``, ``helm lint``), helm assumes the Kubernetes
    release of its ldflags: scripts/setup.sh sets the bed's, so the chart's ``kubeVersion``
    constraint holds with no ``--kube-version`` (helm's own default, v1.20, fails it)."""
    assert HELM, "helm is needed: scripts/setup.sh builds it"
    major, minor = kubeconform.kubernetes_version().removeprefix("v").split(".")[:2]
    probe = tmp_path / "probe"
    (probe / "templates").mkdir(parents=True)
    (probe / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (probe / "templates" / "kube.yaml").write_text("# {{ .Capabilities.KubeVersion.Version }}\n")
    rendered = subprocess.run([HELM, "template", str(probe)], capture_output=True, text=True, check=True).stdout
    assert f"# v{major}.{minor}.0" in rendered
    version = subprocess.run(
        [HELM, "version", "--template", "{{ .Version }}"], capture_output=True, text=True, check=True
    )
    assert re.fullmatch(r"v3\.\d+\.\d+", version.stdout), version.stdout
    # The chart renders as the README's commands run it; an older cluster is refused.
    subprocess.run([HELM, "template", "ms", str(CHART), "-n", NAMESPACE], capture_output=True, text=True, check=True)
    old = subprocess.run(
        [HELM, "template", "ms", str(CHART), "-n", NAMESPACE, "--kube-version", "1.29.0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert old.returncode != 0 and "incompatible with Kubernetes v1.29.0" in old.stderr, old.stderr
