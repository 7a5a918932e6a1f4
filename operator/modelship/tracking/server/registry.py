"""The MLflow Model Registry API, answered from ModelVersion and RegisteredModel objects.

In Modelship the registry lives in the cluster: a ModelVersion object is a registry entry
and its status (version number, effective stage, aliases, resolved artifact location) is
what the operator decided; a RegisteredModel (optional) holds a model's description and
tags. This router serves that to the real ``mlflow`` client, so
``MlflowClient().get_latest_versions(...)``, ``get_model_version_by_alias(...)`` and
``mlflow.pyfunc.load_model("models:/iris@champion")`` work against Modelship.

Reads are here; the write API (``mlflow.register_model``, transitions, aliases, tags) is
in :mod:`registry_write`, which turns each call into the spec change a user would make.
Without a writer (``--no-registry-writes``) the write endpoints answer an error that says
how to change the registry instead. The router reads through a :class:`RegistryReader`,
so tests pass a list of objects.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from modelship.resources.registry_api import CREATED_MS_ANNOTATION, RUN_ID_ANNOTATION, UPDATED_MS_ANNOTATION
from modelship.resources.webhooks import DELIVERIES_CONFIGMAP
from modelship.tracking import errors
from modelship.tracking.errors import TrackingError
from modelship.tracking.protocol.http import ok, query, query_int
from modelship.tracking.protocol.paths import API
from modelship.uris import ModelsURI, URIError, parse

STAGES = ("None", "Staging", "Production", "Archived")
T = TypeVar("T")


class RegistryReader(Protocol):
    """Where ModelVersion and RegisteredModel objects come from (as the API server returns them)."""

    scoped: bool
    """True when the objects come from one namespace (model names are then unique)."""

    def list_versions(self) -> list[dict[str, Any]]: ...

    def list_registered_models(self) -> list[dict[str, Any]]: ...

    def list_experiments(self) -> list[dict[str, Any]]:
        """Experiment objects (the web UI's Kubernetes views)."""
        ...

    def list_deployments(self) -> list[dict[str, Any]]:
        """ModelDeployment objects (the web UI's Kubernetes views)."""
        ...

    def webhook_deliveries(self, namespace: str) -> dict[str, str]:
        """The data of the namespace's webhook delivery record (the operator's ConfigMap
        ``modelship-webhook-deliveries``; empty when there is none)."""
        ...

    def endpoint_slices(self, namespace: str, services: list[str]) -> list[dict[str, Any]]:
        """The EndpointSlices of these Services (the web UI's live figures find the model
        servers' pods in them)."""
        ...

    def invalidate(self) -> None:
        """Forget any cached listing (after a write, the next read must see it)."""


class StaticReader:
    """A fixed list of objects (tests, or a snapshot)."""

    def __init__(
        self,
        objects: Iterable[Mapping[str, Any]],
        *,
        registered_models: Iterable[Mapping[str, Any]] = (),
        experiments: Iterable[Mapping[str, Any]] = (),
        deployments: Iterable[Mapping[str, Any]] = (),
        deliveries: Mapping[str, Mapping[str, str]] | None = None,
        endpoint_slices: Iterable[Mapping[str, Any]] = (),
        scoped: bool = True,
    ) -> None:
        self.objects = [dict(o) for o in objects]
        self.registered = [dict(o) for o in registered_models]
        self.experiments = [dict(o) for o in experiments]
        self.deployments = [dict(o) for o in deployments]
        self.deliveries = {ns: dict(d) for ns, d in (deliveries or {}).items()}
        self.slices = [dict(o) for o in endpoint_slices]
        self.scoped = scoped

    def list_versions(self) -> list[dict[str, Any]]:
        return self.objects

    def list_registered_models(self) -> list[dict[str, Any]]:
        return self.registered

    def list_experiments(self) -> list[dict[str, Any]]:
        return self.experiments

    def list_deployments(self) -> list[dict[str, Any]]:
        return self.deployments

    def webhook_deliveries(self, namespace: str) -> dict[str, str]:
        return self.deliveries.get(namespace, {})

    def endpoint_slices(self, namespace: str, services: list[str]) -> list[dict[str, Any]]:
        return [
            s
            for s in self.slices
            if (s.get("metadata") or {}).get("namespace") == namespace
            and ((s.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name") in services
        ]

    def invalidate(self) -> None:
        pass


class KubeReader:
    """ModelVersions and RegisteredModels (and, for the web UI, Experiments and
    ModelDeployments) from the Kubernetes API: one namespace, or all.

    A list is cached for ``ttl`` seconds, so a client's burst of calls (load_model makes
    several) costs one list per kind. With all namespaces, a model name found in two
    namespaces is ambiguous and refused with a message that names them.
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
        self._cached: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    def _list(self, plural: str) -> list[dict[str, Any]]:
        with self._lock:
            hit = self._cached.get(plural)
            if hit and time.monotonic() - hit[0] < self.ttl:
                return hit[1]
            items = self._kube.list_items(self._kube.custom_path(self.namespace, plural))
            self._cached[plural] = (time.monotonic(), items)
            return items

    def list_versions(self) -> list[dict[str, Any]]:
        return self._list("modelversions")

    def list_registered_models(self) -> list[dict[str, Any]]:
        try:
            return self._list("registeredmodels")
        except self._kube.KubeError as exc:
            if exc.status == 404:  # the RegisteredModel CRD is not installed (an older install): no entries
                return []
            raise

    def list_experiments(self) -> list[dict[str, Any]]:
        return self._list("experiments")

    def list_deployments(self) -> list[dict[str, Any]]:
        return self._list("modeldeployments")

    def webhook_deliveries(self, namespace: str) -> dict[str, str]:
        """One ConfigMap, read by its name (the account's rule names it: ``resourceNames``)."""
        key = f"deliveries/{namespace}"
        with self._lock:
            hit = self._cached.get(key)
            if hit and time.monotonic() - hit[0] < self.ttl:
                return dict(hit[1][0]) if hit[1] else {}
            cm = self._kube.get_or_none(self._kube.core_path(namespace, "configmaps", DELIVERIES_CONFIGMAP))
            data = dict((cm or {}).get("data") or {})
            self._cached[key] = (time.monotonic(), [data])
            return data

    def endpoint_slices(self, namespace: str, services: list[str]) -> list[dict[str, Any]]:
        """One list call per ModelDeployment (the live figures cache it): its variants' Services'
        slices, by the label the EndpointSlice controller sets."""
        return self._kube.list_items(
            self._kube.object_path("discovery.k8s.io/v1", "endpointslices", namespace),
            labelSelector=f"kubernetes.io/service-name in ({','.join(sorted(services))})",
        )

    def invalidate(self) -> None:
        with self._lock:
            self._cached.clear()


# --- MLflow's JSON shapes -----------------------------------------------------------------------


def _ms(timestamp: str | None) -> int:
    if not timestamp:
        return 0
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


def _annotated_ms(obj: Mapping[str, Any], key: str) -> int | None:
    value = str(((obj.get("metadata") or {}).get("annotations") or {}).get(key) or "")
    return int(value) if value.isdigit() else None


def _created(obj: Mapping[str, Any]) -> int:
    """MLflow's ``creation_timestamp``: the tracking server's millisecond stamp, or (an
    object made with kubectl or git) ``metadata.creationTimestamp``."""
    stamp = _annotated_ms(obj, CREATED_MS_ANNOTATION)
    return stamp if stamp is not None else _ms(obj["metadata"].get("creationTimestamp"))


def _last_updated(obj: Mapping[str, Any]) -> int:
    """MLflow's ``last_updated_timestamp``. An object the tracking server stamps: its last
    stamped change (milliseconds) and the operator's effective stage changes after it. Any
    other object: its newest stage change or condition, in seconds."""
    status = obj.get("status") or {}
    times = [_ms(h.get("time")) for h in status.get("stageHistory") or []]
    stamp = _annotated_ms(obj, UPDATED_MS_ANNOTATION)
    if stamp is not None:
        return max([stamp, _created(obj), *times])
    times += [_ms(c.get("lastTransitionTime")) for c in status.get("conditions") or []]
    return max([_created(obj), *times])


def model_version_json(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A ModelVersion object as MLflow's ``ModelVersion`` message.

    ``status`` is MLflow's registration state: READY once the operator has numbered the
    version, as MLflow's store answers READY for any version it has recorded (it never
    checks a source). Whether Modelship could resolve the source is the Ready condition;
    when it could not, ``status_message`` says why (such a version does not take effect as
    Staging or Production, docs/registry.md)."""
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    ready: Mapping[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    numbered = status.get("version") is not None
    message = ""
    if ready.get("status") == "False":
        message = f"Source not resolved ({ready.get('reason')}): {ready.get('message') or ''}".rstrip(": ")
    requested_run = ((meta.get("annotations") or {}).get(RUN_ID_ANNOTATION)) or ""
    out: dict[str, Any] = {
        "name": spec.get("model"),
        "version": str(status.get("version")),
        "creation_timestamp": _created(obj),
        "last_updated_timestamp": _last_updated(obj),
        "current_stage": status.get("stage") or "None",
        "description": spec.get("description") or "",
        "source": status.get("artifactUri") or spec.get("source"),
        "run_id": status.get("runId") or requested_run,
        "status": "READY" if numbered else "PENDING_REGISTRATION",
        "status_message": message,
        "tags": [{"key": k, "value": str(v)} for k, v in sorted((spec.get("tags") or {}).items())],
        "aliases": list(status.get("aliases") or []),
    }
    with contextlib.suppress(URIError):
        ref = parse(str(spec.get("source") or ""))
        if isinstance(ref, ModelsURI) and ref.logged_model_id is not None:
            out["model_id"] = ref.logged_model_id  # an MLflow 3 logged model
    return out


# --- the pure part: lookups over a list of objects ------------------------------------------------


def _ns(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"].get("namespace") or "")


class Registry:
    """Answers over one listing (pure; the router builds one per request).

    A model exists when a numbered ModelVersion or a RegisteredModel names it. Of two
    RegisteredModels of one model in one namespace the older is the entry (the operator
    marks the other as a duplicate).
    """

    def __init__(
        self,
        objects: Iterable[Mapping[str, Any]],
        *,
        scoped: bool,
        registered_models: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        self.models: dict[str, list[Mapping[str, Any]]] = {}
        self.all_versions: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        self.namespaces: dict[str, set[str]] = {}
        self.entries: dict[tuple[str, str], Mapping[str, Any]] = {}
        for obj in objects:
            name = (obj.get("spec") or {}).get("model")
            if not name:
                continue
            self.all_versions.setdefault((_ns(obj), name), []).append(obj)
            if (obj.get("status") or {}).get("version") is None:
                continue  # not numbered yet: not a registry entry yet
            self.models.setdefault(name, []).append(obj)
            self.namespaces.setdefault(name, set()).add(_ns(obj))
        for versions in self.models.values():
            versions.sort(key=lambda o: o["status"]["version"])
        for rm in sorted(
            registered_models, key=lambda o: (o["metadata"].get("creationTimestamp") or "", o["metadata"]["name"])
        ):
            name = (rm.get("spec") or {}).get("model")
            if name and (_ns(rm), name) not in self.entries:
                self.entries[(_ns(rm), name)] = rm
                self.namespaces.setdefault(name, set()).add(_ns(rm))
        self.scoped = scoped

    def names(self) -> list[str]:
        return sorted(self.namespaces)

    def exists(self, name: str) -> bool:
        return name in self.namespaces

    def namespace_of(self, name: str) -> str:
        """The one namespace of model ``name`` (not found, or ambiguous, raise)."""
        if name not in self.namespaces:
            raise TrackingError(f"Registered Model with name={name} not found", errors.RESOURCE_DOES_NOT_EXIST)
        spaces = self.namespaces[name]
        if not self.scoped and len(spaces) > 1:
            raise TrackingError(
                f"Registered model {name!r} exists in namespaces {', '.join(sorted(spaces))}; start the tracking "
                "server with --registry-namespace to choose one",
                errors.INVALID_PARAMETER_VALUE,
            )
        return next(iter(spaces))

    def entry(self, name: str) -> Mapping[str, Any] | None:
        """The model's RegisteredModel object, if it has one."""
        return self.entries.get((self.namespace_of(name), name))

    def versions(self, name: str) -> list[Mapping[str, Any]]:
        namespace = self.namespace_of(name)
        return [o for o in self.models.get(name, []) if _ns(o) == namespace]

    def version(self, name: str, version: str) -> Mapping[str, Any]:
        if not str(version).strip().lstrip("-").isdigit():
            raise errors.invalid(f"Parameter 'version' must be an integer, got '{version}'.")  # MLflow's words
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

    def tags(self, name: str) -> dict[str, str]:
        return dict(((self.entry(name) or {}).get("spec") or {}).get("tags") or {})

    def registered_model(self, name: str) -> dict[str, Any]:
        versions = self.versions(name)
        entry = self.entry(name)
        aliases = [
            {"alias": a, "version": str(o["status"]["version"])}
            for o in versions
            for a in o["status"].get("aliases") or []
        ]
        created = [_created(o) for o in versions]
        updated = [_last_updated(o) for o in versions]
        entry_stamp = _annotated_ms(entry, UPDATED_MS_ANNOTATION) if entry is not None else None
        if entry is not None:
            created.append(_created(entry))
            updated.append(_last_updated(entry))
        if entry is not None and entry_stamp is not None:
            # The server stamps the entry on every change MLflow counts for the model (a
            # version's own description is not one); the operator's stage changes still count.
            updated = [
                _last_updated(entry),
                *(_ms(h.get("time")) for o in versions for h in o["status"].get("stageHistory") or []),
            ]
        return {
            "name": name,
            "creation_timestamp": min(created),
            "last_updated_timestamp": max(updated),
            "description": ((entry or {}).get("spec") or {}).get("description") or "",
            "latest_versions": [model_version_json(o) for o in self.latest(name, None)],
            "tags": [{"key": k, "value": v} for k, v in sorted(self.tags(name).items())],
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


_VERSION_ORDER_KEYS = {
    "name": lambda mv: mv["name"],
    "version_number": lambda mv: int(mv["version"]),
    "creation_timestamp": lambda mv: mv["creation_timestamp"],
    "last_updated_timestamp": lambda mv: mv["last_updated_timestamp"],
}


def order_versions(found: list[dict[str, Any]], order_by: list[str]) -> list[dict[str, Any]]:
    """``model-versions/search``'s order, as MLflow's store has it: the ``order_by`` clauses
    (``name``, ``version_number``, ``creation_timestamp``, ``last_updated_timestamp``, each
    ``ASC`` or ``DESC``; none: newest change first), then name, then the highest version."""
    clauses: list[tuple[str, bool]] = []
    for clause in order_by:
        key, _, direction = str(clause).strip().partition(" ")
        key = key.strip("`").lower()
        if key not in _VERSION_ORDER_KEYS or direction.strip().upper() not in ("", "ASC", "DESC"):
            raise errors.invalid(
                f"Invalid order_by clause '{clause}': use one of {', '.join(_VERSION_ORDER_KEYS)}, with ASC or DESC"
            )
        clauses.append((key, direction.strip().upper() == "DESC"))
    clauses = clauses or [("last_updated_timestamp", True)]
    keys = [k for k, _ in clauses]
    clauses += [(k, d) for k, d in (("name", False), ("version_number", True)) if k not in keys]
    out = list(found)
    for key, descending in reversed(clauses):  # stable sorts, the last clause first
        out.sort(key=_VERSION_ORDER_KEYS[key], reverse=descending)
    return out


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

WRITES: tuple[tuple[str, str], ...] = (
    ("registered-models/create", "POST"),
    ("registered-models/rename", "POST"),
    ("registered-models/update", "PATCH"),
    ("registered-models/delete", "DELETE"),
    ("registered-models/set-tag", "POST"),
    ("registered-models/delete-tag", "DELETE"),
    ("registered-models/alias", "POST"),
    ("registered-models/alias", "DELETE"),
    ("model-versions/create", "POST"),
    ("model-versions/update", "PATCH"),
    ("model-versions/delete", "DELETE"),
    ("model-versions/transition-stage", "POST"),
    ("model-versions/set-tag", "POST"),
    ("model-versions/delete-tag", "DELETE"),
)
"""MLflow's registry write endpoints and their methods (mlflow/protos/model_registry.proto)."""

READS: tuple[tuple[str, str], ...] = (
    ("registered-models/get", "GET"),
    ("registered-models/search", "GET"),
    ("registered-models/get-latest-versions", "POST"),
    ("registered-models/alias", "GET"),
    ("model-versions/get", "GET"),
    ("model-versions/get-download-uri", "GET"),
    ("model-versions/search", "GET"),
)


def read_registry(reader: RegistryReader) -> Registry:
    """One listing of both kinds, as a :class:`Registry` (blocking)."""
    return Registry(reader.list_versions(), scoped=reader.scoped, registered_models=reader.list_registered_models())


WriteHandler = Callable[[str, str, dict[str, Any]], dict[str, Any]]
"""(HTTP method, endpoint path such as ``model-versions/create``, request parameters) -> the
answer's body (blocking; :class:`registry_write.RegistryWrites`)."""


def refuse(message: str, code: str) -> Callable[..., Any]:
    """An endpoint that answers every call with one MLflow-shaped error."""

    async def refused() -> Response:
        raise TrackingError(message, code)

    return refused


NO_CLUSTER = (
    "{path} is not served: this tracking server has no access to the cluster, where Modelship's model registry "
    "lives (ModelVersion and RegisteredModel objects). Start it with --registry-in-cluster (in a pod) or "
    "--registry-kubeconfig PATH (Helm: tracking.registry.enabled=true)."
)


def no_cluster_router() -> APIRouter:
    """Every registry endpoint, answering that the server was started without cluster access."""
    router = APIRouter()
    for path, method in READS + WRITES:
        searches = path.endswith(("search", "get-latest-versions"))
        router.add_api_route(
            f"{API}/{path}",
            refuse(NO_CLUSTER.format(path=path), errors.NOT_IMPLEMENTED),
            methods=["GET", "POST"] if searches else [method],
            include_in_schema=False,
        )
    return router


WRITES_OFF = (
    "{path} is refused: registry writes through the MLflow API are turned off on this server "
    "(--no-registry-writes; Helm: tracking.registry.writes=false), so that git stays the registry's source of "
    "truth. Change the ModelVersion or RegisteredModel manifest instead (or `modelship promote MODEL VERSION "
    "--to STAGE`)."
)


def registry_router(reader: RegistryReader, writer: WriteHandler | None = None) -> APIRouter:
    """The registry read API over ``reader``; the write API through ``writer`` (None: refused)."""
    router = APIRouter(tags=["MLflow model registry (from ModelVersion objects)"])

    async def registry() -> Registry:
        return await run_in_threadpool(read_registry, reader)

    async def find(lookup: Callable[[Registry], T]) -> T:
        """``lookup`` on the cached listing; a miss is checked once against a fresh listing, so
        an object created a moment ago (kubectl, git, another server) is never answered as
        missing because of the cache's ttl."""
        try:
            return lookup(await registry())
        except TrackingError as exc:
            if exc.error_code != errors.RESOURCE_DOES_NOT_EXIST:
                raise
        reader.invalidate()
        return lookup(await registry())

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
        return ok({"registered_model": await find(lambda reg: reg.registered_model(name))})

    @router.api_route(f"{API}/registered-models/search", methods=["GET", "POST"])
    async def search_registered_models(request: Request) -> Response:
        reg, p = await registry(), await params(request)
        clauses = parse_filter(p.get("filter"))
        names = [n for n in reg.names() if matches(clauses, {"name": n}, reg.tags(n))]
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
        found = await find(lambda reg: reg.latest(str(p["name"]), list(p.get("stages") or [])))
        return ok({"model_versions": [model_version_json(o) for o in found]})

    @router.get(f"{API}/registered-models/alias")
    async def get_model_version_by_alias(request: Request) -> Response:
        name, alias = query(request, "name") or "", query(request, "alias") or ""
        return ok({"model_version": model_version_json(await find(lambda reg: reg.by_alias(name, alias)))})

    @router.get(f"{API}/model-versions/get")
    async def get_model_version(request: Request) -> Response:
        name, version = query(request, "name") or "", query(request, "version") or ""
        return ok({"model_version": model_version_json(await find(lambda reg: reg.version(name, version)))})

    @router.get(f"{API}/model-versions/get-download-uri")
    async def get_download_uri(request: Request) -> Response:
        name, version = query(request, "name") or "", query(request, "version") or ""
        obj = await find(lambda reg: reg.version(name, version))
        # The resolved location; a source the operator could not resolve (yet) as recorded, as
        # MLflow answers the source it recorded.
        uri = (obj.get("status") or {}).get("artifactUri") or (obj.get("spec") or {}).get("source")
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
        order = request.query_params.getlist("order_by") if request.method == "GET" else p.get("order_by")
        found = order_versions(found, list(order or []))
        page, token = _page(found, request, 10000)
        out: dict[str, Any] = {"model_versions": page}
        if token:
            out["next_page_token"] = token
        return ok(out)

    async def write(request: Request) -> Response:
        path = request.url.path[len(API) + 1 :]
        if writer is None:
            raise TrackingError(WRITES_OFF.format(path=path), errors.PERMISSION_DENIED)
        return ok(await run_in_threadpool(writer, request.method, path, await params(request)))

    for path, method in WRITES:
        router.add_api_route(f"{API}/{path}", write, methods=[method], include_in_schema=False)
    return router
