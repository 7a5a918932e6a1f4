"""Least privilege, measured: the chart's RBAC grants exactly the calls the operator makes.

The test runs existing e2e flows (FLOWS: each of the four kinds, an Experiment with trials,
a ModelVersion through stage changes and signed webhooks, RegisteredModels, a ModelDeployment
through a canary, gateway-mode routes with a shadow, children pruned) in a pytest session of
their own, on a bed of their own whose API server audits the operator's ServiceAccount. The
session operator runs with that account's token and the RBAC ``helm template`` renders for
its values (tests/e2e/conftest.py), so the flows pass only if the chart grants what they
need. Then, from the audit log:

(a) every call the operator made is granted by the rendered rules, and none was refused;
(b) every verb the rendered rules grant was used by some call — a granted verb nothing uses
    is a verb to prune from operator/modelship/controllers/rbac.py (NOT_EXERCISED names the
    verbs whose paths the flows do not take for certain, and why).

kopf peering's rules (peering.enabled) are not rendered here: tests/e2e/test_install_paths.py
runs the operator with peering and checks its calls against rbac.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from tests.conftest import OPERATOR_USER
from tests.e2e.conftest import OPERATOR_NAMESPACE, OPERATOR_VALUES, REPO, chart_rbac, operator_account
from tests.e2e.rbac_audit import calls_of, grants_of, read_audit_log, shapes, ungranted, unused

FLOWS = (
    "tests/e2e/test_operator.py::test_operator_sets_observed_generation_and_ready_on_each_kind",
    "tests/e2e/test_experiment.py::test_iris_search_runs_trials_and_registers_the_best",
    "tests/e2e/test_registry.py::test_promotion_supersede_history_and_events",
    "tests/e2e/test_registry.py::test_webhooks_signed_retried_and_delivered_once_across_a_restart",
    "tests/e2e/test_registry_writes.py::test_the_mlflow_client_registers_promotes_aliases_tags_and_deletes",
    "tests/e2e/test_modeldeployment.py::test_a_good_canary_promotes_and_an_operator_killed_mid_way_resumes",
    "tests/e2e/test_modeldeployment.py::test_gateway_mode_weights_pins_edits_and_a_shadow",
    "tests/e2e/test_modeldeployment.py::test_children_follow_the_spec_and_go_with_the_deployment",
    "tests/e2e/test_closed_loop.py::test_drift_retrains_gates_and_canaries_with_no_manual_step",
)
"""Existing e2e tests that, together, take the operator through every path that calls the API."""

NOT_EXERCISED = {
    ("patch", "batch", "jobs"): "a trial's Job is ended when early stopping or maxFailedTrials stops the "
    "trial (controllers/children.py stop_job); whether a trial of FLOWS is stopped depends on timing",
    **{
        ("get", "modelship.io", plural): "the registry view (controllers/registry_view.py) reads one object again "
        "only when a conditional write of its stale copy answers 409; whether FLOWS race so depends on timing"
        for plural in ("modelversions", "registeredmodels")
    },
    **{
        ("delete", group, plural): f"prune_children deletes a {kind} the plan no longer has (autoscaling, "
        "replicas, routing or shadow taken out of a ModelDeployment's spec); FLOWS take out only Deployments "
        "and Services"
        for group, plural, kind in (
            ("autoscaling", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
            ("policy", "poddisruptionbudgets", "PodDisruptionBudget"),
            ("gateway.networking.k8s.io", "httproutes", "HTTPRoute"),
            ("traefik.io", "traefikservices", "TraefikService"),
        )
    },
}
"""Granted verbs the code uses on a path FLOWS do not take for certain: (verb, group, resource) and why."""


def _run_flows(state: Path) -> subprocess.CompletedProcess[str]:
    """FLOWS in a pytest session of their own, on a bed in ``state``. Interrupted (a timeout),
    the session gets SIGINT, so that its fixtures stop its bed, servers and operator."""
    env = {**os.environ, "MODELSHIP_BED_STATE": str(state)}
    env.pop("MODELSHIP_KUBECONFIG", None)  # the audit log is the bed's own API server's
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FLOWS]
    with subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as child:
        try:
            out, _ = child.communicate(timeout=FLOWS_TIMEOUT)
        finally:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
                try:
                    child.communicate(timeout=180)
                except subprocess.TimeoutExpired:
                    child.kill()
    return subprocess.CompletedProcess(command, child.returncode, out, "")


FLOWS_TIMEOUT = 3000


@pytest.mark.timeout(FLOWS_TIMEOUT + 300)
def test_the_chart_grants_exactly_the_calls_the_operator_makes() -> None:
    # Not pytest's tmp_path: a long run on a shared machine can see its base directory rotated away.
    state = Path(tempfile.mkdtemp(prefix="modelship-rbac-usage-")) / "bed"
    done = _run_flows(state)
    assert done.returncode == 0, f"the flows failed (exit {done.returncode}):\n{done.stdout[-8000:]}"
    audit = state / "audit.log"
    calls = calls_of(read_audit_log(audit), OPERATOR_USER)
    assert calls, "the audit log has the operator's calls"
    objects = chart_rbac(*OPERATOR_VALUES)
    grants = grants_of(objects, operator_account(objects), OPERATOR_NAMESPACE)
    print(
        f"\n{len(calls)} calls of the operator, {len(shapes(calls))} distinct (verb, group, resource, namespaced?, "
        f"subresource); {len(grants)} granted verbs"
    )
    for shape in shapes(calls):
        print(f"  used: {shape}")
    missing = ungranted(calls, grants)
    idle = [g for g in unused(grants, calls) if (g.verb, g.group, g.resource) not in NOT_EXERCISED]
    assert not missing, "calls the chart's RBAC does not grant (add the rule to controllers/rbac.py):\n" + "\n".join(
        f"  {c}" for c in missing
    )
    assert not idle, "verbs the chart grants and no call used (prune them from controllers/rbac.py):\n" + "\n".join(
        f"  {g}" for g in idle
    )
    shutil.rmtree(state.parent, ignore_errors=True)
