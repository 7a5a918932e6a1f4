"""E2E fixtures: the CRDs installed once per session; the operator under the chart's ServiceAccount."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.cluster.kubeapi import KubeApi
from tests.conftest import wait

REPO = Path(__file__).resolve().parents[2]


def install_crds(kube: KubeApi, timeout: float = 60) -> list[dict]:
    """Install crds/*.yaml as a user would (server-side apply) and wait until Established."""
    installed = []
    for path in sorted((REPO / "crds").glob("*.modelship.io.yaml")):
        crd = yaml.safe_load(path.read_text())
        name = crd["metadata"]["name"]
        kube.apply(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}", crd)
        installed.append(crd)

    def established() -> bool:
        for crd in installed:
            obj = kube.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}")
            conds = {c["type"]: c["status"] for c in obj.get("status", {}).get("conditions") or []}
            if conds.get("Established") != "True":
                return False
        return True

    wait(established, timeout, "CRDs Established")
    return installed


@pytest.fixture(scope="session")
def crds(kube: KubeApi) -> list[dict]:
    """The CRDs, installed once per session (:func:`install_crds`)."""
    return install_crds(kube)


REGISTRY_WRITE_NAMESPACE = "modelship-e2e-mlflow"
"""Where the session tracking server puts models registered through the MLflow API."""


def ensure_namespace(kube: KubeApi, name: str) -> None:
    from tests.cluster.kubeapi import ApiError

    try:
        kube.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    except ApiError as exc:
        if exc.status != 409:
            raise


def start_tracking_server(bed, state: Path, name: str = "tracking-server", extra: tuple[str, ...] = (), env=None):
    """`modelship tracking-server` on the bed's bridge address, so that pods reach it too;
    (its process, its base URL) once it answers /health."""
    import sys
    import urllib.request

    from tests.cluster.processes import Process, wait_for
    from tests.local_servers import free_port

    host = bed.host_address
    port = free_port(host)
    proc = Process(
        name,
        [
            str(Path(sys.executable).with_name("modelship")),
            "tracking-server",
            "--host",
            host,
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{state / 'tracking.db'}",
            "--artifacts-destination",
            str(state / "artifacts"),
            *extra,
        ],
        state,
        env=env,
    ).start()
    url = f"http://{host}:{port}"

    def up() -> bool:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200

    try:
        wait_for(up, 60, f"{name} health", interval=0.3, processes=[proc])
    except BaseException:
        proc.stop()
        raise
    return proc, url


@pytest.fixture(scope="session")
def tracking_server(bed, kube: KubeApi, tmp_path_factory: pytest.TempPathFactory):
    """The session's tracking server (no token). Yields its base URL. On kind (no bridge of
    ours) it listens on loopback and only the host-side tests can use it. It serves the
    MLflow registry API, writes included, from the bed's objects (reads: every namespace;
    new models: REGISTRY_WRITE_NAMESPACE).
    """
    proc, url = start_tracking_server(
        bed,
        tmp_path_factory.mktemp("tracking"),
        extra=("--registry-kubeconfig", str(bed.kubeconfig), "--registry-write-namespace", REGISTRY_WRITE_NAMESPACE),
    )
    try:
        ensure_namespace(kube, REGISTRY_WRITE_NAMESPACE)
        yield url
    finally:
        proc.stop()


WEBHOOK_NAMESPACE = "modelship-e2e"
WEBHOOK_SECRET = "registry-webhooks"


@pytest.fixture(scope="session")
def webhook_receiver(kube: KubeApi):
    """A registry webhook receiver on loopback, and the Secret with its HMAC key.

    The session operator sends every registry event here (tests filter by namespace), so
    webhooks run in every e2e session and one operator serves all tests.
    """
    import base64
    import secrets

    from tests.e2e.webhook_receiver import Receiver

    key = secrets.token_bytes(32)
    ensure_namespace(kube, WEBHOOK_NAMESPACE)
    kube.apply(
        f"/api/v1/namespaces/{WEBHOOK_NAMESPACE}/secrets/{WEBHOOK_SECRET}",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": WEBHOOK_SECRET, "namespace": WEBHOOK_NAMESPACE},
            "data": {"secret": base64.b64encode(key).decode()},
        },
    )
    receiver = Receiver(key).start()
    try:
        yield receiver
    finally:
        receiver.stop()


OPERATOR_NAMESPACE = "modelship-system"
"""Where the e2e operator's ServiceAccount lives: the namespace of the chart's release."""
OPERATOR_VALUES = ("--set", f"operator.webhookSecret={WEBHOOK_NAMESPACE}/{WEBHOOK_SECRET}")
"""The chart values that match how the session operator runs (every namespace, signed webhooks)."""


def chart_rbac(*values: str, release: str = "modelship", namespace: str = OPERATOR_NAMESPACE) -> list[dict]:
    """The ServiceAccounts, roles and bindings ``helm template`` renders from the chart with ``values``."""
    import subprocess

    from scripts.render_install import CHART, KUBE_VERSION, find_helm
    from tests.e2e.rbac_audit import RBAC_KINDS

    helm = find_helm()
    assert helm, "helm is needed to render the chart's RBAC: scripts/setup.sh builds it (MODELSHIP_HELM names it)"
    command = [helm, "template", release, str(CHART), "--namespace", namespace, "--kube-version", KUBE_VERSION]
    out = subprocess.run([*command, "--skip-tests", *values], check=True, capture_output=True, text=True).stdout
    return [o for o in yaml.safe_load_all(out) if o and o.get("kind") in RBAC_KINDS]


def operator_account(objects: list[dict]) -> str:
    """The name of the operator's ServiceAccount among the chart's objects."""
    (account,) = [
        o["metadata"]["name"]
        for o in objects
        if o["kind"] == "ServiceAccount" and o["metadata"]["labels"].get("app.kubernetes.io/component") == "operator"
    ]
    return str(account)


def account_kubeconfig(bed, kube: KubeApi, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig of the bed's cluster whose user is a TokenRequest token of ``account``: what a
    pod of that ServiceAccount gets mounted (one day's validity: longer than any session)."""
    from tests.cluster.kubeapi import path_for

    answer = kube.create(
        path_for("v1", "serviceaccounts", namespace, account, "token"),
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 86400}},
    )
    config = yaml.safe_load(Path(bed.kubeconfig).read_text())
    user = f"system:serviceaccount:{namespace}:{account}"
    config["users"] = [{"name": user, "user": {"token": answer["status"]["token"]}}]
    for context in config["contexts"]:
        context["context"]["user"] = user
        context["context"]["namespace"] = namespace
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def operator_rbac() -> list[dict]:
    """The chart's RBAC for the session operator's values (see OPERATOR_VALUES)."""
    return chart_rbac(*OPERATOR_VALUES)


def install_operator_identity(bed, kube: KubeApi, rbac: list[dict], path: Path) -> Path:
    """The chart's ServiceAccount, roles and bindings (``rbac``, from :func:`chart_rbac`) applied
    as ``helm install`` would, and a kubeconfig at ``path`` with a token of that account."""
    from tests.cluster.kubeapi import path_for

    ensure_namespace(kube, OPERATOR_NAMESPACE)
    for obj in rbac:
        meta = obj["metadata"]
        api_version = obj["apiVersion"]
        plural = {"ServiceAccount": "serviceaccounts"}.get(obj["kind"]) or obj["kind"].lower() + "s"
        if meta.get("namespace"):
            ensure_namespace(kube, meta["namespace"])
        kube.apply(path_for(api_version, plural, meta.get("namespace"), meta["name"]), obj)
    return account_kubeconfig(bed, kube, OPERATOR_NAMESPACE, operator_account(rbac), path)


@pytest.fixture(scope="session")
def operator_kubeconfig(bed, kube: KubeApi, crds, operator_rbac: list[dict], tmp_path_factory) -> Path:
    """The e2e operator's credentials (:func:`install_operator_identity`). Nothing the operator
    does in e2e tests runs with the admin kubeconfig, so a rule the chart misses fails a test."""
    return install_operator_identity(
        bed, kube, operator_rbac, tmp_path_factory.mktemp("operator-identity") / "kubeconfig"
    )


def operator_process(
    bed,
    name: str,
    state: Path,
    health: int,
    tracking_url: str,
    *extra: str,
    kubeconfig: Path,
    env=None,
    scope: tuple[str, ...] = ("--all-namespaces",),
):
    """`modelship operator` as a user runs it, watching every namespace of the bed unless
    ``scope`` says otherwise (not started), with the credentials of ``kubeconfig`` (the
    chart's ServiceAccount: ``operator_kubeconfig``)."""
    import os
    import sys

    from tests.cluster.processes import Process

    return Process(
        name,
        [
            str(Path(sys.executable).with_name("modelship")),
            "operator",
            *scope,
            "--health-host",
            "127.0.0.1",
            "--liveness-port",
            str(health),
            "--tracking-url",
            tracking_url,
            *extra,
        ],
        state,
        env={**os.environ, **(env or {}), "KUBECONFIG": str(kubeconfig)},
    )


@pytest.fixture(scope="session")
def operator(
    bed,
    crds,
    tracking_server: str,
    webhook_receiver,
    operator_kubeconfig: Path,
    tmp_path_factory: pytest.TempPathFactory,
):
    """`modelship operator` as a user runs it, watching every namespace of the bed, as the chart's
    ServiceAccount."""
    import urllib.request

    from tests.cluster.processes import wait_for
    from tests.local_servers import free_port

    health, metrics = free_port(), free_port()
    proc = operator_process(
        bed,
        "operator",
        tmp_path_factory.mktemp("operator"),
        health,
        tracking_server,
        "--metrics-port",
        str(metrics),
        "--webhook-url",
        webhook_receiver.url,
        "--webhook-secret",
        f"{WEBHOOK_NAMESPACE}/{WEBHOOK_SECRET}",
        kubeconfig=operator_kubeconfig,
    ).start()

    def live() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=2) as resp:
            return resp.status == 200

    try:
        wait_for(live, 60, "operator liveness", interval=0.5, processes=[proc])
        proc.health_url = f"http://127.0.0.1:{health}/healthz"  # type: ignore[attr-defined]
        proc.metrics_url = f"http://127.0.0.1:{metrics}/metrics"  # type: ignore[attr-defined]
        yield proc
    finally:
        proc.stop()
        print(f"--- operator log\n{proc.tail(60)}")
