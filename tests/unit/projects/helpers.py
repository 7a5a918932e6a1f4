"""Helpers shared by the projects tests (unit and integration): git repositories on disk and
an in-memory tracking server."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class Repo:
    """A repository on disk with a few commits; ``url`` is its file:// URL."""

    path: Path
    commits: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def commit(self, label: str, files: dict[str, str]) -> str:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", label)
        self.commits[label] = git(self.path, "rev-parse", "HEAD")
        return self.commits[label]


@dataclass
class FakeTracking:
    """Just enough of the MLflow REST API, in memory, behind an httpx.MockTransport."""

    experiments: dict[str, str] = field(default_factory=lambda: {"Default": "0"})
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/2.0/mlflow")
        self.calls.append((request.method, path))
        body = json.loads(request.content) if request.content else {}
        query = dict(request.url.params)
        if path == "/experiments/get-by-name":
            name = query["experiment_name"]
            if name not in self.experiments:
                return _error(404, "RESOURCE_DOES_NOT_EXIST", f"no experiment {name}")
            return httpx.Response(200, json={"experiment": {"experiment_id": self.experiments[name], "name": name}})
        if path == "/experiments/create":
            self.experiments[body["name"]] = str(len(self.experiments))
            return httpx.Response(200, json={"experiment_id": self.experiments[body["name"]]})
        if path == "/runs/create":
            run_id = f"run{len(self.runs)}"
            self.runs[run_id] = {
                "experiment_id": body["experiment_id"],
                "status": "RUNNING",
                "tags": {t["key"]: t["value"] for t in body.get("tags", [])},
                "params": {},
                "run_name": body.get("run_name"),
                "ended": False,
            }
            return httpx.Response(200, json={"run": self._run_json(run_id)})
        run_id = body.get("run_id") or query.get("run_id", "")
        if run_id not in self.runs:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"no run {run_id}")
        run = self.runs[run_id]
        if path == "/runs/get":
            return httpx.Response(200, json={"run": self._run_json(run_id)})
        if path == "/runs/log-batch":
            for p in body.get("params", []):
                if run["params"].get(p["key"], p["value"]) != p["value"]:
                    return _error(400, "INVALID_PARAMETER_VALUE", f"changing param {p['key']}")
                run["params"][p["key"]] = p["value"]
            run["tags"].update({t["key"]: t["value"] for t in body.get("tags", [])})
            return httpx.Response(200, json={})
        if path == "/runs/update":
            run["status"] = body["status"]
            run["ended"] = "end_time" in body
            return httpx.Response(200, json={"run_info": {}})
        return _error(404, "ENDPOINT_NOT_FOUND", path)

    def _run_json(self, run_id: str) -> dict[str, Any]:
        run = self.runs[run_id]
        return {
            "info": {"run_id": run_id, "experiment_id": run["experiment_id"], "status": run["status"]},
            "data": {
                "params": [{"key": k, "value": v} for k, v in run["params"].items()],
                "tags": [{"key": k, "value": v} for k, v in run["tags"].items()],
            },
        }


def _error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error_code": code, "message": message})
