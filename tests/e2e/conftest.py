"""E2E fixtures: the CRDs installed once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.cluster.kubeapi import KubeApi
from tests.conftest import wait

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def crds(kube: KubeApi) -> list[dict]:
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

    wait(established, 60, "CRDs Established")
    return installed


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


def operator_process(bed, name: str, state: Path, health: int, tracking_url: str, *extra: str, env=None):
    """`modelship operator` as a user runs it, watching every namespace of the bed (not started)."""
    import os
    import sys

    from tests.cluster.processes import Process

    return Process(
        name,
        [
            str(Path(sys.executable).with_name("modelship")),
            "operator",
            "--all-namespaces",
            "--health-host",
            "127.0.0.1",
            "--liveness-port",
            str(health),
            "--tracking-url",
            tracking_url,
            *extra,
        ],
        state,
        env={**os.environ, **(env or {}), "KUBECONFIG": str(bed.kubeconfig)},
    )


@pytest.fixture(scope="session")
def operator(bed, crds, tracking_server: str, webhook_receiver, tmp_path_factory: pytest.TempPathFactory):
    """`modelship operator` as a user runs it, watching every namespace of the bed."""
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
