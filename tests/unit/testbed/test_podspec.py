"""The node agent's pure decisions, table by table."""

from __future__ import annotations

import pytest
from tests.cluster import podspec
from tests.cluster.podspec import MainOutcome, Terminated

POD = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"app": "web"}},
    "spec": {"nodeName": "n0", "serviceAccountName": "sa"},
    "status": {"podIP": "198.18.0.7", "hostIP": "198.18.0.1"},
}


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("modelship", True),
        ("modelship:dev", True),
        ("ghcr.io/modelship/modelship:0.1.0", True),
        ("localhost:5000/modelship@sha256:abc", True),
        ("python:3.11-slim", False),
        ("ghcr.io/modelship/modelship-extra:1", False),
        ("modelship/other:1", False),
        ("", False),
    ],
)
def test_image_allowed(image: str, allowed: bool) -> None:
    assert podspec.image_allowed(image) is allowed


@pytest.mark.parametrize(
    ("image", "mounts"),
    [
        (
            "ghcr.io/modelship/modelship:0.1.0",
            [{"source": "/repo/manifests/examples", "target": "/opt/modelship/examples", "readOnly": True}],
        ),
        (
            "modelship@sha256:abc",
            [{"source": "/repo/manifests/examples", "target": "/opt/modelship/examples", "readOnly": True}],
        ),
        ("registry.k8s.io/coredns/coredns:v1.15.0", []),
        ("", []),
    ],
)
def test_image_files(image: str, mounts: list[dict[str, object]]) -> None:
    """The project image's examples are the checkout's, read-only; other images carry nothing of ours."""
    assert podspec.image_files(image, "/repo") == mounts


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("$(A)-$(B)", {"A": "1", "B": "2"}, "1-2"),
        ("$(MISSING)", {}, "$(MISSING)"),
        ("$$(A)", {"A": "1"}, "$(A)"),
        ("plain", {"A": "1"}, "plain"),
    ],
)
def test_expand(value: str, env: dict[str, str], expected: str) -> None:
    assert podspec.expand(value, env) == expected


def _lookup(kind: str, namespace: str, name: str) -> dict[str, str] | None:
    store = {("configmap", "ns", "cm"): {"k": "from-cm", "x": "1"}, ("secret", "ns", "s"): {"pw": "hunter2"}}
    return store.get((kind, namespace, name))


def test_container_env_resolves_every_source_in_order() -> None:
    container = {
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "env": [
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}},
            {"name": "URL", "value": "http://$(IP):80/$(NAME)"},
        ],
    }
    env = podspec.container_env(POD, container, {"PATH": "/bin"}, _lookup)
    assert env == {
        "PATH": "/bin",
        "CM_k": "from-cm",
        "CM_x": "1",
        "NAME": "p",
        "IP": "198.18.0.7",
        "APP": "web",
        "PW": "hunter2",
        "K": "from-cm",
        "URL": "http://198.18.0.7:80/p",
    }


@pytest.mark.parametrize(
    ("env_entry", "message"),
    [
        ({"name": "A", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}, 'secret "absent" not found'),
        ({"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "zz"}}}, "couldn't find key zz"),
        ({"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}, "not supported"),
    ],
)
def test_container_env_errors_name_the_missing_piece(env_entry: dict, message: str) -> None:
    with pytest.raises(podspec.ConfigError, match=message):
        podspec.container_env(POD, {"env": [env_entry]}, {}, _lookup)


@pytest.mark.parametrize(
    ("container", "argv"),
    [
        ({"command": ["python", "-c", "print(1)"]}, ["python", "-c", "print(1)"]),
        ({"command": ["sh", "-c"], "args": ["echo $(X)"]}, ["sh", "-c", "echo x"]),
        ({"args": ["tracking-server", "--port", "5000"]}, ["modelship", "tracking-server", "--port", "5000"]),
        ({}, ["modelship"]),
    ],
)
def test_container_argv(container: dict, argv: list[str]) -> None:
    assert podspec.container_argv(container, {"X": "x"}) == argv


@pytest.mark.parametrize(
    ("policy", "code", "restart"),
    [
        ("Always", 0, True),
        ("Always", 1, True),
        ("OnFailure", 0, False),
        ("OnFailure", 2, True),
        ("Never", 1, False),
        ("Never", 0, False),
    ],
)
def test_should_restart(policy: str, code: int, restart: bool) -> None:
    assert podspec.should_restart(policy, code) is restart


@pytest.mark.parametrize(
    ("initialized", "init_failed", "outcome", "started", "phase"),
    [
        (False, False, MainOutcome("Never", names=["a"]), False, "Pending"),
        (True, True, MainOutcome("Never", names=["a"]), False, "Failed"),
        (True, False, MainOutcome("Never", running={"a"}, names=["a"]), True, "Running"),
        (True, False, MainOutcome("Never", terminated={"a": Terminated(0)}, names=["a"]), True, "Succeeded"),
        (True, False, MainOutcome("Never", terminated={"a": Terminated(1)}, names=["a"]), True, "Failed"),
        (
            True,
            False,
            MainOutcome("Never", terminated={"a": Terminated(0)}, running={"b"}, names=["a", "b"]),
            True,
            "Running",
        ),
        (True, False, MainOutcome("OnFailure", terminated={"a": Terminated(0)}, names=["a"]), True, "Succeeded"),
        (True, False, MainOutcome("Always", terminated={"a": Terminated(0)}, names=["a"]), True, "Running"),
    ],
)
def test_pod_phase(initialized: bool, init_failed: bool, outcome: MainOutcome, started: bool, phase: str) -> None:
    assert podspec.pod_phase(initialized, init_failed, outcome, started) == phase


def test_condition_keeps_transition_time_while_status_holds() -> None:
    prev = [{"type": "Ready", "status": "True", "lastTransitionTime": "T0"}]
    assert podspec.condition("Ready", True, "T1", prev)["lastTransitionTime"] == "T0"
    assert podspec.condition("Ready", False, "T1", prev)["lastTransitionTime"] == "T1"


@pytest.mark.parametrize(("restarts", "delay"), [(0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (10, 20.0)])
def test_backoff(restarts: int, delay: float) -> None:
    assert podspec.backoff_seconds(restarts) == delay
