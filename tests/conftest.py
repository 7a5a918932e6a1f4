"""Shared fixtures: the real control plane for e2e tests, one namespace per test."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.bed import Bed, ExternalBed
from tests.cluster.kubeapi import ApiError, KubeApi

E2E_DIR = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


# ---- figures of the reliability tests ----------------------------------------------------
FIGURES = pytest.StashKey[dict[str, dict[str, Any]]]()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Counts a reliability test records (sent, acknowledged, stored, ...). They are printed
    in the terminal summary, so they show in CI output without ``-s``, and appended as one
    JSON line per test to ``$MODELSHIP_RELIABILITY_REPORT`` when that is set."""
    recorded: dict[str, Any] = {}
    request.config.stash.setdefault(FIGURES, {})[request.node.nodeid] = recorded
    return recorded


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    recorded = {test: fig for test, fig in config.stash.get(FIGURES, {}).items() if fig}
    if not recorded:
        return
    terminalreporter.section("reliability figures")
    for test, fig in recorded.items():
        terminalreporter.write_line(f"{test}: " + ", ".join(f"{k}={v}" for k, v in fig.items()))
    report = os.environ.get("MODELSHIP_RELIABILITY_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as out:
            for test, fig in recorded.items():
                out.write(json.dumps({"test": test, **fig}, sort_keys=True) + "\n")


OPERATOR_USER = "system:serviceaccount:modelship-system:modelship-operator"
"""The e2e operator's identity: the chart's ServiceAccount (tests/e2e/conftest.py). The bed's API
server records its calls in audit.log, for tests/e2e/test_rbac_usage.py."""


@pytest.fixture(scope="session")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    """The test bed: etcd, kube-apiserver, controller-manager, scheduler and a node agent."""
    external = os.environ.get("MODELSHIP_KUBECONFIG")
    if external:
        started: Bed | ExternalBed = ExternalBed(Path(external)).start()
    else:
        state = Path(os.environ.get("MODELSHIP_BED_STATE") or tmp_path_factory.mktemp("bed"))
        started = Bed(state, audit_users=(OPERATOR_USER,)).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def kube(bed: Bed) -> KubeApi:
    assert bed.api is not None
    return bed.api


POD_SECURITY_LABEL = "pod-security.kubernetes.io/enforce"


@pytest.fixture
def namespace(kube: KubeApi, bed: Bed, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (its pods stop with it).

    It enforces Pod Security ``restricted``, as a careful cluster admin's namespaces do: the
    API server itself refuses a pod the operator makes that misses a field of the profile.
    A test module of the bed's own (bare pods of its tests) sets ``POD_SECURITY = None``.
    """
    name = f"t-{secrets.token_hex(4)}"
    level = getattr(request.module, "POD_SECURITY", "restricted")
    labels = {POD_SECURITY_LABEL: level} if level else {}
    kube.create(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}},
    )
    # The service account controller creates "default"; pods are refused until it exists.
    wait(lambda: kube.exists(f"/api/v1/namespaces/{name}/serviceaccounts/default"), 30, "default service account")
    yield name
    bed.check_alive()
    try:
        kube.delete(f"/api/v1/namespaces/{name}")
    except ApiError:
        pass


def wait(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.25,
    retry: tuple[type[Exception], ...] = (),
) -> Any:
    """Poll until predicate() is truthy; the last value or error goes into the failure.
    An ApiError (and any error of ``retry``, e.g. OSError for a process that restarts) is
    retried until the bound."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (ApiError, *retry) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
