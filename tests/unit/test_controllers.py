"""controllers: handler wiring, settings, kopf configuration, metrics and logs; no cluster."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

import kopf
import pytest
from prometheus_client import CollectorRegistry

from modelship.api import GROUP, KINDS, VERSION, ExperimentSpec, ModelVersionSpec, kind_by_name
from modelship.controllers import experiment, main, modeldeployment
from modelship.controllers.common import HANDLER_ID, InvalidSpec, accept_spec
from modelship.controllers.logs import LogfmtFormatter
from modelship.controllers.metrics import ReconcileMetrics, error_reason
from modelship.controllers.settings import OperatorConfig

NOW = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)


def _config(argv: list[str]) -> OperatorConfig:
    parser = argparse.ArgumentParser()
    main.add_arguments(parser)
    return main.config_from_args(parser.parse_args(argv))


# --- registration ----------------------------------------------------------------------


def test_every_kind_has_resume_create_and_update_handlers() -> None:
    registry = main.register_handlers(kopf.OperatorRegistry())
    seen: dict[str, set[str]] = {}
    for handler in registry._changing._handlers:  # kopf has no public iterator over all
        assert handler.id == HANDLER_ID
        assert (handler.selector.group, handler.selector.version) == (GROUP, VERSION)
        reason = "resume" if handler.initial else str(handler.reason.value)
        seen.setdefault(handler.selector.plural, set()).add(reason)
    assert seen == {k.plural: {"resume", "create", "update"} for k in KINDS}


def test_login_and_probe_are_registered() -> None:
    registry = main.register_handlers(kopf.OperatorRegistry())
    ids = {h.id for h in registry._activities._handlers}
    assert {"login_via_client", "version"} <= ids


def test_handler_modules_cover_every_kind() -> None:
    assert {m.KIND.kind for m in main.HANDLER_MODULES} == {k.kind for k in KINDS}


# --- settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        pytest.param(
            [],
            {},
            {
                "namespaces": [],
                "clusterwide": True,
                "liveness_endpoint": "http://127.0.0.1:8080/healthz",
                "metrics_port": 9090,
                "peering_name": None,
                "log_format": "logfmt",
            },
            id="defaults",
        ),
        pytest.param(
            ["-n", "a", "--namespace", "b"], {}, {"namespaces": ["a", "b"], "clusterwide": False}, id="namespaces"
        ),
        pytest.param(
            ["--all-namespaces"],
            {"MODELSHIP_NAMESPACES": "x"},
            {"namespaces": [], "clusterwide": True},
            id="flag-beats-env",
        ),
        pytest.param([], {"MODELSHIP_NAMESPACES": "x, y"}, {"namespaces": ["x", "y"]}, id="env-comma-list"),
        pytest.param(
            ["--health-host", "0.0.0.0", "--liveness-port", "8081"],
            {},
            {"liveness_endpoint": "http://0.0.0.0:8081/healthz"},
            id="liveness",
        ),
        pytest.param(["--liveness-port", "0"], {}, {"liveness_endpoint": None}, id="liveness-off"),
        pytest.param(
            [],
            {"MODELSHIP_METRICS_PORT": "9100", "MODELSHIP_VERBOSE": "true"},
            {"metrics_port": 9100, "verbose": True},
            id="env",
        ),
        pytest.param(
            ["--metrics-port", "9200"], {"MODELSHIP_METRICS_PORT": "9100"}, {"metrics_port": 9200}, id="flag-over-env"
        ),
        pytest.param(
            ["--peering", "modelship", "--priority", "10"],
            {},
            {"peering_name": "modelship", "priority": 10},
            id="peering",
        ),
        pytest.param([], {"MODELSHIP_PEERING_NAME": "p"}, {"peering_name": "p", "priority": None}, id="peering-env"),
    ],
)
def test_config(
    argv: list[str], env: dict[str, str], expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = _config(argv)
    for key, value in expected.items():
        assert getattr(config, key) == value, key


def test_namespace_and_all_namespaces_exclude_each_other() -> None:
    with pytest.raises(SystemExit):
        _config(["-n", "a", "-A"])


def test_every_setting_is_documented() -> None:
    from pathlib import Path

    text = Path(main.__file__).with_name("settings.py").read_text()
    for name in OperatorConfig.model_fields:
        block = text.split(f"    {name}:", 1)[1]
        assert block.split("\n", 1)[1].lstrip().startswith('"""'), f"{name} needs a docstring"


@pytest.mark.parametrize(
    ("argv", "standalone", "mandatory", "name", "clusterwide"),
    [
        ([], True, False, "default", True),
        (["-n", "ns"], True, False, "default", False),
        (["--peering", "modelship"], False, True, "modelship", True),
    ],
)
def test_kopf_settings(argv: list[str], standalone: bool, mandatory: bool, name: str, clusterwide: bool) -> None:
    settings = main.build_kopf_settings(_config(argv))
    assert settings.peering.standalone is standalone
    assert settings.peering.mandatory is mandatory
    assert settings.peering.name == name
    assert settings.peering.clusterwide is clusterwide
    assert settings.persistence.finalizer == "modelship.io/finalizer"
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert settings.persistence.progress_storage.prefix == "modelship.io"
    assert settings.persistence.diffbase_storage.prefix == "modelship.io"  # type: ignore[attr-defined]
    assert settings.persistence.diffbase_storage.key == "last-handled-configuration"  # type: ignore[attr-defined]
    assert settings.posting.level == logging.WARNING and settings.posting.loggers is True
    assert settings.watching.server_timeout == 300
    assert settings.watching.client_timeout and settings.watching.client_timeout > 300


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], 0),
        (["--priority", "5"], 5),
        (["--peering", "p", "--priority", "7"], 7),
        (["--peering", "p"], "random"),
    ],
)
def test_peering_priority(argv: list[str], expected: int | str) -> None:
    import random

    config = _config(argv)
    if expected == "random":
        # kopf pauses every replica of equal priority: replicas must draw distinct ones
        draws = {main.peering_priority(config, random.Random(seed)) for seed in range(5)}
        assert len(draws) == 5 and all(d >= 1 for d in draws)
    else:
        assert main.peering_priority(config) == expected


# --- handlers --------------------------------------------------------------------------


def _body(spec: Any, generation: int = 1, status: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "x", "namespace": "ns", "generation": generation}}
    if spec is not None:
        body["spec"] = spec
    if status is not None:
        body["status"] = status
    return body


def test_accept_spec_writes_status_and_returns_the_model() -> None:
    patch = kopf.Patch()
    spec = accept_spec(
        kind_by_name("ModelVersion"),
        ModelVersionSpec,
        _body({"model": "iris", "source": "runs:/a/m"}, 3),
        patch,
        now=NOW,
    )
    assert spec.model == "iris"
    status = dict(patch)["status"]
    assert status["observedGeneration"] == 3
    assert status["conditions"] == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Accepted",
            "message": "The ModelVersion spec is valid and accepted.",
            "lastTransitionTime": "2026-02-03T04:05:06Z",
            "observedGeneration": 3,
        }
    ]


def test_accept_spec_refuses_permanently_after_writing_status() -> None:
    patch = kopf.Patch()
    with pytest.raises(InvalidSpec) as caught:
        accept_spec(
            kind_by_name("Experiment"),
            ExperimentSpec,
            _body({"project": {"image": "i"}, "parameters": {"a": [1]}}),
            patch,
            now=NOW,
        )
    assert isinstance(caught.value, kopf.PermanentError)
    assert "spec.parameters.a" in str(caught.value)
    (ready,) = dict(patch)["status"]["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert ready["message"] == str(caught.value)


def test_accept_spec_skips_the_patch_when_status_already_says_so() -> None:
    first = kopf.Patch()
    body = _body({"model": "iris", "source": "runs:/a/m"}, 2)
    accept_spec(kind_by_name("ModelVersion"), ModelVersionSpec, body, first, now=NOW)
    again = kopf.Patch()
    accept_spec(
        kind_by_name("ModelVersion"), ModelVersionSpec, {**body, "status": dict(first)["status"]}, again, now=NOW
    )
    assert not again


@pytest.mark.parametrize(
    ("module", "spec"),
    [
        (experiment, {"project": {"git": {"url": "https://example.com/x.git"}}}),
        # modelversion writes status through the registry's per-model writer; its
        # reconcile is tested with that writer faked in tests/unit/registry/. The
        # ModelDeployment's Ready means serving: below, and on the bed.
    ],
)
def test_each_kind_accepts_and_counts(module: Any, spec: dict[str, Any]) -> None:
    kind = module.KIND.kind
    before = _sample("modelship_reconcile_total", kind=kind, result="success")
    patch = kopf.Patch()
    asyncio.run(module.reconcile(body=_body(spec), patch=patch, logger=logging.getLogger("test")))
    assert dict(patch)["status"]["conditions"][0]["reason"] == "Accepted"
    assert _sample("modelship_reconcile_total", kind=kind, result="success") == before + 1


def test_a_model_deployment_without_a_tracking_server_says_which_flag_is_missing() -> None:
    kind = modeldeployment.KIND.kind
    before = _sample("modelship_reconcile_total", kind=kind, result="success")
    patch = kopf.Patch()
    spec = {"model": "iris", "variants": [{"name": "a", "stage": "Production"}]}
    asyncio.run(
        modeldeployment.reconcile(
            body=_body(spec), patch=patch, logger=logging.getLogger("test"), memo=kopf.Memo(config=OperatorConfig())
        )
    )
    status = dict(patch)["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (status["phase"], ready["status"], ready["reason"]) == ("Degraded", "False", "NoTrackingServer")
    assert "--tracking-url" in status["message"]
    assert _sample("modelship_reconcile_total", kind=kind, result="success") == before + 1


def test_an_invalid_spec_counts_as_a_permanent_error() -> None:
    labels = {"kind": "ModelDeployment"}
    before = _sample("modelship_reconcile_errors_total", reason="InvalidSpec", **labels)
    with pytest.raises(kopf.PermanentError):
        asyncio.run(
            modeldeployment.reconcile(
                body=_body({"model": "iris"}),
                patch=kopf.Patch(),
                logger=logging.getLogger("t"),
                memo=kopf.Memo(config=OperatorConfig()),
            )
        )
    assert _sample("modelship_reconcile_errors_total", reason="InvalidSpec", **labels) == before + 1
    assert _sample("modelship_reconcile_total", result="permanent_error", **labels) >= 1


def _sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- metrics ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "result", "reason"),
    [
        (None, "success", None),
        (InvalidSpec("bad"), "permanent_error", "InvalidSpec"),
        (kopf.PermanentError("x"), "permanent_error", "PermanentError"),
        (kopf.TemporaryError("later", delay=1), "temporary_error", "TemporaryError"),
        (RuntimeError("boom"), "error", "RuntimeError"),
    ],
)
def test_measured(raised: BaseException | None, result: str, reason: str | None) -> None:
    registry = CollectorRegistry()
    metrics = ReconcileMetrics(registry)

    @metrics.measured("Experiment")
    async def handler() -> str:
        if raised is not None:
            raise raised
        return "done"

    if raised is None:
        assert asyncio.run(handler()) == "done"
    else:
        with pytest.raises(type(raised)):
            asyncio.run(handler())
    assert registry.get_sample_value("modelship_reconcile_total", {"kind": "Experiment", "result": result}) == 1
    assert registry.get_sample_value("modelship_reconcile_duration_seconds_count", {"kind": "Experiment"}) == 1
    errors = registry.get_sample_value(
        "modelship_reconcile_errors_total", {"kind": "Experiment", "reason": reason or ""}
    )
    assert errors == (1 if reason else None)
    assert handler.__name__ == "handler"


def test_error_reason() -> None:
    assert error_reason(InvalidSpec("x")) == "InvalidSpec"
    assert error_reason(ValueError("x")) == "ValueError"


# --- logs ------------------------------------------------------------------------------


def test_logfmt_line_carries_the_object() -> None:
    record = logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, 'Handler "reconcile" succeeded', (), None)
    record.k8s_ref = {"kind": "Experiment", "namespace": "ns", "name": "iris", "uid": "u"}
    record.k8s_skip = False
    record.trial = 3
    line = LogfmtFormatter().format(record)
    fields = dict(part.split("=", 1) for part in line.split(" ", 3)[:3])
    assert fields["level"] == "info"
    assert fields["logger"] == "kopf.objects"
    assert "kind=Experiment namespace=ns name=iris" in line
    assert 'msg="Handler \\"reconcile\\" succeeded"' in line
    assert line.endswith("trial=3")
    assert "k8s_skip" not in line and "uid" not in line
    assert "\n" not in line


def test_json_is_kopfs_own() -> None:
    from modelship.controllers.logs import configure_logging

    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        configure_logging("json", verbose=False)
        handler = next(h for h in root.handlers if type(h).__name__ == "_KopfStreamHandler")
        record = logging.LogRecord("kopf.objects", logging.WARNING, __file__, 1, "hello", (), None)
        record.k8s_ref = {"kind": "ModelVersion", "name": "v"}
        payload = json.loads(handler.formatter.format(record))  # type: ignore[union-attr]
        assert payload["message"] == "hello" and payload["object"]["kind"] == "ModelVersion"
    finally:
        root.handlers[:], root.level = saved


def test_requests_of_the_http_client_are_not_logged_line_by_line() -> None:
    """httpx logs every request at INFO, URL and query included (a run id, a token in a
    query, a model server's address each tick): the operator's log keeps its warnings only."""
    import http.server
    import threading

    import httpx

    from modelship.controllers.logs import configure_logging

    class Quiet(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    records: list[logging.LogRecord] = []
    catcher = logging.Handler()
    catcher.emit = records.append  # type: ignore[method-assign]
    try:
        configure_logging("logfmt", verbose=False)
        root.addHandler(catcher)
        url = f"http://127.0.0.1:{server.server_address[1]}/api/2.0/mlflow/runs/get?run_id=r1"
        assert httpx.get(url).status_code == 200
        logging.getLogger("httpx").warning("a warning still passes")
    finally:
        root.handlers[:], root.level = saved
        server.shutdown()
    said = [r.getMessage() for r in records if r.name.startswith(("httpx", "httpcore"))]
    assert said == ["a warning still passes"], said


def test_metrics_endpoint_serves_the_registry() -> None:
    import socket
    import urllib.request

    from modelship.controllers.metrics import serve_metrics

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    registry = CollectorRegistry()
    metrics = ReconcileMetrics(registry)
    metrics.reconciles.labels(kind="ModelVersion", result="success").inc()
    server = serve_metrics("127.0.0.1", port, registry)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
    assert 'modelship_reconcile_total{kind="ModelVersion",result="success"} 1.0' in text
    assert "_created" not in text


# --- layering --------------------------------------------------------------------------


def test_importing_the_controllers_registers_nothing_globally() -> None:
    """Handlers go on the registry main.register_handlers is given, never on kopf's default."""
    registry = kopf.get_default_registry()
    ours = [h for h in registry._changing._handlers if h.selector.group == GROUP]
    assert not ours


def test_resources_are_pure() -> None:
    """resources/ imports nothing that does I/O and never reads the clock itself."""
    import ast
    from pathlib import Path

    import modelship.resources

    forbidden = {"kopf", "kubernetes", "httpx", "requests", "socket", "subprocess", "os", "urllib", "aiohttp"}
    package = Path(modelship.resources.__file__).parent
    problems = []
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            # urllib.parse only splits strings (the webhooks redact receiver URLs with it); the
            # rest of urllib opens connections.
            problems += [
                f"{path.name} imports {n}" for n in names if n.split(".")[0] in forbidden and n != "urllib.parse"
            ]
            if isinstance(node, ast.Attribute) and node.attr in {"now", "utcnow", "today"}:
                problems.append(f"{path.name}:{node.lineno} reads the clock; take `now` as a parameter")
    assert not problems, problems


def test_a_model_deployment_that_allows_pickle_is_refused_where_the_operator_forbids_it() -> None:
    patch = kopf.Patch()
    spec = {"model": "iris", "allowPickle": True, "variants": [{"name": "a", "stage": "Production"}]}
    config = OperatorConfig(tracking_url="http://tracking:5000", forbid_pickle=True)
    asyncio.run(
        modeldeployment.reconcile(
            body=_body(spec), patch=patch, logger=logging.getLogger("test"), memo=kopf.Memo(config=config)
        )
    )
    status = dict(patch)["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (status["phase"], ready["reason"]) == ("Degraded", "PickleForbidden")
    assert "spec.allowPickle" in status["message"] and "--forbid-pickle" in status["message"]
