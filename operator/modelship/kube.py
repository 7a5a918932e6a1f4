"""The one client of the Kubernetes API: plain JSON over the ``kubernetes`` package.

A leaf module (it imports nothing of Modelship but the API group), so the operator, the
CLI (``modelship promote``) and the tracking server's registry reader share it. Blocking
calls (run them with ``asyncio.to_thread`` from async handlers). Paths are built here and
only here: :func:`core_path`, :func:`custom_path` and :func:`object_path` for any
apiVersion. Bodies and results are plain dicts (camelCase, exactly as stored), not the
client's generated models, so that the pure functions in ``modelship.resources`` see
what the API server sees. Errors raise :class:`KubeError` with the HTTP status, so
callers can tolerate a 409 (already exists / resourceVersion conflict) or a 404.

Two idempotent writes: :func:`ensure` creates an object unless one of that name exists
(for objects whose spec is fixed once made: Jobs, ModelVersions), and :func:`apply` is
server-side apply with the operator's field manager (for children the operator keeps in
shape: it owns exactly the fields it sends, so a field another manager owns, such as an
HPA's replicas, is never fought over).

Configuration is loaded once, the way kubectl finds it: the in-cluster service account,
else KUBECONFIG (or ~/.kube/config); :func:`configure` names a kubeconfig file instead.
"""

from __future__ import annotations

import fnmatch
import json
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from modelship.api.common import GROUP, VERSION

MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "modelship-operator"

_lock = threading.Lock()
_client: client.ApiClient | None = None


class KubeError(RuntimeError):
    """The API server refused a call; ``status`` is the HTTP status (409, 404, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def api_client() -> client.ApiClient:
    """A shared client, configured once from the in-cluster account or KUBECONFIG."""
    global _client
    with _lock:
        if _client is None:
            configuration = client.Configuration()
            try:
                config.load_incluster_config(client_configuration=configuration)
            except ConfigException:
                config.load_kube_config(client_configuration=configuration)
            # Many handlers run at once (twenty versions created together); the default
            # pool of 10 connections would make urllib3 drop and reopen connections.
            configuration.connection_pool_maxsize = 64
            _client = client.ApiClient(configuration)
        return _client


def configure(kubeconfig: str) -> None:
    """Use this kubeconfig file instead of the in-cluster account or KUBECONFIG."""
    global _client
    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = 64
    with _lock:
        _client = client.ApiClient(configuration)


SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def default_namespace(kubeconfig: str | None = None) -> str:
    """The namespace kubectl would use: the pod's own, else the kubeconfig context's, else default."""
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE) as f:
            return f.read().strip()
    except OSError:
        pass
    try:
        _, context = config.list_kube_config_contexts(config_file=kubeconfig)
        return str((context.get("context") or {}).get("namespace") or "default")
    except (ConfigException, OSError):
        return "default"


def core_path(namespace: str | None, resource: str, name: str | None = None, *, subresource: str | None = None) -> str:
    """``/api/v1[/namespaces/<ns>]/<resource>[/<name>[/<subresource>]]``."""
    return _path("/api/v1", namespace, resource, name, subresource)


def custom_path(
    namespace: str | None,
    plural: str,
    name: str | None = None,
    *,
    subresource: str | None = None,
    group: str = GROUP,
    version: str = VERSION,
) -> str:
    """``/apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]``."""
    return _path(f"/apis/{group}/{version}", namespace, plural, name, subresource)


def api_base(api_version: str) -> str:
    """``/api/v1`` for the core group, ``/apis/<group>/<version>`` for the others."""
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


def object_path(
    api_version: str, plural: str, namespace: str | None, name: str | None = None, *, subresource: str | None = None
) -> str:
    """The path of any object (or collection), by its apiVersion and resource plural."""
    return _path(api_base(api_version), namespace, plural, name, subresource)


# (apiVersion, kind) -> resource plural, for every kind the operator writes or watches.
PLURALS: dict[tuple[str, str], str] = {
    ("v1", "Service"): "services",
    ("v1", "Pod"): "pods",
    ("v1", "ConfigMap"): "configmaps",
    ("apps/v1", "Deployment"): "deployments",
    ("batch/v1", "Job"): "jobs",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproutes",
    ("traefik.io/v1alpha1", "TraefikService"): "traefikservices",
    (f"{GROUP}/{VERSION}", "ModelVersion"): "modelversions",
    (f"{GROUP}/{VERSION}", "ModelDeployment"): "modeldeployments",
    (f"{GROUP}/{VERSION}", "Experiment"): "experiments",
    (f"{GROUP}/{VERSION}", "RegisteredModel"): "registeredmodels",
}


def path_of(obj: Mapping[str, Any], *, collection: bool = False) -> str:
    """The path of an object from its own apiVersion, kind and metadata (or of its collection)."""
    meta = obj.get("metadata") or {}
    plural = PLURALS[(obj["apiVersion"], obj["kind"])]
    return object_path(obj["apiVersion"], plural, meta.get("namespace"), None if collection else meta["name"])


def _path(base: str, namespace: str | None, resource: str, name: str | None, subresource: str | None) -> str:
    path = base + (f"/namespaces/{quote(namespace)}" if namespace else "") + f"/{resource}"
    if name:
        path += f"/{quote(name)}"
        if subresource:
            path += f"/{subresource}"
    return path


def request(
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    timeout: float = 30.0,
    **params: Any,
) -> Any:
    """One call; returns the decoded JSON body (None when empty). ``params`` go in the query."""
    api = api_client()
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    query = [(k, v) for k, v in params.items() if v is not None]
    _method, url, headers, serialized, _ = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    try:
        resp = api.call_api(method, url, header_params=headers, body=serialized, _request_timeout=timeout)
        resp.read()
    except ApiException as exc:
        raise KubeError(int(exc.status or 0), _message(exc.body) or str(exc.reason)) from None
    if resp.status >= 400:
        raise KubeError(resp.status, _message(resp.data) or str(resp.reason or ""))
    return json.loads(resp.data) if resp.data else None


def _message(data: Any) -> str | None:
    if not data:
        return None
    try:
        return str(json.loads(data).get("message"))
    except (ValueError, AttributeError, TypeError):
        return data.decode(errors="replace")[:500] if isinstance(data, bytes) else str(data)[:500]


def get(path: str, **params: Any) -> Any:
    return request("GET", path, **params)


def get_or_none(path: str) -> Any:
    """The object, or None when it does not exist."""
    try:
        return get(path)
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise


def create(path: str, body: Mapping[str, Any]) -> Any:
    return request("POST", path, dict(body))


def ensure(path: str, body: Mapping[str, Any]) -> bool:
    """Create the object at the collection ``path``; False when one of that name exists (left as it is)."""
    try:
        create(path, body)
    except KubeError as exc:
        if exc.status == 409:
            return False
        raise
    return True


def apply(path: str, body: Mapping[str, Any], *, field_manager: str = FIELD_MANAGER) -> Any:
    """Server-side apply of the object at ``path`` (its own path, not the collection's).

    ``force`` takes over the fields this manager sends from any other manager: the
    operator's children are the operator's.
    """
    return request("PATCH", path, dict(body), content_type=APPLY_PATCH, fieldManager=field_manager, force="true")


def merge_patch(path: str, body: Mapping[str, Any]) -> Any:
    """A JSON merge patch; with ``metadata.resourceVersion`` in it, a conflict raises 409."""
    return request("PATCH", path, dict(body), content_type=MERGE_PATCH)


def delete(path: str) -> Any:
    return request("DELETE", path)


def list_items(path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a list call (``labelSelector=...`` and friends as keyword arguments)."""
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = get(path, limit="500", **params, **({"continue": token} if token else {}))
        items += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


def existing_namespaces(watched: list[str]) -> list[str]:
    """Which of the watched namespaces exist, in their order: one list call, by name (the
    ``kubernetes.io/metadata.name`` label every namespace carries), or of all of them when a
    watched name is a pattern (kopf accepts globs; a ``!`` exclusion is not applied here).
    An operator of some namespaces may name one not created yet, where it has no Role."""
    if any(c in ns for ns in watched for c in "*?["):
        names = [str(i["metadata"]["name"]) for i in list_items(core_path(None, "namespaces"))]
        return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in watched if not p.startswith("!"))]
    selector = f"kubernetes.io/metadata.name in ({','.join(watched)})"
    found = {str(i["metadata"]["name"]) for i in list_items(core_path(None, "namespaces"), labelSelector=selector)}
    return [ns for ns in watched if ns in found]
