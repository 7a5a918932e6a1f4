"""The MLflow registry write API, as the spec changes a user would make with kubectl.

``mlflow.register_model``, ``log_model(registered_model_name=...)``, transitions, aliases,
tags, descriptions and deletes arrive here. Each becomes a create, merge patch or delete of
a ModelVersion or RegisteredModel object (planned by the pure functions of
:mod:`modelship.resources.registry_api`, the same that ``modelship promote`` uses). The
server is a user writing spec: the operator still numbers versions and decides what takes
effect, and writes status.

So that the client reads back what it wrote, a call waits (bounded by ``wait`` seconds,
polling) until the operator has acted: a new version until it has its number, a stage or
alias change until the operator has observed the new generation of every object changed.

Objects it creates carry ``modelship.io/created-by: tracking-api``; new models go into
the configured namespace, new versions of an existing model into that model's namespace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from modelship.resources import registry_api as plan
from modelship.tracking import errors
from modelship.tracking.errors import TrackingError
from modelship.tracking.logs import event
from modelship.tracking.server.registry import Registry, RegistryReader, model_version_json, read_registry

log = logging.getLogger("modelship.tracking.server.registry")

MV, RM = "modelversions", "registeredmodels"

RENAME_REFUSED = (
    "Renaming a registered model is not supported by Modelship: the name is spec.model of every ModelVersion "
    "(immutable) and version numbers are counted per name, so a rename would have to recreate every version. "
    "Register the versions under the new name instead (mlflow.register_model('models:/{name}/<version>', "
    "'<new name>')) and then delete '{name}'."
)


class ObjectStore(Protocol):
    """Where the writes go: the Kubernetes API (:class:`KubeObjects`)."""

    def create(self, namespace: str, plural: str, body: Mapping[str, Any]) -> dict[str, Any]: ...

    def patch(self, namespace: str, plural: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]: ...

    def delete(self, namespace: str, plural: str, name: str) -> None: ...

    def get(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None: ...


class KubeObjects:
    """:class:`ObjectStore` over the one Kubernetes client (configured by the reader)."""

    def __init__(self) -> None:
        from modelship import kube

        self._kube = kube

    def create(self, namespace: str, plural: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call(lambda k: k.create(k.custom_path(namespace, plural), body), plural, namespace)

    def patch(self, namespace: str, plural: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self._call(lambda k: k.merge_patch(k.custom_path(namespace, plural, name), patch), plural, namespace)

    def delete(self, namespace: str, plural: str, name: str) -> None:
        try:
            self._call(lambda k: k.delete(k.custom_path(namespace, plural, name)), plural, namespace)
        except TrackingError as exc:
            if exc.error_code != errors.RESOURCE_DOES_NOT_EXIST:  # gone already: what was asked
                raise

    def get(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        found = self._call(lambda k: k.get_or_none(k.custom_path(namespace, plural, name)), plural, namespace)
        return found or None

    def _call(self, fn: Callable[[Any], Any], plural: str, namespace: str) -> dict[str, Any]:
        try:
            return fn(self._kube) or {}
        except self._kube.KubeError as exc:
            raise kube_error(exc.status, exc.message, plural, namespace) from None


def kube_error(status: int, message: str, plural: str, namespace: str) -> TrackingError:
    """The API server's refusal as an MLflow error that says what to do."""
    if status == 403:
        return TrackingError(
            f"The tracking server may not change {plural} in namespace {namespace}: grant its service account "
            f"the registry writer rules (Helm: tracking.registry.writes=true). Kubernetes said: {message}",
            errors.PERMISSION_DENIED,
        )
    if status == 404:
        return TrackingError(f"{plural} in namespace {namespace}: {message}", errors.RESOURCE_DOES_NOT_EXIST)
    if status == 409:
        return TrackingError(message, errors.RESOURCE_ALREADY_EXISTS)
    if status in (400, 422):
        return TrackingError(f"Kubernetes refused the change: {message}", errors.INVALID_PARAMETER_VALUE)
    return TrackingError(f"The Kubernetes API answered {status}: {message}", errors.TEMPORARILY_UNAVAILABLE)


@dataclass
class WriteSettings:
    """How the tracking server writes the registry."""

    objects: ObjectStore
    namespace: str
    """Namespace of models created through the API (their later versions follow the model)."""
    wait: float = 30.0
    """Longest a write waits for the operator (a version number, an observed change)."""
    poll: float = 0.2


def _required(p: Mapping[str, Any], key: str) -> str:
    value = p.get(key)
    if value is None or value == "":
        raise errors.invalid(f"Missing value for required parameter '{key}'.")
    return str(value)


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


class RegistryWrites:
    """The write endpoints: ``writes(method, path, params)`` -> the answer's body (blocking)."""

    def __init__(
        self,
        reader: RegistryReader,
        settings: WriteSettings,
        *,
        run_artifact_uri: Callable[[str], str | None],
        model_artifact_uri: Callable[[str], str | None] = lambda _: None,
        version_of_model: Callable[[str, str, str], None] = lambda *_: None,
    ) -> None:
        self.reader = reader
        self.settings = settings
        self.objects = settings.objects
        self.run_artifact_uri = run_artifact_uri
        self.model_artifact_uri = model_artifact_uri
        self.version_of_model = version_of_model
        """(model_id, name, version): a version was registered from a logged model."""
        self.handlers: dict[tuple[str, str], Callable[[Mapping[str, Any]], dict[str, Any]]] = {
            ("POST", "registered-models/create"): self.create_registered_model,
            ("POST", "registered-models/rename"): self.rename_registered_model,
            ("PATCH", "registered-models/update"): self.update_registered_model,
            ("DELETE", "registered-models/delete"): self.delete_registered_model,
            ("POST", "registered-models/set-tag"): self.set_registered_model_tag,
            ("DELETE", "registered-models/delete-tag"): self.delete_registered_model_tag,
            ("POST", "registered-models/alias"): self.set_alias,
            ("DELETE", "registered-models/alias"): self.delete_alias,
            ("POST", "model-versions/create"): self.create_model_version,
            ("PATCH", "model-versions/update"): self.update_model_version,
            ("DELETE", "model-versions/delete"): self.delete_model_version,
            ("POST", "model-versions/transition-stage"): self.transition_stage,
            ("POST", "model-versions/set-tag"): self.set_model_version_tag,
            ("DELETE", "model-versions/delete-tag"): self.delete_model_version_tag,
        }

    def __call__(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = self.handlers.get((method, path))
        if handler is None:
            raise TrackingError(f"{method} {path}: no such registry endpoint", errors.ENDPOINT_NOT_FOUND)
        try:
            return handler(params)
        except LookupError as exc:
            raise TrackingError(str(exc.args[0]), errors.RESOURCE_DOES_NOT_EXIST) from None
        except ValueError as exc:
            raise errors.invalid(str(exc)) from None
        finally:
            self.reader.invalidate()

    # --- helpers ------------------------------------------------------------------------------

    def _fresh(self) -> Registry:
        self.reader.invalidate()
        return read_registry(self.reader)

    def _model(self, p: Mapping[str, Any]) -> tuple[Registry, str, str]:
        """The registry, the model's name and its namespace (not found raises)."""
        reg = self._fresh()
        name = _required(p, "name")
        return reg, name, reg.namespace_of(name)

    def _version(self, p: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
        reg, name, namespace = self._model(p)
        return namespace, reg.version(name, _required(p, "version"))

    def _registered_model(self, name: str) -> dict[str, Any]:
        return {"registered_model": self._fresh().registered_model(name)}

    def _entry_change(self, reg: Registry, name: str, namespace: str, patch: dict[str, Any]) -> None:
        """Patch the model's RegisteredModel; a model with versions only gets one made."""
        entry = reg.entry(name)
        if entry is not None:
            self.objects.patch(namespace, RM, entry["metadata"]["name"], patch)
            return
        spec = {k: v for k, v in patch["spec"].items() if v is not None}
        tags = {k: v for k, v in (spec.get("tags") or {}).items() if v is not None}
        body = plan.registered_model_body(
            name, namespace, description=spec.get("description"), tags=tags, now_ms=self._now_ms()
        )
        self.objects.create(namespace, RM, body)

    def _now_ms(self) -> int:
        return int(time.time() * 1000)

    def _touch_model(self, reg: Registry, name: str, namespace: str) -> None:
        """Stamp the model's RegisteredModel (if it has one) as changed now: MLflow's model
        ``last_updated_timestamp`` moves when a version is created, transitioned or deleted."""
        entry = reg.entry(name)
        if entry is not None:
            self.objects.patch(namespace, RM, entry["metadata"]["name"], plan.stamped({}, self._now_ms()))

    def _wait_for(self, namespace: str, name: str, done: Callable[[Mapping[str, Any]], bool]) -> dict[str, Any] | None:
        deadline = time.monotonic() + self.settings.wait
        while True:
            obj = self.objects.get(namespace, MV, name)
            if obj is None or done(obj):
                return obj
            if time.monotonic() >= deadline:
                return None
            time.sleep(self.settings.poll)

    def _apply(self, namespace: str, changes: list[plan.SpecChange]) -> None:
        """Patch each version, then wait until the operator has observed every change."""
        generations = {}
        for change in changes:
            patched = self.objects.patch(namespace, MV, change.name, change.patch)
            generations[change.name] = int((patched.get("metadata") or {}).get("generation") or 0)
        for name, generation in generations.items():

            def observed_it(obj: Mapping[str, Any], wanted: int = generation) -> bool:
                return int((obj.get("status") or {}).get("observedGeneration") or 0) >= wanted

            observed = self._wait_for(namespace, name, observed_it)
            if observed is None:
                event(
                    log,
                    "registry change not observed by the operator in time",
                    logging.WARNING,
                    namespace=namespace,
                    modelversion=name,
                    generation=generation,
                    wait=self.settings.wait,
                )
                return

    # --- registered models ------------------------------------------------------------------------

    def create_registered_model(self, p: Mapping[str, Any]) -> dict[str, Any]:
        name = plan.check_model_name(_required(p, "name"))
        if self._fresh().exists(name):
            raise errors.already_exists(f"Registered Model (name={name}) already exists.")
        body = plan.registered_model_body(
            name,
            self.settings.namespace,
            description=p.get("description"),
            tags=plan.tags_dict(p.get("tags")),
            now_ms=self._now_ms(),
        )
        try:
            self.objects.create(self.settings.namespace, RM, body)
        except TrackingError as exc:
            if exc.error_code == errors.RESOURCE_ALREADY_EXISTS:
                raise errors.already_exists(f"Registered Model (name={name}) already exists.") from None
            raise
        event(log, "registered model created", namespace=self.settings.namespace, model=name)
        return self._registered_model(name)

    def rename_registered_model(self, p: Mapping[str, Any]) -> dict[str, Any]:
        raise TrackingError(RENAME_REFUSED.format(name=_required(p, "name")), errors.NOT_IMPLEMENTED)

    def update_registered_model(self, p: Mapping[str, Any]) -> dict[str, Any]:
        reg, name, namespace = self._model(p)
        patch = plan.stamped(plan.description_patch(p.get("description")), self._now_ms())
        self._entry_change(reg, name, namespace, patch)
        return self._registered_model(name)

    def delete_registered_model(self, p: Mapping[str, Any]) -> dict[str, Any]:
        reg, name, namespace = self._model(p)
        for obj in reg.all_versions.get((namespace, name), []):
            self.objects.delete(namespace, MV, obj["metadata"]["name"])
        for rm in self.reader.list_registered_models():
            if rm["metadata"].get("namespace") == namespace and (rm.get("spec") or {}).get("model") == name:
                self.objects.delete(namespace, RM, rm["metadata"]["name"])
        event(log, "registered model deleted", namespace=namespace, model=name)
        return {}

    def set_registered_model_tag(self, p: Mapping[str, Any]) -> dict[str, Any]:
        reg, name, namespace = self._model(p)
        value = p.get("value")
        self._entry_change(reg, name, namespace, plan.tag_patch(_required(p, "key"), str(value or "")))
        return {}

    def delete_registered_model_tag(self, p: Mapping[str, Any]) -> dict[str, Any]:
        reg, name, namespace = self._model(p)
        entry = reg.entry(name)
        key = _required(p, "key")
        if entry is not None and key in ((entry.get("spec") or {}).get("tags") or {}):
            self.objects.patch(namespace, RM, entry["metadata"]["name"], plan.tag_patch(key, None))
        return {}

    def set_alias(self, p: Mapping[str, Any]) -> dict[str, Any]:
        reg, name, namespace = self._model(p)
        changes = plan.plan_set_alias(reg.versions(name), name, _required(p, "alias"), _required(p, "version"))
        self._apply(namespace, changes)
        return {}

    def delete_alias(self, p: Mapping[str, Any]) -> dict[str, Any]:
        reg, name, namespace = self._model(p)
        self._apply(namespace, plan.plan_delete_alias(reg.versions(name), _required(p, "alias")))
        return {}

    # --- model versions --------------------------------------------------------------------------

    def create_model_version(self, p: Mapping[str, Any]) -> dict[str, Any]:
        reg, name, namespace = self._model(p)
        run_id = str(p.get("run_id") or "") or None
        source = str(p.get("source") or "")
        if not source and p.get("model_id"):
            source = f"models:/{p['model_id']}"
        model_id = str(p.get("model_id") or "") or None
        run_root = self.run_artifact_uri(run_id) if run_id else None
        plan.check_source(
            source,
            run_id=run_id,
            model_id=model_id,
            run_artifact_uri=run_root,
            model_artifact_uri=self.model_artifact_uri(model_id) if model_id else None,
        )
        source = plan.version_source(source, run_id, run_root)
        body = plan.model_version_body(
            name,
            namespace,
            source,
            description=p.get("description"),
            tags=plan.tags_dict(p.get("tags")),
            run_id=run_id,
            now_ms=self._now_ms(),
        )
        created = self.objects.create(namespace, MV, body)
        self._touch_model(reg, name, namespace)
        object_name = created["metadata"]["name"]
        numbered = self._wait_for(namespace, object_name, lambda o: (o.get("status") or {}).get("version") is not None)
        if numbered is None:
            raise TrackingError(
                f"ModelVersion {namespace}/{object_name} was created for model {name!r}, but the operator gave it no "
                f"version number within {self.settings.wait:.0f}s: is the operator running? It is numbered when the "
                "operator handles it (model-versions/search lists it then).",
                errors.TEMPORARILY_UNAVAILABLE,
            )
        if model_id:
            self.version_of_model(model_id, name, str(numbered["status"]["version"]))
        event(
            log,
            "model version created",
            namespace=namespace,
            model=name,
            modelversion=object_name,
            version=numbered["status"]["version"],
        )
        return {"model_version": model_version_json(numbered)}

    def update_model_version(self, p: Mapping[str, Any]) -> dict[str, Any]:
        namespace, obj = self._version(p)
        patch = plan.stamped(plan.description_patch(p.get("description")), self._now_ms())
        patched = self.objects.patch(namespace, MV, obj["metadata"]["name"], patch)
        return {"model_version": model_version_json(patched)}

    def delete_model_version(self, p: Mapping[str, Any]) -> dict[str, Any]:
        reg, name, namespace = self._model(p)
        obj = reg.version(name, _required(p, "version"))
        self.objects.delete(namespace, MV, obj["metadata"]["name"])
        self._touch_model(reg, name, namespace)
        return {}

    def transition_stage(self, p: Mapping[str, Any]) -> dict[str, Any]:
        reg, name, namespace = self._model(p)
        version = _required(p, "version")
        changes = plan.plan_stage(
            reg.versions(name),
            name,
            version,
            _required(p, "stage"),
            archive_existing=_flag(p.get("archive_existing_versions")),
        )
        now = self._now_ms()
        self._apply(namespace, [plan.SpecChange(c.name, plan.stamped(c.patch, now)) for c in changes])
        self._touch_model(reg, name, namespace)
        return {"model_version": model_version_json(self._fresh().version(name, version))}

    def set_model_version_tag(self, p: Mapping[str, Any]) -> dict[str, Any]:
        namespace, obj = self._version(p)
        patch = plan.tag_patch(_required(p, "key"), str(p.get("value") or ""))
        self.objects.patch(namespace, MV, obj["metadata"]["name"], patch)
        return {}

    def delete_model_version_tag(self, p: Mapping[str, Any]) -> dict[str, Any]:
        namespace, obj = self._version(p)
        key = _required(p, "key")
        if key in ((obj.get("spec") or {}).get("tags") or {}):
            self.objects.patch(namespace, MV, obj["metadata"]["name"], plan.tag_patch(key, None))
        return {}
