"""Appliers of an Experiment's children: the only functions here that call the Kubernetes API.

Synchronous, on the ``kubernetes`` client that kopf's login configured (kopf runs sync
handlers in threads). Creates are idempotent: a 409 Conflict means the object is
already there, which is what a restarted operator expects to find.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelship.api import GROUP, VERSION

MERGE_PATCH = "application/merge-patch+json"


def _api() -> client.ApiClient:
    return client.ApiClient()


def _plain(api: client.ApiClient, obj: Any) -> dict[str, Any]:
    """A client model as the camelCase dict the API server sends."""
    out: dict[str, Any] = api.sanitize_for_serialization(obj)
    return out


def list_jobs(namespace: str, selector: str) -> list[dict[str, Any]]:
    with _api() as api:
        jobs = client.BatchV1Api(api).list_namespaced_job(namespace, label_selector=selector)
        return [_plain(api, job) for job in jobs.items]


def list_pods(namespace: str, selector: str) -> list[dict[str, Any]]:
    with _api() as api:
        pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector)
        return [_plain(api, pod) for pod in pods.items]


def ensure_job(job: Mapping[str, Any]) -> bool:
    """Create the Job; False when one of that name exists already (nothing is changed)."""
    with _api() as api:
        try:
            client.BatchV1Api(api).create_namespaced_job(job["metadata"]["namespace"], dict(job))  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
    return True


def suspend_job(namespace: str, name: str, annotations: Mapping[str, str]) -> None:
    """Suspend a Job (its pods are deleted, it never completes) and annotate why."""
    body = {"metadata": {"annotations": dict(annotations)}, "spec": {"suspend": True}}
    with _api() as api:
        client.BatchV1Api(api).patch_namespaced_job(name, namespace, body, _content_type=MERGE_PATCH)


def ensure_model_version(body: Mapping[str, Any]) -> bool:
    """Create the ModelVersion; False when it exists already."""
    with _api() as api:
        try:
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                GROUP, VERSION, body["metadata"]["namespace"], "modelversions", dict(body)
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
    return True
