"""``modelship run`` end to end against the in-memory tracking server, with real bash."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.unit.projects.helpers import FakeTracking, Repo, git

from modelship.cli import main
from modelship.projects.cli import parse_params
from modelship.projects.runner import RunRequest, run_project
from modelship.projects.spec import ProjectError
from modelship.tracking.client import TrackingClient

MLPROJECT = """
name: probe
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      data: {type: path, default: data.csv}
    command: >-
      printf '%s\\n' "$MLFLOW_RUN_ID" "$MLFLOW_EXPERIMENT_ID" "$MLFLOW_TRACKING_URI" {alpha} {data} "$PWD" > out.txt
  fail:
    command: "echo failing; exit 3"
"""


def write_project(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "MLproject").write_text(MLPROJECT)
    (directory / "data.csv").write_text("x\n1\n")
    (directory / "script.sh").write_text('printf "%s\\n" "$@" > out.txt\n')
    return directory


def recorded(directory: Path) -> list[str]:
    return (directory / "out.txt").read_text().splitlines()


def run(client: TrackingClient, request: RunRequest, tmp_path: Path, **environ: str) -> int:
    return run_project(
        request, client, environ={"PATH": "/usr/bin:/bin", **environ}, cwd=str(tmp_path), log=io.StringIO()
    )


def test_local_directory(tmp_path: Path, tracking_client: TrackingClient, fake_tracking: FakeTracking) -> None:
    project = write_project(tmp_path / "project")
    code = run(tracking_client, RunRequest(str(project), parameters={"alpha": "2", "seed": "7"}), tmp_path)
    assert code == 0
    [(run_id, stored)] = fake_tracking.runs.items()
    assert stored["status"] == "FINISHED" and stored["ended"] and stored["experiment_id"] == "0"
    assert stored["params"] == {"alpha": "2.0", "data": "data.csv", "seed": "7"}
    tags = stored["tags"]
    assert tags["mlflow.source.name"] == str(project)
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.project.env"] == "local" and tags["mlflow.project.backend"] == "local"
    assert "mlflow.source.git.commit" not in tags
    # the extra parameter is appended to the command as --seed 7
    assert recorded(project) == [run_id, "0", "http://tracking.test", "2.0", "data.csv", str(project), "--seed", "7"]


def test_git_url_with_subdirectory_and_version(
    tmp_path: Path, make_repo: Callable[[str], Repo], tracking_client: TrackingClient, fake_tracking: FakeTracking
) -> None:
    repo = make_repo("origin")
    write_project(repo.path / "examples" / "probe")
    commit = repo.commit("project", {})
    git(repo.path, "checkout", "-q", "-b", "later")
    repo.commit("later", {"examples/probe/later.txt": "x"})
    request = RunRequest(f"{repo.url}#examples/probe", version="main", experiment_name="probes")
    assert run(tracking_client, request, tmp_path) == 0
    [stored] = fake_tracking.runs.values()
    assert stored["experiment_id"] == fake_tracking.experiments["probes"]
    tags = stored["tags"]
    assert tags["mlflow.source.git.commit"] == commit
    assert tags["mlflow.source.git.repoURL"] == repo.url
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.source.name"] == f"{repo.url}#examples/probe"
    # the clone was made in a temporary directory, and removed with it
    assert not (repo.path / "examples" / "probe" / "out.txt").exists()


def test_local_clone_in_place_names_its_remote(
    tmp_path: Path, make_repo: Callable[[str], Repo], tracking_client: TrackingClient, fake_tracking: FakeTracking
) -> None:
    repo = make_repo("clone")
    write_project(repo.path / "sub")
    commit = repo.commit("project", {})
    git(repo.path, "remote", "add", "origin", "https://someone:secret@git.example/team/repo.git")
    assert run(tracking_client, RunRequest(str(repo.path / "sub")), tmp_path) == 0
    [stored] = fake_tracking.runs.values()
    assert stored["tags"]["mlflow.source.git.commit"] == commit
    assert stored["tags"]["mlflow.source.git.repoURL"] == "https://git.example/team/repo.git"
    assert stored["tags"]["mlflow.source.name"] == "https://git.example/team/repo.git#sub"
    assert recorded(repo.path / "sub")[5] == str(repo.path / "sub")


def test_failing_command(
    tmp_path: Path, tracking_client: TrackingClient, fake_tracking: FakeTracking, capfd: pytest.CaptureFixture[str]
) -> None:
    project = write_project(tmp_path / "project")
    assert run(tracking_client, RunRequest(str(project), entry_point="fail"), tmp_path) == 3
    [stored] = fake_tracking.runs.values()
    assert stored["status"] == "FAILED" and stored["ended"]
    assert "failing" in capfd.readouterr().out  # the command's output is passed through


def test_script_entry_point(tmp_path: Path, tracking_client: TrackingClient, fake_tracking: FakeTracking) -> None:
    project = write_project(tmp_path / "project")
    request = RunRequest(str(project), entry_point="script.sh", parameters={"n": "1", "name": "a b"})
    assert run(tracking_client, request, tmp_path) == 0
    assert recorded(project) == ["--n", "1", "--name", "a b"]
    [stored] = fake_tracking.runs.values()
    assert stored["params"] == {"n": "1", "name": "a b"}
    assert stored["tags"]["mlflow.project.entryPoint"] == "script.sh"


def test_existing_run_is_taken_over(
    tmp_path: Path, tracking_client: TrackingClient, fake_tracking: FakeTracking
) -> None:
    project = write_project(tmp_path / "project")
    made = tracking_client.create_run("0", tags={"from": "operator"})
    tracking_client.log_batch(made, params={"alpha": "0.25"})
    tracking_client.update_run(made, "SCHEDULED")
    request = RunRequest(str(project), parameters={"alpha": "0.25"}, run_name="trial-0")
    assert run(tracking_client, request, tmp_path, MLFLOW_RUN_ID=made) == 0
    assert list(fake_tracking.runs) == [made]
    stored = fake_tracking.runs[made]
    assert stored["status"] == "FINISHED"
    assert stored["params"] == {"alpha": "0.25", "data": "data.csv"}
    assert stored["tags"]["from"] == "operator" and stored["tags"]["mlflow.runName"] == "trial-0"
    assert stored["tags"]["mlflow.source.type"] == "PROJECT"
    assert recorded(project)[0] == made


def test_existing_run_with_other_parameters_is_refused(
    tmp_path: Path, tracking_client: TrackingClient, fake_tracking: FakeTracking
) -> None:
    project = write_project(tmp_path / "project")
    made = tracking_client.create_run("0", tags={})
    tracking_client.log_batch(made, params={"alpha": "0.25"})
    with pytest.raises(ProjectError, match='"alpha" is "0.25", asked for "0.5"'):
        run(tracking_client, RunRequest(str(project), run_id=made), tmp_path)
    assert not (project / "out.txt").exists()


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            RunRequest("PROJECT", parameters={"alpha": "abc"}),
            'entry point "main": parameter "alpha" must be a float, got "abc"',
        ),
        (
            RunRequest("PROJECT", entry_point="train"),
            'unknown entry point "train": the project declares "main", "fail"',
        ),
        (RunRequest("PROJECT", parameters={"data": "missing.csv"}), 'parameter "data" names'),
        (RunRequest("PROJECT", env_manager="conda"), "--env-manager conda is not supported"),
        (RunRequest("PROJECT#../up"), "must be relative and inside the repository"),
        (RunRequest("PROJECT/nowhere"), "is neither a directory nor a git URL"),
        (RunRequest("PROJECT", version="main"), "--version needs a git repository"),
    ],
)
def test_bad_requests_fail_before_any_run(
    tmp_path: Path, tracking_client: TrackingClient, fake_tracking: FakeTracking, request_: RunRequest, message: str
) -> None:
    project = write_project(tmp_path / "project")
    request = RunRequest(**{**request_.__dict__, "uri": request_.uri.replace("PROJECT", str(project))})
    with pytest.raises(ProjectError) as info:
        run(tracking_client, request, tmp_path)
    assert message in str(info.value)
    assert fake_tracking.runs == {}


@pytest.mark.parametrize(
    ("environ", "experiment"),
    [({}, "0"), ({"MLFLOW_EXPERIMENT_ID": "5"}, "5"), ({"MLFLOW_EXPERIMENT_NAME": "from-env"}, "1")],
)
def test_experiment_from_the_environment(
    tmp_path: Path,
    tracking_client: TrackingClient,
    fake_tracking: FakeTracking,
    environ: dict[str, str],
    experiment: str,
) -> None:
    project = write_project(tmp_path / "project")
    assert run(tracking_client, RunRequest(str(project)), tmp_path, **environ) == 0
    [stored] = fake_tracking.runs.values()
    assert stored["experiment_id"] == experiment
    assert recorded(project)[1] == experiment


@pytest.mark.parametrize(
    ("pairs", "params"),
    [([], {}), (["a=1", "b=x=y", "c="], {"a": "1", "b": "x=y", "c": ""})],
)
def test_parse_params(pairs: list[str], params: dict[str, str]) -> None:
    assert parse_params(pairs) == params


@pytest.mark.parametrize(
    ("pairs", "message"),
    [(["a"], "expected KEY=VALUE"), (["=1"], "expected KEY=VALUE"), (["a=1", "a=2"], "more than once")],
)
def test_parse_params_refused(pairs: list[str], message: str) -> None:
    with pytest.raises(ProjectError, match=message):
        parse_params(pairs)


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["-e", "nope"], 2, 'unknown entry point "nope"'),
        (["-P", "alpha=x"], 2, 'parameter "alpha" must be a float, got "x"'),
        (["-P", "alpha"], 2, "expected KEY=VALUE"),
        (["--experiment-name", "a", "--experiment-id", "1"], 2, "not both"),
        (["--tracking-uri", "file:///tmp/mlruns"], 1, "must be an http(s) URL"),
    ],
)
def test_cli_exit_codes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    message: str,
) -> None:
    # Nothing listens on the discard port; every case fails before the first request.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    project = write_project(tmp_path / "project")
    assert main(["run", str(project), *argv]) == code
    assert message in capsys.readouterr().err


def test_local_subdirectory_with_a_version_clones_the_repository(
    tmp_path: Path, make_repo: Callable[[str], Repo], tracking_client: TrackingClient, fake_tracking: FakeTracking
) -> None:
    repo = make_repo("work")
    write_project(repo.path / "examples" / "probe")
    commit = repo.commit("project", {})
    (repo.path / "examples" / "probe" / "MLproject").write_text("not: [committed")  # ignored: main is cloned
    request = RunRequest(f"{repo.path / 'examples'}#probe", version="main", parameters={"alpha": "3"})
    assert run(tracking_client, request, tmp_path) == 0
    [stored] = fake_tracking.runs.values()
    assert stored["tags"]["mlflow.source.git.commit"] == commit
    assert stored["tags"]["mlflow.source.name"] == f"{repo.path}#examples/probe"
    assert stored["params"]["alpha"] == "3.0"
