"""Read the model servers' ``/drift`` figures for a ModelDeployment's DriftDetected condition
(and, by the same path, their ``/feedback`` figures for the A/B readout).

The same path as the canary analysis (``modeldeployment.scrape_canary``): the variant's
Ready pods by label, then each pod's own port, so every pod's window is read (a Service
would answer from one pod at a time). The plan is :func:`modelship.resources.drift.plan_drift`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelship import kube
from modelship.resources import serving

SCRAPE_TIMEOUT_S = 3.0


def ready_pod_ips(namespace: str, selector: str) -> list[str]:
    """The IPs of the Ready, not terminating pods that ``selector`` selects."""
    ips = []
    for pod in kube.list_items(kube.core_path(namespace, "pods"), labelSelector=selector):
        status = pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        if ready and status.get("podIP") and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            ips.append(str(status["podIP"]))
    return ips


def scrape_pods(
    namespace: str, deployment: str, variants: Iterable[str], path: str
) -> dict[str, list[dict[str, Any]] | None]:
    """Each variant's Ready pods' JSON answer at ``path`` (``/drift``, ``/feedback``); None for a
    variant when one of its Ready pods cannot be read."""
    import httpx

    out: dict[str, list[dict[str, Any]] | None] = {}
    for variant in variants:
        selector = f"{serving.LABEL_DEPLOYMENT}={serving.label_value(deployment)},{serving.LABEL_VARIANT}={variant}"
        reports: list[dict[str, Any]] | None = []
        for ip in ready_pod_ips(namespace, selector):
            try:
                resp = httpx.get(f"http://{ip}:{serving.SERVER_PORT}{path}", timeout=SCRAPE_TIMEOUT_S)
                resp.raise_for_status()
                assert reports is not None
                reports.append(resp.json())
            except (httpx.HTTPError, ValueError):
                reports = None
                break
        out[variant] = reports
    return out


def scrape_drift(namespace: str, deployment: str, variants: Iterable[str]) -> dict[str, list[dict[str, Any]] | None]:
    """Each variant's pods' ``/drift`` reports (stable and canary pods alike: the reports say
    their version); None for a variant when one of its Ready pods cannot be read."""
    return scrape_pods(namespace, deployment, variants, "/drift")
