"""Builders of the plain Kubernetes objects the e2e tests create."""

from __future__ import annotations

from typing import Any

IMAGE = "ghcr.io/modelship/modelship:dev"


def container(name: str, command: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": IMAGE, "command": command, **extra}


def pod_template(
    containers: list[dict[str, Any]], restart: str = "Never", labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels or {}},
        "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 5, "containers": containers, **spec},
    }


def job(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": pod_template(containers, **spec)},
    }


def deployment(name: str, containers: list[dict[str, Any]], replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": pod_template(containers, restart="Always", labels=labels),
        },
    }


def job_condition(job_obj: dict[str, Any], ctype: str) -> bool:
    return any(c["type"] == ctype and c["status"] == "True" for c in job_obj.get("status", {}).get("conditions") or [])
