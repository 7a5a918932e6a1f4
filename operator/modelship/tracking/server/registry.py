"""The MLflow Model Registry read API, answered from ModelVersion objects in Kubernetes.

In Modelship the registry lives in the cluster: a ModelVersion object is a registry entry
and its status (version number, effective stage, aliases, resolved artifact location) is
what the operator decided. This router serves that to the real ``mlflow`` client, so
``MlflowClient().get_latest_versions(...)``, ``get_model_version_by_alias(...)`` and
``mlflow.pyfunc.load_model("models:/iris@champion")`` work against Modelship.

Read-only by design: registering or promoting a model is a change to a ModelVersion
(a git commit, or ``modelship promote``), so the write endpoints answer with an error
that says so. The router reads through a :class:`RegistryReader`, so the server runs
without a cluster (the routes are mounted only when a reader is given) and tests pass
a list of objects.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from modelship.tracking import errors
from modelship.tracking.errors import TrackingError
from modelship.tracking.protocol.http import ok, query, query_int
from modelship.tracking.protocol.paths import API

STAGES = ("None", "Staging", "Production", "Archived")


class RegistryReader(Protocol):
    """Where ModelVersion objects come from (as the API server returns them)."""

    scoped: bool
    """True when the objects come from one namespace (model names are then unique)."""

    def list_versions(self) -> list[dict[str, Any]]: ...


class StaticReader:
    """A fixed list of objects (tests, or a snapshot)."""

    def __init__(self, objects: Iterable[Mapping[str, Any]], *, scoped: bool = True) -> None:
        self.objects = [dict(o) for o in objects]
        self.scoped = scoped

    def list_versions(self) -> list[dict[str, Any]]:
        return self.objects


class KubeReader:
    """ModelVersions from the Kubernetes API: one namespace, or all of them.

    A list is cached for ``ttl`` seconds, so a client's burst of calls (load_model makes
    several) costs one list. With all namespaces, a model name found in two namespaces is
    ambiguous and refused with a message that names them.
    """

    def __init__(self, namespace: str | None = None, *, ttl: float = 1.0, kubeconfig: str | None = None) -> None:
        from modelship import kube

        if kubeconfig:
            kube.configure(kubeconfig)
        self.namespace = namespace
        self.scoped = namespace is not None
        self.ttl = ttl
        self._kube = kube
        self._lock = threading.Lock()
        self._cached: tuple[float, list[dict[str, Any]]] | None = None

    def list_versions(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self.ttl:
                return self._cached[1]
            items = self._kube.list_items(self._kube.custom_path(self.namespace, "modelversions"))
            self._cached = (time.monotonic(), items)
            return items


# --- MLflow's JSON shapes -----------------------------------------------------------------------


def _ms(timestamp: str | None) -> int:
    if not timestamp:
        return 0
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


def _last_updated(obj: Mapping[str, Any]) -> int:
    status = obj.get("status") or {}
    times = [_ms(h.get("time")) for h in status.get("stageHistory") or []]
    times += [_ms(c.get("lastTransitionTime")) for c in status.get("conditions") or []]
    return max([_ms(obj["metadata"].get("creationTimestamp")), *times])


def model_version_json(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A ModelVersion object as MLflow's ``ModelVersion`` message."""
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    ready: Mapping[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    state = (
        "READY"
        if ready.get("status") == "True"
        else ("FAILED_REGISTRATION" if ready.get("status") == "False" else "PENDING_REGISTRATION")
    )
    out: dict[str, Any] = {
        "name": spec.get("model"),
        "version": str(status.get("version")),
        "creation_timestamp": _ms(meta.get("creationTimestamp")),
        "last_updated_timestamp": _last_updated(obj),
        "current_stage": status.get("stage") or "None",
        "description": spec.get("description") or "",
        "source": status.get("artifactUri") or spec.get("source"),
        "run_id": status.get("runId") or "",
        "status": state,
        "status_message": ready.get("message") or "",
        "tags": [{"key": k, "value": str(v)} for k, v in sorted((spec.get("tags") or {}).items())],
        "aliases": list(status.get("aliases") or []),
    }
    return out


# --- the pure part: lookups over a list of objects ------------------------------------------------


class Registry:
    """Answers over one listing (pure; the router builds one per request)."""

    def __init__(self, objects: Iterable[Mapping[str, Any]], *, scoped: bool) -> None:
        self.models: dict[str, list[Mapping[str, Any]]] = {}
        self.namespaces: dict[str, set[str]] = {}
        for obj in objects:
            name = (obj.get("spec") or {}).get("model")
            if not name or (obj.get("status") or {}).get("version") is None:
                continue  # not numbered yet: not a registry entry yet
            self.models.setdefault(name, []).append(obj)
            self.namespaces.setdefault(name, set()).add(obj["metadata"].get("namespace") or "")
        for versions in self.models.values():
            versions.sort(key=lambda o: o["status"]["version"])
        self.scoped = scoped

    def versions(self, name: str) -> list[Mapping[str, Any]]:
        if name not in self.models:
            raise TrackingError(f"Registered Model with name={name} not found", errors.RESOURCE_DOES_NOT_EXIST)
        spaces = self.namespaces[name]
        if not self.scoped and len(spaces) > 1:
            raise TrackingError(
                f"Registered model {name!r} exists in namespaces {', '.join(sorted(spaces))}; start the tracking "
                "server with --registry-namespace to choose one",
                errors.INVALID_PARAMETER_VALUE,
            )
        return self.models[name]

    def version(self, name: str, version: str) -> Mapping[str, Any]:
        for obj in self.versions(name):
            if str(obj["status"]["version"]) == str(version):
                return obj
        raise TrackingError(f"Model Version (name={name}, version={version}) not found", errors.RESOURCE_DOES_NOT_EXIST)

    def by_alias(self, name: str, alias: str) -> Mapping[str, Any]:
        for obj in self.versions(name):
            if alias in (obj["status"].get("aliases") or []):
                return obj
        raise TrackingError(f"Registered model alias {alias} not found.", errors.INVALID_PARAMETER_VALUE)

    def latest(self, name: str, stages: list[str] | None) -> list[Mapping[str, Any]]:
        wanted = [s.capitalize() if s.lower() != "none" else "None" for s in stages or []] or list(STAGES)
        latest: dict[str, Mapping[str, Any]] = {}
        for obj in self.versions(name):
            stage = obj["status"].get("stage") or "None"
            if stage in wanted:
                latest[stage] = obj  # ascending: the newest wins
        return sorted(latest.values(), key=lambda o: o["status"]["version"])

    def registered_model(self, name: str) -> dict[str, Any]:
        versions = self.versions(name)
        first = versions[0]
        aliases = [
            {"alias": a, "version": str(o["status"]["version"])}
            for o in versions
            for a in o["status"].get("aliases") or []
        ]
        return {
            "name": name,
            "creation_timestamp": min(_ms(o["metadata"].get("creationTimestamp")) for o in versions),
            "last_updated_timestamp": max(_last_updated(o) for o in versions),
            "description": (first.get("spec") or {}).get("description") or "",
            "latest_versions": [model_version_json(o) for o in self.latest(name, None)],
            "tags": [],
            "aliases": aliases,
        }


_CLAUSE = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:\.(?:`[^`]+`|[A-Za-z0-9_.]+))?)\s*(=|!=|LIKE|ILIKE)\s*(['\"])(.*)\3\s*$",
    re.IGNORECASE,
)


def parse_filter(text: str | None) -> list[tuple[str, str, str]]:
    """``name = 'iris' AND tag.`team` != 'x'`` -> clauses; the subset MLflow clients send
    (MLflow 3 adds ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every model search)."""
    if not text or not text.strip():
        return []
    clauses = []
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE):
        m = _CLAUSE.match(part)
        if not m:
            raise TrackingError(
                f"Unsupported filter clause {part!r}: use name = '...', name LIKE '...', "
                "run_id = '...' or tag.<key> = '...'",
                errors.INVALID_PARAMETER_VALUE,
            )
        key = m.group(1).replace("`", "")
        head, dot, rest = key.partition(".")
        key = f"tag.{rest}" if dot and head.lower() in ("tag", "tags") else key.lower()
        clauses.append((key, m.group(2).upper(), m.group(4)))
    return clauses


def _like(pattern: str, value: str, *, ignore_case: bool) -> bool:
    rx = "^" + "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern) + "$"
    return re.match(rx, value, re.IGNORECASE if ignore_case else 0) is not None


def matches(
    clauses: list[tuple[str, str, str]], fields: Mapping[str, str], tags: Mapping[str, str] | None = None
) -> bool:
    """Whether an entity passes every clause. A tag that is not set is unequal to anything."""
    for key, op, value in clauses:
        if key.startswith("tag."):
            actual: str | None = (tags or {}).get(key[4:])
        elif key in fields:
            actual = fields[key]
        else:
            raise TrackingError(f"Invalid filter key {key!r}", errors.INVALID_PARAMETER_VALUE)
        if op == "=":
            passed = actual == value
        elif op == "!=":
            passed = actual != value
        else:
            passed = actual is not None and _like(value, actual, ignore_case=op == "ILIKE")
        if not passed:
            return False
    return True


def _page(items: list[Any], request: Request, default: int) -> tuple[list[Any], str | None]:
    limit = query_int(request, "max_results") or default
    start = query_int(request, "page_token") or 0
    if limit < 1 or start < 0:
        raise TrackingError(
            "Invalid value for 'max_results' or 'page_token': 'max_results' "
            "must be at least 1, 'page_token' not negative",
            errors.INVALID_PARAMETER_VALUE,
        )
    page = items[start : start + limit]
    return page, (str(start + limit) if start + limit < len(items) else None)


READ_POSTS = frozenset(
    {f"{API}/registered-models/search", f"{API}/registered-models/get-latest-versions", f"{API}/model-versions/search"}
)
"""POSTs of this router that write nothing (a reader without a write token may call them)."""

# --- the router -----------------------------------------------------------------------------------

READ_ONLY = (
    "registered-models/create",
    "registered-models/rename",
    "registered-models/update",
    "registered-models/delete",
    "registered-models/set-tag",
    "registered-models/delete-tag",
    "registered-models/alias",
    "model-versions/create",
    "model-versions/update",
    "model-versions/delete",
    "model-versions/transition-stage",
    "model-versions/set-tag",
    "model-versions/delete-tag",
)


def registry_router(reader: RegistryReader) -> APIRouter:
    """The registry read API over ``reader``."""
    router = APIRouter(tags=["MLflow model registry (from ModelVersion objects)"])

    async def registry() -> Registry:
        return Registry(await run_in_threadpool(reader.list_versions), scoped=reader.scoped)

    async def params(request: Request) -> dict[str, Any]:
        if request.method == "GET":
            out: dict[str, Any] = dict(request.query_params)
            if "stages" in request.query_params:
                out["stages"] = request.query_params.getlist("stages")
            return out
        body = await request.json() if await request.body() else {}
        return dict(body) if isinstance(body, dict) else {}

    @router.get(f"{API}/registered-models/get")
    async def get_registered_model(request: Request) -> Response:
        name = query(request, "name") or ""
        return ok({"registered_model": (await registry()).registered_model(name)})

    @router.api_route(f"{API}/registered-models/search", methods=["GET", "POST"])
    async def search_registered_models(request: Request) -> Response:
        reg, p = await registry(), await params(request)
        clauses = parse_filter(p.get("filter"))
        names = sorted(n for n in reg.models if matches(clauses, {"name": n}))
        page, token = _page(names, request, 100)
        out: dict[str, Any] = {"registered_models": [reg.registered_model(n) for n in page]}
        if token:
            out["next_page_token"] = token
        return ok(out)

    @router.api_route(f"{API}/registered-models/get-latest-versions", methods=["GET", "POST"])
    async def get_latest_versions(request: Request) -> Response:
        p = await params(request)
        if not p.get("name"):
            raise errors.invalid("Missing value for required parameter 'name'.")
        found = (await registry()).latest(str(p["name"]), list(p.get("stages") or []))
        return ok({"model_versions": [model_version_json(o) for o in found]})

    @router.get(f"{API}/registered-models/alias")
    async def get_model_version_by_alias(request: Request) -> Response:
        name, alias = query(request, "name") or "", query(request, "alias") or ""
        return ok({"model_version": model_version_json((await registry()).by_alias(name, alias))})

    @router.get(f"{API}/model-versions/get")
    async def get_model_version(request: Request) -> Response:
        name, version = query(request, "name") or "", query(request, "version") or ""
        return ok({"model_version": model_version_json((await registry()).version(name, version))})

    @router.get(f"{API}/model-versions/get-download-uri")
    async def get_download_uri(request: Request) -> Response:
        name, version = query(request, "name") or "", query(request, "version") or ""
        obj = (await registry()).version(name, version)
        uri = (obj.get("status") or {}).get("artifactUri")
        if not uri:
            raise TrackingError(
                f"Model Version (name={name}, version={version}) has no resolved source yet",
                errors.RESOURCE_DOES_NOT_EXIST,
            )
        return ok({"artifact_uri": uri})

    @router.api_route(f"{API}/model-versions/search", methods=["GET", "POST"])
    async def search_model_versions(request: Request) -> Response:
        reg, p = await registry(), await params(request)
        clauses = parse_filter(p.get("filter"))
        found = [model_version_json(o) for versions in reg.models.values() for o in versions]
        found = [
            mv
            for mv in found
            if matches(
                clauses,
                {"name": mv["name"], "run_id": mv["run_id"], "source_path": mv["source"]},
                {t["key"]: t["value"] for t in mv["tags"]},
            )
        ]
        found.sort(key=lambda mv: (mv["name"], -int(mv["version"])))
        page, token = _page(found, request, 10000)
        out: dict[str, Any] = {"model_versions": page}
        if token:
            out["next_page_token"] = token
        return ok(out)

    def refuse(path: str) -> Callable[[], Any]:
        async def read_only() -> Response:
            raise TrackingError(
                f"{path} is not served: Modelship's registry is ModelVersion objects in Kubernetes. Register or "
                "promote by changing a ModelVersion (git, kubectl apply, or `modelship promote MODEL VERSION "
                "--to STAGE`).",
                errors.INVALID_STATE,
            )

        return read_only

    for path in READ_ONLY:
        router.add_api_route(
            f"{API}/{path}", refuse(path), methods=["POST", "PATCH", "DELETE"], include_in_schema=False
        )
    return router
