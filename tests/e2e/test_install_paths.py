"""The install paths of the README, run as a cluster admin runs them, on a clean cluster.

This module starts a bed of its own (a fresh control plane: no CRDs, no operator), so
that "clean" means clean, and runs the commands exactly as docs say, with the bed's
kubectl and the helm that scripts/setup.sh builds:

1. ``helm install modelship charts/modelship -n modelship-system --create-namespace``,
   ``helm test`` (the tracking server's /health, the operator's /healthz, a sample
   ModelVersion numbered by the operator), ``helm upgrade`` (also to a watchNamespaces
   list naming a namespace that does not exist, with peering), and ``helm uninstall``,
   which keeps the CRDs and the tracking data's claim;
2. on the cluster cleaned again, ``kubectl apply --server-side -f manifests/install.yaml``
   brings up the operator and the tracking server in a namespace that enforces Pod
   Security ``restricted``; then ``helm install`` adopts that install (CRDs included) and
   ``helm test`` passes; the README's ``kubectl apply --server-side -f crds/`` applies.

The operator and tracking server run as pods from the chart, with the chart's
ServiceAccounts and their tokens: nothing here uses the admin kubeconfig but the
commands a cluster admin types.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cluster.bed import Bed
from tests.cluster.kubeapi import KubeApi, path_for
from tests.conftest import wait
from tests.e2e.test_modeldeployment import predict
from tests.unit.test_install import HELM, INSTALL, ROOT

from modelship.api import KINDS
from modelship.controllers.rbac import required_grants

RELEASE, NAMESPACE = "modelship", "modelship-system"
OPERATOR, TRACKING = "modelship-operator", "modelship-tracking"
CRDS = tuple(kind.crd_name for kind in KINDS)
TIMEOUT = "10m"  # helm --wait and helm test on a loaded machine
OPERATOR_USER = f"system:serviceaccount:{NAMESPACE}:{OPERATOR}"  # the chart's account, as the API server names it


class Admin:
    """The commands of a cluster admin on the bed: its kubectl, our helm, its kubeconfig."""

    def __init__(self, bed: Bed):
        assert HELM, "helm is needed: scripts/setup.sh builds it"
        assert bed.bin_dir is not None
        self.kubectl_bin = str(bed.bin_dir / "kubectl")
        self.env = {**os.environ, "KUBECONFIG": str(bed.kubeconfig)}
        self.env.pop("HELM_NAMESPACE", None)
        # [start, end] of each window in which the operator's pod may outlive its roles: from an
        # uninstall or delete to the next install (helm deletes the roles while the pod drains),
        # and each helm upgrade (the old pod, on the old scope, drains while the roles change;
        # --wait with the Recreate strategy returns once it is gone). A refused call in such a
        # window is not a missing grant; every other one is.
        self.teardowns: list[list[float]] = []

    def run(self, *command: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        verb = command[1] if len(command) > 1 else ""
        started = time.time()
        if verb in ("uninstall", "delete"):
            if not self.teardowns or self.teardowns[-1][1] != float("inf"):
                self.teardowns.append([started, float("inf")])
        elif verb in ("install", "apply", "upgrade") and self.teardowns and self.teardowns[-1][1] == float("inf"):
            self.teardowns[-1][1] = started
        try:
            return self._run(command, ok)
        finally:
            if verb == "upgrade":
                self.teardowns.append([started, time.time()])

    def _run(self, command: tuple[str, ...], ok: bool) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(command, check=False, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=900)
        if ok:
            assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done

    def kubectl(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(self.kubectl_bin, *args, ok=ok)

    def helm(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        assert HELM
        return self.run(HELM, *args, ok=ok)


@pytest.fixture(scope="module")
def clean_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    """A control plane of this module's own, with nothing of Modelship in it."""
    bed = Bed(Path(tmp_path_factory.mktemp("install-bed")), audit_users=(OPERATOR_USER,)).start()
    try:
        yield bed
    finally:
        bed.stop()


@pytest.fixture(scope="module")
def admin(clean_bed: Bed) -> Admin:
    return Admin(clean_bed)


@pytest.fixture(scope="module")
def api(clean_bed: Bed) -> KubeApi:
    assert clean_bed.api is not None
    return clean_bed.api


def _deployment_ready(api: KubeApi, name: str) -> bool:
    status = api.get(path_for("apps/v1", "deployments", NAMESPACE, name)).get("status") or {}
    return bool(status.get("readyReplicas")) and status.get("updatedReplicas") == status.get("replicas")


def _pods(api: KubeApi, component: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
    items: list[dict[str, Any]] = api.get(path_for("v1", "pods", NAMESPACE), labelSelector=selector)["items"]
    return items


def _diagnose(api: KubeApi, bed: Bed) -> str:
    """What the release's pods say, for a failure message."""
    lines = []
    for pod in api.get(path_for("v1", "pods", NAMESPACE))["items"]:
        name = pod["metadata"]["name"]
        lines.append(f"{name}: {pod.get('status', {}).get('phase')} {pod.get('status', {}).get('containerStatuses')}")
        for container in pod["spec"]["containers"]:
            try:
                lines.append(bed.pod_log(NAMESPACE, name, container["name"])[-3000:])
            except OSError as exc:
                lines.append(f"(no log: {exc})")
    return "\n".join(lines)


def _numbered(api: KubeApi, namespace: str) -> int:
    """A ModelVersion created now gets its number from the installed operator; returns it."""
    name = f"sample-{uuid.uuid4().hex[:6]}"
    collection = path_for("modelship.io/v1alpha1", "modelversions", namespace)
    api.create(
        collection,
        {
            "apiVersion": "modelship.io/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": name},
            "spec": {"model": name, "source": "file:///dev/null/model"},
        },
    )
    status = wait(lambda: api.get(f"{collection}/{name}").get("status", {}).get("version"), 180, f"{name} numbered")
    api.delete(f"{collection}/{name}")
    return int(status)


def _condition(obj: dict[str, Any], ctype: str) -> str | None:
    return next((c["status"] for c in (obj.get("status") or {}).get("conditions") or () if c["type"] == ctype), None)


def _quickstart_registered(api: KubeApi, namespace: str) -> str | None:
    """The ModelVersion the quickstart's Experiment registered, once it did; a failed run fails here."""
    status = api.get(path_for("modelship.io/v1alpha1", "experiments", namespace, "quickstart")).get("status") or {}
    assert status.get("phase") != "Failed", status
    return status.get("modelVersion") if _condition({"status": status}, "Registered") == "True" else None


def _staged(api: KubeApi, namespace: str, name: str) -> bool:
    status = api.get(path_for("modelship.io/v1alpha1", "modelversions", namespace, name)).get("status") or {}
    return isinstance(status.get("version"), int) and status.get("stage") == "Staging"


def _restricted_namespace(api: KubeApi) -> str:
    """A user's namespace that enforces Pod Security restricted."""
    name = f"ml-{uuid.uuid4().hex[:6]}"
    api.create(
        "/api/v1/namespaces",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
        },
    )
    return name


def _crd_exists(api: KubeApi, name: str) -> bool:
    return api.exists(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")


def _clean(admin: Admin, api: KubeApi) -> None:
    """Back to a clean cluster: no release, no CRDs, no namespace. Objects of Modelship's kinds
    left by a test that failed keep their finalizers with no operator to take them off, and a
    CRD's deletion waits for its objects: those finalizers go first, as an admin removing an
    uninstalled operator's CRDs would do."""
    admin.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--ignore-not-found")
    for kind in KINDS:
        if not _crd_exists(api, kind.crd_name):
            continue
        for obj in api.get(f"/apis/{kind.api_version}/{kind.plural}")["items"]:
            if obj["metadata"].get("finalizers"):
                meta = obj["metadata"]
                admin.kubectl(
                    "patch", kind.plural, meta["name"], "-n", meta["namespace"], "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}',
                )  # fmt: skip
    admin.kubectl("delete", "crd", *CRDS, "--ignore-not-found", "--wait=true")
    admin.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=5m")
    admin.kubectl("delete", "clusterrole,clusterrolebinding", OPERATOR, TRACKING, "--ignore-not-found")
    assert not any(_crd_exists(api, c) for c in CRDS)


def _helm_test(admin: Admin) -> str:
    done = admin.helm("test", RELEASE, "-n", NAMESPACE, "--logs", "--timeout", TIMEOUT)
    out = done.stdout
    assert "ok: http://modelship-tracking.modelship-system:5000/health answered 200" in out, out
    assert "/healthz answered 200" in out, out
    assert "reconciled: version" in out, out
    return out


def test_helm_install_test_upgrade_uninstall_on_a_clean_cluster(clean_bed: Bed, admin: Admin, api: KubeApi) -> None:
    assert not any(_crd_exists(api, c) for c in CRDS), "the module's bed starts without Modelship"
    install = admin.helm(
        "install", RELEASE, "charts/modelship", "-n", NAMESPACE, "--create-namespace", "--wait", "--timeout", TIMEOUT
    )
    assert "STATUS: deployed" in install.stdout, install.stdout
    try:
        assert _deployment_ready(api, OPERATOR) and _deployment_ready(api, TRACKING)
        (operator_pod,) = _pods(api, "operator")
        assert operator_pod["spec"]["serviceAccountName"] == OPERATOR, "the chart's account, not an admin's"
        _helm_test(admin)
        # A user's namespace enforcing restricted: the operator's pods are not the only ones checked.
        assert _numbered(api, _restricted_namespace(api)) == 1

        # Every pod the chart made passes Pod Security restricted: the API server's own
        # dry run of the label warns about each existing pod that would violate it.
        dry = admin.kubectl(
            "label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted", "--dry-run=server"
        )
        assert "violate" not in dry.stderr + dry.stdout, dry.stderr

        # helm upgrade: the operator rolls to the new values.
        admin.helm(
            "upgrade", RELEASE, "charts/modelship", "-n", NAMESPACE, "--reuse-values",
            "--set", "operator.verbose=true", "--wait", "--timeout", TIMEOUT,
        )  # fmt: skip
        wait(lambda: [p for p in _pods(api, "operator") if "--verbose" in p["spec"]["containers"][0]["args"]], 120,
             "an operator pod with --verbose")  # fmt: skip
        wait(lambda: _deployment_ready(api, OPERATOR), 300, "the upgraded operator Ready")

        # watchNamespaces naming a namespace that does not exist (with peering, whose
        # KopfPeering hooks go into each watched namespace) must not fail a hook.
        upgrade = admin.helm(
            "upgrade", RELEASE, "charts/modelship", "-n", NAMESPACE, "--reuse-values",
            "--set", "peering.enabled=true", "--set", f"operator.watchNamespaces={{{NAMESPACE},not-yet-created}}",
            "--wait", "--timeout", TIMEOUT,
        )  # fmt: skip
        assert "The namespace not-yet-created does not exist yet" in upgrade.stdout, upgrade.stdout
        assert api.exists(path_for("kopf.dev/v1", "kopfpeerings", NAMESPACE, "modelship"))
        wait(lambda: _deployment_ready(api, OPERATOR), 300, "the namespaced operator Ready")
        _helm_test(admin)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- pods\n{_diagnose(api, clean_bed)}") from None

    # helm uninstall keeps the CRDs (and every object of their kinds) and the tracking data.
    admin.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", TIMEOUT)
    assert all(_crd_exists(api, c) for c in CRDS), "the CRDs are kept"
    assert api.exists(path_for("v1", "persistentvolumeclaims", NAMESPACE, TRACKING)), "the tracking data is kept"
    for name in (OPERATOR, TRACKING):
        assert not api.exists(path_for("apps/v1", "deployments", NAMESPACE, name)), name
    assert not api.exists(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{OPERATOR}")


def test_kubectl_install_then_helm_adopts_it(clean_bed: Bed, admin: Admin, api: KubeApi) -> None:
    _clean(admin, api)
    admin.kubectl("apply", "--server-side", "-f", str(INSTALL.relative_to(ROOT)))
    users: list[str] = []
    try:
        wait(lambda: _deployment_ready(api, OPERATOR), 300, "the operator of manifests/install.yaml Ready")
        wait(lambda: _deployment_ready(api, TRACKING), 300, "the tracking server of manifests/install.yaml Ready")
        namespace = api.get(f"/api/v1/namespaces/{NAMESPACE}")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert _numbered(api, _restricted_namespace(api)) == 1
        (operator_pod,) = _pods(api, "operator")
        args = operator_pod["spec"]["containers"][0]["args"]
        assert "--tracking-url=http://modelship-tracking.modelship-system:5000" in args, args

        # The same release by helm: it adopts every object, the CRDs included, and passes its test.
        started = time.monotonic()
        adopted = admin.helm("install", RELEASE, "charts/modelship", "-n", NAMESPACE, "--wait", "--timeout", TIMEOUT)
        assert "STATUS: deployed" in adopted.stdout, adopted.stdout
        crd = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRDS[1]}")
        assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == RELEASE
        _helm_test(admin)
        print(f"helm install adopting the kubectl install: {time.monotonic() - started:.0f}s")

        # The README's CRD-only command: every file of crds/ is a CRD and applies server-side.
        admin.kubectl("apply", "--server-side", "-f", "crds/")

        # The README's next step: the quickstart trains the iris MLproject the image carries,
        # registers its model, which reaches Staging through its gate, and the ModelDeployment
        # serves it; `kubectl get modelship` then lists one object of each kind.
        user = _restricted_namespace(api)
        users.append(user)
        admin.kubectl("apply", "-n", user, "-k", "manifests/examples/quickstart")
        started = time.monotonic()
        version = wait(lambda: _quickstart_registered(api, user), 600, "the quickstart trained and registered")
        wait(lambda: _staged(api, user, version), 180, f"ModelVersion {version} at Staging")
        listed = admin.kubectl("get", "modelship", "-n", user, "-o", "name").stdout.split()
        assert sorted(name.split(".", 1)[0] for name in listed) == sorted(k.kind.lower() for k in KINDS), listed
        deployment = path_for("modelship.io/v1alpha1", "modeldeployments", user, "quickstart")
        wait(lambda: _condition(api.get(deployment), "Ready") == "True", 300, "the quickstart's ModelDeployment Ready")
        host = api.get(path_for("v1", "services", user, "quickstart"))["spec"]["clusterIP"]
        wait(lambda: predict(host, 80)[0] == 200, 60, "a prediction through the quickstart's Service")
        print(f"quickstart trained, registered and served: {time.monotonic() - started:.0f}s")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- pods\n{_diagnose(api, clean_bed)}") from None
    finally:
        # The user's objects go while the operator runs, which takes off their finalizers.
        for namespace in users:
            admin.kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=5m", ok=False)
        admin.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", TIMEOUT, ok=False)


def _sync_waves(rendered: str) -> list[list[dict[str, Any]]]:
    """The chart's objects as Argo CD syncs them: grouped by ``argocd.argoproj.io/sync-wave``
    (0 when unset), lowest first, helm test hooks left out (Argo CD does not run them) and
    post-install hooks after everything (its PostSync)."""
    waves: dict[float, list[dict[str, Any]]] = {}
    for doc in yaml.safe_load_all(rendered):
        if not doc:
            continue
        annotations = (doc.get("metadata") or {}).get("annotations") or {}
        hook = annotations.get("helm.sh/hook", "")
        if "test" in hook.split(","):
            continue
        wave = float("inf") if hook else float(annotations.get("argocd.argoproj.io/sync-wave", 0))
        waves.setdefault(wave, []).append(doc)
    return [waves[w] for w in sorted(waves)]


def test_argocd_sync_order_and_no_drift_stand_in(clean_bed: Bed, admin: Admin, api: KubeApi, tmp_path: Path) -> None:
    """What Argo CD does with manifests/argocd/application.yaml, without Argo CD (it cannot run on
    the bed: no container engine, and its sync engine's module is not served): on a clean
    cluster, the chart as ``helm template`` renders it, applied server-side by Argo CD's field
    manager wave by wave (CRDs at wave -1 first) into a namespace made as its
    managedNamespaceMetadata says, with a custom resource in the same sync; once the operator
    reconciled, a server-side diff of the same manifests is empty: nothing Modelship renders or
    its operator writes drifts from what Argo CD applied (self-heal would find nothing to do)."""
    _clean(admin, api)
    application = yaml.safe_load((ROOT / "manifests" / "argocd" / "application.yaml").read_text())
    source, options = application["spec"]["source"], application["spec"]["syncPolicy"]["syncOptions"]
    assert "ServerSideApply=true" in options and "CreateNamespace=true" in options
    labels = application["spec"]["syncPolicy"]["managedNamespaceMetadata"]["labels"]
    rendered = admin.helm(
        "template", source["helm"]["releaseName"], source["path"], "-n", NAMESPACE, "--skip-tests"
    ).stdout
    waves = _sync_waves(rendered)
    assert {d["kind"] for d in waves[0]} >= {"CustomResourceDefinition"}, "the CRDs sync first"
    # An application's custom resource, in the default wave of the same sync.
    sample = {
        "apiVersion": "modelship.io/v1alpha1",
        "kind": "RegisteredModel",
        "metadata": {"name": "argo-sample", "namespace": NAMESPACE},
        "spec": {"model": "argo-sample", "description": "synced with the chart"},
    }
    waves[1].append(sample)
    manager = ["--server-side", "--field-manager=argocd-controller"]
    admin.kubectl("create", "namespace", NAMESPACE)
    admin.kubectl("label", "namespace", NAMESPACE, *(f"{k}={v}" for k, v in labels.items()))
    everything = tmp_path / "all.yaml"
    everything.write_text(yaml.safe_dump_all([d for wave in waves for d in wave]))
    try:
        for number, wave in enumerate(waves):
            path = tmp_path / f"wave-{number}.yaml"
            path.write_text(yaml.safe_dump_all(wave))
            admin.kubectl("apply", *manager, "-f", str(path))
            if any(d["kind"] == "CustomResourceDefinition" for d in wave):
                admin.kubectl("wait", "--for=condition=Established", "--timeout=120s", *(f"crd/{c}" for c in CRDS))
        wait(
            lambda: _deployment_ready(api, OPERATOR) and _deployment_ready(api, TRACKING),
            600,
            "the synced release Ready",
        )
        model = path_for("modelship.io/v1alpha1", "registeredmodels", NAMESPACE, "argo-sample")
        wait(lambda: _condition(api.get(model), "Ready") == "True", 180, "the synced RegisteredModel reconciled")
        diff = admin.kubectl("diff", *manager, "-f", str(everything), ok=False)
        assert diff.returncode == 0, f"drift from what Argo CD applied:\n{diff.stdout[-6000:]}{diff.stderr[-2000:]}"
        # The same diff sees a change someone else makes (what self-heal would undo).
        admin.kubectl("scale", "deployment", TRACKING, "-n", NAMESPACE, "--replicas=0")
        drifted = admin.kubectl("diff", *manager, "-f", str(everything), ok=False)
        assert drifted.returncode == 1 and "replicas" in drifted.stdout, drifted.stdout[-3000:] + drifted.stderr
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- pods\n{_diagnose(api, clean_bed)}") from None
    finally:
        admin.kubectl("delete", "-f", str(everything), "--ignore-not-found", "--wait=true", "--timeout=5m", ok=False)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def test_every_call_of_the_installed_operator_was_granted(clean_bed: Bed, admin: Admin) -> None:
    """The API server's audit log of the chart's ServiceAccount over the tests above: no call was
    refused (403), and every call is one controllers/rbac.py declares. Prints what was used and
    what these tests did not exercise (not a failure here: they do not run every controller path)."""
    assert clean_bed.control_plane is not None
    used: set[tuple[str, str, str]] = set()
    refused, refused_draining = [], []
    for line in clean_bed.control_plane.audit_log.read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef")
        if event.get("user", {}).get("username") != OPERATOR_USER or not ref:
            continue
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        grant = (ref.get("apiGroup") or "", resource, event["verb"])
        used.add(grant)
        if (event.get("responseStatus") or {}).get("code") == 403:
            at = _epoch(event["requestReceivedTimestamp"])
            draining = any(start - 1 <= at <= end for start, end in admin.teardowns)
            (refused_draining if draining else refused).append((grant, ref.get("namespace"), ref.get("name")))
    assert used, "the audit log has the operator's calls"
    assert not refused, f"calls the chart's RBAC refused: {refused}"
    declared = required_grants(peering=True)
    assert used <= declared, f"calls controllers/rbac.py does not declare: {sorted(used - declared)}"
    print(
        f"\noperator API calls in the install tests: {len(used)} distinct (group, resource, verb) of {len(declared)} granted"
    )
    print(f"used: {sorted(used)}")
    print(f"granted, not exercised here: {sorted(declared - used)}")
    print(f"refused while an uninstall took the roles away from a draining pod: {len(refused_draining)}")
