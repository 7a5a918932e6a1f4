"""``modelship run``: run an entry point of a project against a tracking server.

The order follows ``mlflow run --env-manager local``: fetch the project, resolve the entry
point and its parameters (a bad request fails here, before any run exists), create the
tracking run (or take over the one given), tag it and log its parameters, run the
command with ``bash -c`` in the project directory, and end the run by the exit code.
"""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from modelship.projects.render import ResolvedCommand, render_command
from modelship.projects.source import ProjectSource, fetch
from modelship.projects.spec import Project, ProjectError, load_project
from modelship.tracking.client import TrackingClient

ENV_MANAGERS = ("local",)


@dataclass(frozen=True)
class RunInfo:
    """What the runner needs to know about a tracking run."""

    run_id: str
    experiment_id: str
    status: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def run_info(run: Mapping[str, Any]) -> RunInfo:
    """A run in MLflow's JSON shape, as the runner reads it."""
    info, data = run.get("info", {}), run.get("data", {})
    return RunInfo(
        run_id=str(info.get("run_id") or info.get("run_uuid")),
        experiment_id=str(info.get("experiment_id")),
        status=str(info.get("status", "RUNNING")),
        params=_pairs(data.get("params", [])),
        tags=_pairs(data.get("tags", [])),
    )


def _pairs(items: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    return {str(i["key"]): str(i.get("value", "")) for i in items}


@dataclass(frozen=True)
class RunRequest:
    """What ``modelship run`` was asked to do."""

    uri: str
    entry_point: str = "main"
    parameters: dict[str, str] = field(default_factory=dict)
    version: str | None = None
    experiment_name: str | None = None
    experiment_id: str | None = None
    run_id: str | None = None
    run_name: str | None = None
    env_manager: str = "local"


def run_project(
    request: RunRequest,
    client: TrackingClient,
    *,
    environ: Mapping[str, str] = os.environ,
    cwd: str | None = None,
    log: TextIO = sys.stderr,
) -> int:
    """Run ``request`` and return the command's exit code (128+N when killed by signal N)."""
    if request.env_manager not in ENV_MANAGERS:
        raise ProjectError(
            f"--env-manager {request.env_manager} is not supported: modelship runs the entry point "
            "in the current environment (local); in Kubernetes the trainer image is the environment"
        )
    with tempfile.TemporaryDirectory(prefix="modelship-run-") as workdir:
        source = fetch(request.uri, version=request.version, workdir=Path(workdir))
        project = load_project(source.directory)
        for warning in project.warnings:
            print(f"modelship run: warning: {warning}", file=log)
        _note_environment(project, log)
        resolved = render_command(
            project.entry_point(request.entry_point), request.parameters, path_base=cwd or os.getcwd()
        )
        for name, path in resolved.local_paths.items():
            if not os.path.exists(path):
                raise ProjectError(
                    f'entry point "{resolved.entry_point}": parameter "{name}" names {path!r}, which does not exist'
                )
        run = _start_run(request, client, source, resolved, environ)
        print(
            f"=== Running command {resolved.command!r} in run with ID {run.run_id!r} ===",
            file=log,
            flush=True,
        )
        env = {
            **environ,
            "MLFLOW_RUN_ID": run.run_id,
            "MLFLOW_TRACKING_URI": client.uri,
            "MLFLOW_EXPERIMENT_ID": run.experiment_id,
        }
        env.pop("MLFLOW_EXPERIMENT_NAME", None)  # the run's experiment wins; the two may disagree
        try:
            code, killed = _execute(resolved.command, source.directory, env)
        except BaseException:
            client.set_terminated(run.run_id, "FAILED")
            raise
        status = "FINISHED" if code == 0 else "KILLED" if killed else "FAILED"
        client.set_terminated(run.run_id, status)
        verdict = "succeeded" if code == 0 else f"ended {status} (exit code {code})"
        print(f"=== Run (ID {run.run_id!r}) {verdict} ===", file=log, flush=True)
        return code


def project_tags(source: ProjectSource, entry_point: str, user: str | None) -> dict[str, str]:
    """The tags MLflow puts on a project run, for the backend ``local``."""
    tags = {
        "mlflow.source.name": source.source_name,
        "mlflow.source.type": "PROJECT",
        "mlflow.project.entryPoint": entry_point,
        "mlflow.project.env": "local",
        "mlflow.project.backend": "local",
    }
    if user:
        tags["mlflow.user"] = user
    if source.commit:
        tags["mlflow.source.git.commit"] = source.commit
    if source.repo_url:
        tags["mlflow.source.git.repoURL"] = source.repo_url
    if source.branch:
        tags["mlflow.source.git.branch"] = source.branch
    return tags


def _start_run(
    request: RunRequest,
    client: TrackingClient,
    source: ProjectSource,
    resolved: ResolvedCommand,
    environ: Mapping[str, str],
) -> RunInfo:
    user = _user(environ)
    tags = project_tags(source, resolved.entry_point, user)
    run_id = request.run_id or environ.get("MLFLOW_RUN_ID")
    if run_id:
        run = run_info(client.get_run(run_id))
        clashes = {k: v for k, v in resolved.parameters.items() if k in run.params and run.params[k] != v}
        if clashes:
            shown = ", ".join(f'"{k}" is "{run.params[k]}", asked for "{v}"' for k, v in clashes.items())
            raise ProjectError(f"run {run_id} already has different parameter values: {shown}")
        new_params = {k: v for k, v in resolved.parameters.items() if k not in run.params}
        if request.run_name:
            tags["mlflow.runName"] = request.run_name
        client.log_batch(run.run_id, params=new_params, tags=tags)
        client.update_run(run.run_id, "RUNNING")
        return run
    experiment_id = _experiment_id(request, client, environ)
    run = RunInfo(
        client.create_run(experiment_id, tags=tags, run_name=request.run_name, user=user), experiment_id, "RUNNING"
    )
    try:
        client.log_batch(run.run_id, params=resolved.parameters)
    except BaseException:
        client.set_terminated(run.run_id, "FAILED")
        raise
    return run


def _experiment_id(request: RunRequest, client: TrackingClient, environ: Mapping[str, str]) -> str:
    if request.experiment_id:
        return request.experiment_id
    if request.experiment_name:
        return client.get_or_create_experiment(request.experiment_name)
    if environ.get("MLFLOW_EXPERIMENT_ID"):
        return environ["MLFLOW_EXPERIMENT_ID"]
    if environ.get("MLFLOW_EXPERIMENT_NAME"):
        return client.get_or_create_experiment(environ["MLFLOW_EXPERIMENT_NAME"])
    return "0"  # MLflow's Default experiment


def _execute(command: str, directory: Path, env: Mapping[str, str]) -> tuple[int, bool]:
    """Run ``command``, its output going straight to ours; forward SIGTERM and SIGINT to it.

    The command gets a process group of its own so that a signal reaches the training
    script and whatever it started, not only bash. Returns (exit code, killed by us).
    """
    received: list[int] = []
    started: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if started:
            _signal_group(started[0], signum)

    # Handlers go in before the command starts: a signal that arrives between the two
    # would otherwise kill us with the default action and leave the run RUNNING.
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, forward)
    try:
        process = subprocess.Popen(["bash", "-c", command], cwd=directory, env=dict(env), start_new_session=True)
        started.append(process)
        if received:
            _signal_group(process, received[-1])
        code = process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return (128 - code if code < 0 else code), bool(received)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def _note_environment(project: Project, log: TextIO) -> None:
    env = project.environment
    if env.kind == "docker":
        print(
            f"modelship run: the MLproject's docker_env image {env.image} is not used: the entry "
            "point runs in the current environment (in Kubernetes, spec.project.image)",
            file=log,
        )
    elif env.kind in ("python", "conda"):
        print(
            f"modelship run: using the current environment; {env.file} is not installed (--env-manager local)",
            file=log,
        )


def _user(environ: Mapping[str, str]) -> str | None:
    try:
        return environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return None
