"""Appliers of an Experiment's children: Jobs, their pods, the ModelVersion it registers.

Thin names over :mod:`modelship.kube` (the one client), blocking: kopf runs sync handlers
in threads. Creates are idempotent: an object that exists already is what a restarted
operator expects to find, and is left as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelship import kube


def list_jobs(namespace: str, selector: str) -> list[dict[str, Any]]:
    return kube.list_items(kube.object_path("batch/v1", "jobs", namespace), labelSelector=selector)


def list_pods(namespace: str, selector: str) -> list[dict[str, Any]]:
    return kube.list_items(kube.core_path(namespace, "pods"), labelSelector=selector)


def ensure_job(job: Mapping[str, Any]) -> bool:
    """Create the Job; False when one of that name exists already (nothing is changed)."""
    return kube.ensure(kube.object_path("batch/v1", "jobs", job["metadata"]["namespace"]), job)


def stop_job(namespace: str, name: str, annotations: Mapping[str, str]) -> None:
    """End a running Job now and annotate why: an active deadline of one second makes the Job
    controller delete its pods and fail it (DeadlineExceeded). A failed Job is finished, so its
    TTL (``ttlSecondsAfterFinished``) deletes it later; a suspended one would stay for ever."""
    body = {"metadata": {"annotations": dict(annotations)}, "spec": {"activeDeadlineSeconds": 1}}
    kube.merge_patch(kube.object_path("batch/v1", "jobs", namespace, name), body)


def ensure_model_version(body: Mapping[str, Any]) -> bool:
    """Create the ModelVersion; False when it exists already."""
    return kube.ensure(kube.custom_path(body["metadata"]["namespace"], "modelversions"), body)
