"""``modelship run`` against a real tracking server, read back with the real mlflow client."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Run
from tests.integration.projects.servers import Server
from tests.unit.projects.helpers import Repo, git

pytestmark = pytest.mark.integration

IRIS = Path(__file__).resolve().parents[3] / "manifests" / "examples" / "iris"
SUBDIR = "manifests/examples/iris"

PROBE = """
name: probe
entry_points:
  fail:
    parameters: {code: {type: int, default: 3}}
    command: "echo failing; exit {code}"
  wait:
    command: "echo ready; exec sleep 600"
"""


def modelship_run(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelship", "run", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def only_run(client: MlflowClient, experiment: str) -> Run:
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    runs = client.search_runs([found.experiment_id])
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture
def iris_repo(tmp_path: Path, git_identity: None) -> Repo:
    """A git repository holding a copy of the iris example where it sits in ours."""
    repo = Repo(tmp_path / "repo")
    repo.path.mkdir()
    git(repo.path, "init", "-q", "-b", "main")
    shutil.copytree(IRIS, repo.path / SUBDIR, ignore=shutil.ignore_patterns("__pycache__"))
    repo.commit("iris", {})
    return repo


def test_iris(
    tracking_server: Server, run_env: dict[str, str], iris_repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = modelship_run(
        run_env,
        f"{iris_repo.url}#{SUBDIR}",
        "-e",
        "main",
        "-P",
        "C=0.5",
        "-P",
        "solver=newton-cg",
        "--experiment-name",
        "iris-projects",
        "--run-name",
        "iris-0",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "accuracy on the held-out split" in done.stdout  # the script's output came through

    client = MlflowClient(tracking_uri=tracking_server.url)
    run = only_run(client, "iris-projects")
    assert run.info.status == "FINISHED" and run.info.end_time is not None
    assert run.info.run_name == "iris-0"
    tags = run.data.tags
    assert tags["mlflow.source.git.commit"] == iris_repo.commits["iris"]
    assert tags["mlflow.source.git.repoURL"] == iris_repo.url
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.source.name"] == f"{iris_repo.url}#{SUBDIR}"
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.project.entryPoint"] == "main"
    # logged by modelship run and again by train.py: the same text, so MLflow accepted both
    assert {k: run.data.params[k] for k in ("C", "solver", "max_iter")} == {
        "C": "0.5",
        "solver": "newton-cg",
        "max_iter": "200",
    }
    accuracy = run.data.metrics["accuracy"]
    assert 0.0 <= accuracy <= 1.0 and "log_loss" in run.data.metrics
    history = client.get_metric_history(run.info.run_id, "accuracy")
    assert sorted(m.step for m in history) == list(range(1, 11))
    assert max(history, key=lambda m: m.step).value == accuracy

    models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    [model] = [m for m in models if m.source_run_id == run.info.run_id]
    assert model.name == "model"

    import mlflow.pyfunc
    from sklearn.datasets import load_iris

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server.url)  # runs:/ resolves through it
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    features, _ = load_iris(return_X_y=True, as_frame=True)
    predictions = loaded.predict(features.head(10))
    assert len(predictions) == 10 and set(predictions) <= {0, 1, 2}


def test_failure_ends_an_existing_run_failed(tracking_server: Server, run_env: dict[str, str], tmp_path: Path) -> None:
    project = tmp_path / "probe"
    project.mkdir()
    (project / "MLproject").write_text(PROBE)
    client = MlflowClient(tracking_uri=tracking_server.url)
    experiment_id = client.create_experiment("probe-failures")
    made = client.create_run(experiment_id)
    done = modelship_run(
        run_env, str(project), "-e", "fail", "-P", "code=4", "--run-id", made.info.run_id, cwd=tmp_path
    )
    assert done.returncode == 4, done.stderr
    run = client.get_run(made.info.run_id)
    assert run.info.status == "FAILED" and run.info.end_time is not None
    assert run.data.params == {"code": "4"}
    assert run.data.tags["mlflow.project.entryPoint"] == "fail"
    assert len(client.search_runs([experiment_id])) == 1


def test_bad_parameter_creates_no_run(tracking_server: Server, run_env: dict[str, str], tmp_path: Path) -> None:
    project = tmp_path / "probe"
    project.mkdir()
    (project / "MLproject").write_text(PROBE)
    done = modelship_run(
        run_env, str(project), "-e", "fail", "-P", "code=x", "--experiment-name", "probe-bad", cwd=tmp_path
    )
    assert done.returncode == 2
    assert 'entry point "fail": parameter "code" must be an int, got "x"' in done.stderr
    assert MlflowClient(tracking_uri=tracking_server.url).get_experiment_by_name("probe-bad") is None


def test_sigterm_is_forwarded_and_the_run_killed(
    tracking_server: Server, run_env: dict[str, str], tmp_path: Path
) -> None:
    project = tmp_path / "probe"
    project.mkdir()
    (project / "MLproject").write_text(PROBE)
    process = subprocess.Popen(
        [sys.executable, "-m", "modelship", "run", str(project), "-e", "wait", "--experiment-name", "probe-kill"],
        env=run_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        # Wait for the entry point itself to be running, not for a time.
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(signal.SIGTERM)
        code = process.wait(300)  # a guard against a hang, not a time limit
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 128 + signal.SIGTERM, process.stderr.read() if process.stderr else ""
    run = only_run(MlflowClient(tracking_uri=tracking_server.url), "probe-kill")
    assert run.info.status == "KILLED"
