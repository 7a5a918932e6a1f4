"""One Experiment trial as a Job: names, labels and the pod that runs it.

A trial is one tracking run and one ``batch/v1`` Job. The pod has, in order: a ``checkout``
init container (only with ``spec.project.git``) that clones the project into the
``workspace`` volume; the tracking sidecar as a native sidecar (an init container with
``restartPolicy: Always``, started before the trainer, stopped after it, so the Job
completes when training ends); and the ``trainer`` container running ``modelship run`` on
the entry point with the trial's parameters, logging to the sidecar on localhost. With
``spec.evaluate`` the trainer is the last init container instead and ``evaluate`` (running
``modelship evaluate`` on the trial's model, into its run) is the pod's container.

Pure: nothing here reads the clock, the cluster or the tracking server.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelship.api import ExperimentSpec
from modelship.api.common import ResourceRequirements
from modelship.api.experiment import SecretKeyRef
from modelship.resources.podsecurity import container_security_context, pod_security_context

LABEL_EXPERIMENT = "modelship.io/experiment"
LABEL_TRIAL = "modelship.io/trial"
ANNOTATION_PARAMETERS = "modelship.io/parameters"
ANNOTATION_RUN_ID = "modelship.io/run-id"
ANNOTATION_SAMPLER = "modelship.io/sampler-attrs"
ANNOTATION_STOPPED = "modelship.io/stopped"
ANNOTATION_STOPPED_REASON = "modelship.io/stopped-reason"
TAG_TRIAL_KEY = "modelship.io/trial-key"
TAG_EXPERIMENT = "modelship.io/experiment"

SIDECAR_PORT = 5001
WORKSPACE = "/workspace"
SOURCE_DIR = f"{WORKSPACE}/src"
BUFFER_DIR = "/var/run/modelship/tracking"
BUFFER_SIZE_LIMIT = "1Gi"
SIDECAR = "tracking"
"""The tracking sidecar's container name."""
SIDECAR_TOKEN_ENV = "MODELSHIP_SIDECAR_SERVER_TOKEN"
TERMINATION_LOG = "/dev/termination-log"
MAX_NAME = 63  # a Job's name is also a label value (job-name) on its pods

# Resources of each container when the Experiment does not say (spec.resources,
# spec.sidecarResources, spec.checkoutResources): every container has requests and a
# memory limit, so a trial is schedulable in a namespace with a LimitRange or a quota.
TRAINER_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}}
SIDECAR_RESOURCES = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
CHECKOUT_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}}

Scalar = str | int | float | bool


@dataclass(frozen=True)
class Owner:
    """The Experiment a child belongs to."""

    name: str
    namespace: str
    uid: str
    api_version: str = "modelship.io/v1alpha1"
    kind: str = "Experiment"

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def shorten(name: str, suffix: str = "", limit: int = MAX_NAME) -> str:
    """``name + suffix`` within ``limit`` characters; a long name is cut and keeps a hash."""
    full = name + suffix
    if len(full) <= limit:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    keep = limit - len(suffix) - len(digest) - 1
    return f"{name[:keep].rstrip('-.')}-{digest}{suffix}"


def trial_job_name(experiment: str, number: int) -> str:
    """``iris-trial-3``; a name too long for a label value is shortened with a hash."""
    return shorten(experiment, f"-trial-{number}")


def trial_key(experiment_uid: str, number: int) -> str:
    """The tag that finds a trial's run again after a crash: ``<experiment uid>-<n>``."""
    return f"{experiment_uid}-{number}"


def tracking_experiment_name(namespace: str, name: str) -> str:
    """The tracking server's experiment of an Experiment: ``<namespace>/<name>``."""
    return f"{namespace}/{name}"


def format_value(value: Scalar) -> str:
    """A parameter value as ``-P k=v`` passes it: booleans lower case, floats exact."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def trial_labels(experiment: str, number: int) -> dict[str, str]:
    return {LABEL_EXPERIMENT: label_value(experiment), LABEL_TRIAL: str(number)}


def label_value(name: str) -> str:
    """An object name as a label value (63 characters at most)."""
    return shorten(name)


def token_secret(spec: ExperimentSpec, default: SecretKeyRef | None) -> SecretKeyRef | None:
    """Where the trial sidecars' tracking token comes from: ``spec.tracking.tokenSecretRef``,
    else the operator's default Secret, else nowhere (no token)."""
    if spec.tracking is not None and spec.tracking.token_secret_ref is not None:
        return spec.tracking.token_secret_ref
    return default


def _resources(given: ResourceRequirements | None, default: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    if given is None:
        return {kind: dict(values) for kind, values in default.items()}
    return given.model_dump(by_alias=True, exclude_none=True)


def _sidecar_probe() -> dict[str, Any]:
    # exec, not httpGet: the sidecar listens on 127.0.0.1 only (nothing outside the pod
    # may write to the tracking server through it), and kubelets probe the pod IP.
    check = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{SIDECAR_PORT}/health', timeout=2)"
    return {
        "exec": {"command": ["python", "-c", check]},
        "periodSeconds": 1,
        "timeoutSeconds": 3,
        "failureThreshold": 120,
    }


def build_trial_job(
    owner: Owner,
    spec: ExperimentSpec,
    *,
    number: int,
    parameters: Mapping[str, Scalar],
    run_id: str,
    experiment_id: str,
    tracking_url: str,
    default_image: str,
    sampler_attrs: Mapping[str, Any] | None = None,
    token: SecretKeyRef | None = None,
) -> dict[str, Any]:
    """The Job of trial ``number``, owned by the Experiment; ``token`` is the Secret key the
    sidecar's tracking token comes from (``token_secret``)."""
    name = trial_job_name(owner.name, number)
    labels = trial_labels(owner.name, number)
    image = spec.project.image or default_image
    volume_mounts = [{"name": "workspace", "mountPath": WORKSPACE}]
    init_containers: list[dict[str, Any]] = []
    git = spec.project.git
    if git is not None:
        init_containers.append(
            {
                "name": "checkout",
                "image": image,
                "command": ["modelship", "checkout", git.url, SOURCE_DIR, "--ref", git.ref, "--path", git.path],
                "volumeMounts": volume_mounts,
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "resources": _resources(spec.checkout_resources, CHECKOUT_RESOURCES),
                "securityContext": container_security_context(read_only_root=False),
            }
        )
        project_dir = SOURCE_DIR if git.path in ("", ".") else f"{SOURCE_DIR}/{git.path.strip('/')}"
    else:
        # An MLproject baked into the image: its own path, or the image's working directory.
        project_dir = spec.project.path or "."
    sidecar: dict[str, Any] = {
        "name": SIDECAR,
        "image": image,
        "restartPolicy": "Always",
        "command": [
            "modelship",
            "tracking-sidecar",
            "--host",
            "127.0.0.1",
            "--port",
            str(SIDECAR_PORT),
            "--server",
            tracking_url,
            "--buffer-dir",
            BUFFER_DIR,
            # Its report (writes not delivered, dead-lettered, a refused token) becomes the
            # container's termination message, which the operator puts on the trial.
            "--termination-log",
            TERMINATION_LOG,
        ],
        "volumeMounts": [{"name": "tracking-buffer", "mountPath": BUFFER_DIR}],
        "startupProbe": _sidecar_probe(),
        "resources": _resources(spec.sidecar_resources, SIDECAR_RESOURCES),
        "securityContext": container_security_context(read_only_root=False),
    }
    if token is not None:
        # The kubelet reads the Secret: the token is never in the pod spec, and the operator
        # needs no permission to read it.
        ref = {"name": token.name, "key": token.key}
        sidecar["env"] = [{"name": SIDECAR_TOKEN_ENV, "valueFrom": {"secretKeyRef": ref}}]
    init_containers.append(sidecar)
    command = ["modelship", "run", project_dir, "-e", spec.project.entry_point]
    for key in sorted(parameters):
        command += ["-P", f"{key}={format_value(parameters[key])}"]
    env = [
        {"name": "MLFLOW_TRACKING_URI", "value": f"http://127.0.0.1:{SIDECAR_PORT}"},
        {"name": "MLFLOW_EXPERIMENT_ID", "value": experiment_id},
    ]
    env += [e.model_dump(by_alias=True, exclude_none=True) for e in spec.env or ()]
    # The pod's one statement of its run (what mlflow and `modelship run` read), last so that
    # spec.env cannot bind the trial to another run.
    env.append({"name": "MLFLOW_RUN_ID", "value": run_id})
    trainer: dict[str, Any] = {
        "name": "trainer",
        "image": image,
        "command": command,
        "env": env,
        "volumeMounts": volume_mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": _resources(spec.resources, TRAINER_RESOURCES),
        # The trainer is user code: it may write anywhere in its image, so its root stays writable.
        "securityContext": container_security_context(read_only_root=False),
    }
    containers = [trainer]
    if spec.evaluate is not None:
        # Evaluation runs after training, in the same pod and run: the trainer becomes the
        # last init container (init containers run in order, after the native sidecar is
        # up) and the evaluation is the pod's one container, so the Job completes, and the
        # operator reads the objective, only once the eval.* metrics are logged.
        init_containers.append(trainer)
        containers = [build_evaluate_container(spec, trainer, run_id=run_id, project_dir=project_dir)]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # Pod Security "restricted" (see resources/podsecurity.py), so trials run in namespaces that enforce it.
        "securityContext": pod_security_context(),
        "initContainers": init_containers,
        "containers": containers,
        "volumes": [
            {"name": "workspace", "emptyDir": {}},
            # The sidecar stops acknowledging at 256 MiB buffered (503, the client retries); 1 GiB
            # leaves room for its dead letter and for compacting the log.
            {"name": "tracking-buffer", "emptyDir": {"sizeLimit": BUFFER_SIZE_LIMIT}},
        ],
    }
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = spec.service_account_name
    annotations = {
        ANNOTATION_PARAMETERS: json.dumps(dict(parameters), sort_keys=True),
        ANNOTATION_RUN_ID: run_id,
    }
    if sampler_attrs:
        annotations[ANNOTATION_SAMPLER] = json.dumps(dict(sampler_attrs), sort_keys=True)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "backoffLimit": spec.backoff_limit,
            # Kubernetes' TTL controller deletes the finished Job and its pods; the trial's
            # record is status.trials from then on (resources/trial_record.py).
            "ttlSecondsAfterFinished": spec.trial_job_ttl_seconds,
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }


EVALUATE = "evaluate"
"""The evaluation container's name (``spec.evaluate``)."""


def evaluate_command(spec: ExperimentSpec, *, run_id: str) -> list[str]:
    """``modelship evaluate`` of a trial's model, into the trial's run."""
    ev = spec.evaluate
    if ev is None:
        raise ValueError("the Experiment has no spec.evaluate")
    data = ev.data if ev.data is not None else f"runs:/{run_id}/{str(ev.data_artifact).strip('/')}"
    command = [
        "modelship",
        EVALUATE,
        "--model-uri",
        f"runs:/{run_id}/{ev.artifact_path.strip('/')}",
        "--data",
        data,
        "--targets",
        ev.targets,
        "--model-type",
        ev.model_type,
        "--run-id",
        run_id,
    ]
    for column in ev.sensitive_features or ():
        command += ["--sensitive-feature", column]
    if ev.pos_label is not None:
        command += ["--pos-label", ev.pos_label]
    if not ev.importance:
        command.append("--no-importance")
    return command


def build_evaluate_container(
    spec: ExperimentSpec, trainer: Mapping[str, Any], *, run_id: str, project_dir: str
) -> dict[str, Any]:
    """The container that evaluates the trial's model: the trainer's image, environment,
    mounts and resources (it loads the same model), in the project's directory so that a
    relative ``data`` path is one of the checkout."""
    container: dict[str, Any] = {
        "name": EVALUATE,
        "image": trainer["image"],
        "command": evaluate_command(spec, run_id=run_id),
        "env": [dict(e) for e in trainer["env"]],
        "volumeMounts": [dict(m) for m in trainer["volumeMounts"]],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": dict(trainer["resources"]),
        "securityContext": dict(trainer["securityContext"]),
    }
    if project_dir.startswith("/"):
        container["workingDir"] = project_dir
    return container


def model_version_name(experiment: str, model: str, experiment_uid: str) -> str:
    """A DNS name for the ModelVersion an Experiment registers: ``<exp>-<model>-<uid8>``.

    The uid part keeps a re-created Experiment of the same name from colliding with the
    ModelVersion its predecessor left behind (ModelVersions outlive Experiments).
    """
    model_part = re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-") or "model"
    return shorten(f"{experiment}-{model_part}", f"-{experiment_uid[:8]}")


def build_model_version(
    owner: Owner,
    *,
    model: str,
    run_id: str,
    artifact_path: str,
    objective: str,
    value: float,
    stage: str = "None",
    aliases: Sequence[str] | None = None,
    gates: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ModelVersion of the best run, asking for ``stage`` and ``aliases`` behind ``gates``
    (spec.register's). No ownerReferences: it outlives the Experiment."""
    body: dict[str, Any] = {
        "apiVersion": owner.api_version,
        "kind": "ModelVersion",
        "metadata": {
            "name": model_version_name(owner.name, model, owner.uid),
            "namespace": owner.namespace,
            "labels": {LABEL_EXPERIMENT: label_value(owner.name)},
        },
        "spec": {
            "model": model,
            "source": f"runs:/{run_id}/{artifact_path.strip('/')}",
            "stage": stage,
            "description": f"Best trial of Experiment {owner.namespace}/{owner.name}: {objective}={value:g}.",
            "tags": {
                TAG_EXPERIMENT: tracking_experiment_name(owner.namespace, owner.name),
                "modelship.io/run-id": run_id,
                "modelship.io/objective": f"{objective}={value!r}",
            },
        },
    }
    if aliases:
        body["spec"]["aliases"] = list(aliases)
    if gates:
        body["spec"]["gates"] = [dict(g) for g in gates]
    return body
