"""The MLflow registry write API as spec changes: pure planning for the tracking server.

The tracking server answers ``mlflow``'s registry writes by creating, patching and
deleting ModelVersion and RegisteredModel objects, as a user with kubectl would. What to
write is decided here, from the request and the objects listed, with no I/O: the object
a new model or version becomes, and the merge patch a stage transition, an alias, a tag
or a description is. ``modelship promote`` plans its stage change with the same function.

Errors are plain: :class:`LookupError` when a named version does not exist, and
:class:`ValueError` when a value is wrong; the server turns them into MLflow's
``RESOURCE_DOES_NOT_EXIST`` and ``INVALID_PARAMETER_VALUE``.

The model-level view (what a RegisteredModel's status shows) is here too, so that the
operator and the readers compute it the same way.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelship.api.common import API_VERSION, MODEL_NAME, STAGES
from modelship.resources.conditions import READY, make_condition
from modelship.uris import ArtifactsURI, ModelsURI, RunsURI, URIError, decoded_path, local_path, parse, scheme_of

CREATED_BY_LABEL = "modelship.io/created-by"
"""Label on every object the tracking server creates for the MLflow API (value below)."""
CREATED_BY_API = "tracking-api"
MODEL_ANNOTATION = "modelship.io/model"
"""The exact registered model name (labels cannot hold every MLflow name)."""
CREATED_MS_ANNOTATION = "modelship.io/created-ms"
"""When the tracking server created the object, in epoch milliseconds (MLflow's
``creation_timestamp``; ``metadata.creationTimestamp`` has whole seconds only)."""
UPDATED_MS_ANNOTATION = "modelship.io/updated-ms"
"""The last change MLflow counts in ``last_updated_timestamp``, in epoch milliseconds:
on a version its description and stage requests; on a RegisteredModel its description
and its versions' creation, stage requests and deletion (as MLflow's SQL store)."""
RUN_ID_ANNOTATION = "modelship.io/run-id"
"""The ``run_id`` sent with ``model-versions/create``, answered until the operator has
resolved the source's run (MLflow keeps a run id it cannot find, as sent)."""

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class SpecChange:
    """One merge patch of one object's spec (``name`` is the object's metadata.name)."""

    name: str
    patch: dict[str, Any]


# --- names and new objects -------------------------------------------------------------------


def check_model_name(model: str) -> str:
    """The name as given, or ValueError: the CRDs' pattern for ``spec.model``."""
    if not model or len(model) > 253 or not re.match(MODEL_NAME, model):
        raise ValueError(
            f"Invalid registered model name {model!r}: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 253 characters"
        )
    return model


def _clean(model: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-")[:limit].strip("-") or "model"


def registered_model_object_name(model: str) -> str:
    """The RegisteredModel object the API creates for ``model``: the name itself when it is
    a valid object name, otherwise a readable form and a hash of the exact name (``Iris``
    and ``iris`` must not collide)."""
    if len(model) <= 253 and _DNS_SUBDOMAIN.match(model):
        return model
    return f"{_clean(model, 50)}-{hashlib.sha256(model.encode()).hexdigest()[:10]}"


def _metadata(model: str, namespace: str, now_ms: int | None) -> dict[str, Any]:
    annotations = {MODEL_ANNOTATION: model}
    if now_ms is not None:
        annotations[CREATED_MS_ANNOTATION] = annotations[UPDATED_MS_ANNOTATION] = str(now_ms)
    return {"namespace": namespace, "labels": {CREATED_BY_LABEL: CREATED_BY_API}, "annotations": annotations}


def stamped(patch: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """``patch`` that also records ``now_ms`` as the object's MLflow last-updated time."""
    meta = dict(patch.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), UPDATED_MS_ANNOTATION: str(now_ms)}
    return {**patch, "metadata": meta}


def registered_model_body(
    model: str,
    namespace: str,
    *,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """The RegisteredModel that ``registered-models/create`` makes."""
    spec: dict[str, Any] = {"model": check_model_name(model)}
    if description:
        spec["description"] = description
    if tags:
        spec["tags"] = dict(tags)
    meta = {"name": registered_model_object_name(model), **_metadata(model, namespace, now_ms)}
    return {"apiVersion": API_VERSION, "kind": "RegisteredModel", "metadata": meta, "spec": spec}


def model_version_body(
    model: str,
    namespace: str,
    source: str,
    *,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_id: str | None = None,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """The ModelVersion that ``model-versions/create`` makes. Its name is generated by the
    API server (``<model>-<5 characters>``): MLflow's create is not idempotent, every call
    is a new version, and the number is the operator's to assign."""
    if not source:
        raise ValueError("Missing value for required parameter 'source'.")
    spec: dict[str, Any] = {"model": check_model_name(model), "source": source, "stage": "None"}
    if description:
        spec["description"] = description
    if tags:
        spec["tags"] = dict(tags)
    meta = {"generateName": _clean(model, 50) + "-", **_metadata(model, namespace, now_ms)}
    if run_id:
        meta["annotations"][RUN_ID_ANNOTATION] = run_id
    return {"apiVersion": API_VERSION, "kind": "ModelVersion", "metadata": meta, "spec": spec}


def version_source(source: str, run_id: str | None, run_artifact_uri: str | None) -> str:
    """``spec.source`` for a version MLflow registers.

    ``mlflow.register_model("runs:/<run>/model")`` sends the run's artifact location
    (``mlflow-artifacts:/.../<run>/artifacts/model``) and the run id; written back as
    ``runs:/<run>/model`` the operator also copies the run's metrics (gates need them).
    Anything else is kept as sent: ``models:/<logged model id>`` (MLflow 3), another
    registry URI, or an artifact URI.
    """
    if run_id and run_artifact_uri and not source.startswith("runs:/"):
        root = run_artifact_uri.rstrip("/")
        if source.rstrip("/") == root:
            return f"runs:/{run_id}/"
        if source.startswith(root + "/"):
            return f"runs:/{run_id}/{source[len(root) + 1 :]}"
    return source


LOCAL_SOURCE_REFUSED = (
    "Invalid model version source: '{source}'. To use a local path as a model version source, the {owner} "
    "request parameter has to be specified and the local path has to be contained within the artifact "
    "directory of the run specified by the {owner}."
)
RELATIVE_SOURCE_REFUSED = (
    "Invalid model version source: '{source}'. If supplying a source as an http, https, local file path, ftp, "
    "objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path references "
    "present. Please provide an absolute path."
)
OWNER_REFUSED = (
    "Invalid model version source: '{source}'. The {owner} request parameter must identify the resource that "
    "contains the source."
)


def _within(source: str, root: str | None) -> bool:
    """``source`` is ``root`` or under it (both ``mlflow-artifacts:`` URIs)."""
    if not root or scheme_of(root) != "mlflow-artifacts":
        return False
    inner, outer = parse(source), parse(root)
    assert isinstance(inner, ArtifactsURI) and isinstance(outer, ArtifactsURI)
    return bool(outer.path) and (inner.path == outer.path or inner.path.startswith(outer.path + "/"))


def check_source(
    source: str,
    *,
    run_id: str | None = None,
    model_id: str | None = None,
    run_artifact_uri: str | None = None,
    model_artifact_uri: str | None = None,
) -> None:
    """MLflow's checks of a new version's source (``mlflow server`` 3.17's
    ``_validate_source_run``/``_validate_source_model``), or ValueError in its words.

    The source must be shown to belong to the run (``run_id``) or logged model
    (``model_id``) sent with it: ``runs:/<run>/...`` needs that run id (the run itself is not
    looked up: MLflow records a run it cannot find), ``models:/<m-id>`` that model id (an
    MLmodel is not asked for), an ``mlflow-artifacts:`` URI or a local path must lie in the
    artifacts of the run or model sent (``*_artifact_uri``: None when this server does not
    know it). A registry source (``models:/<name>/<version>``) and other URIs (``s3://``...)
    are taken as they are; any ``..`` is refused. Whether the source holds a model is the
    operator's to find out (the Ready condition): only a resolved version takes effect as
    Staging or Production."""
    if not source:
        raise ValueError("Missing value for required parameter 'source'.")
    owner, root = ("model_id", model_artifact_uri) if model_id else ("run_id", run_artifact_uri)
    local = local_path(source)
    if local is not None:
        local_root = local_path(root) if ((model_id or run_id) and root) else None
        if local_root is not None and local.startswith("/"):
            wanted, base = posixpath.normpath(local), posixpath.normpath(local_root)
            if wanted == base or wanted.startswith(base.rstrip("/") + "/"):
                return
        raise ValueError(LOCAL_SOURCE_REFUSED.format(source=local, owner=owner))
    scheme = scheme_of(source)
    if scheme == "file":
        raise ValueError(f"'{source}' is not a valid remote uri: a file: URI names this machine's filesystem")
    path = re.sub(r"/+", "/", decoded_path(source).rstrip("/"))
    if "\x00" in path or ".." in path.split("/") or (path and posixpath.normpath(path) != path):
        raise ValueError(RELATIVE_SOURCE_REFUSED.format(source=source))
    refused = ValueError(OWNER_REFUSED.format(source=source, owner=owner))
    try:
        ref = parse(source) if scheme in ("runs", "models", "mlflow-artifacts") else None
    except URIError:
        raise refused from None
    if isinstance(ref, RunsURI):
        if model_id or ref.run_id != run_id or source.startswith("runs://"):
            raise refused
    elif isinstance(ref, ModelsURI):
        if source.startswith("models://"):
            raise ValueError(OWNER_REFUSED.format(source=source, owner="model_id"))
        if ref.logged_model_id is not None and ref.logged_model_id != model_id:
            raise ValueError(OWNER_REFUSED.format(source=source, owner="model_id"))
    elif isinstance(ref, ArtifactsURI) and not _within(source, root):
        raise refused


# --- changes to existing versions --------------------------------------------------------------


def normalize_stage(stage: str) -> str:
    """MLflow's stage names are case-insensitive: ``production`` is Production."""
    for known in STAGES:
        if stage.lower() == known.lower():
            return known
    raise ValueError(f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(STAGES)}.")


def _version_of(obj: Mapping[str, Any]) -> int | None:
    version = (obj.get("status") or {}).get("version")
    return int(version) if version is not None else None


def find_version(versions: Iterable[Mapping[str, Any]], model: str, version: int | str) -> Mapping[str, Any]:
    """The ModelVersion numbered ``version`` among ``versions`` (one model's objects)."""
    wanted = str(version)
    for obj in versions:
        if str(_version_of(obj)) == wanted:
            return obj
    raise LookupError(f"Model Version (name={model}, version={version}) not found")


def _name(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def plan_stage(
    versions: Sequence[Mapping[str, Any]], model: str, version: int | str, stage: str, *, archive_existing: bool
) -> list[SpecChange]:
    """A transition as spec changes: the version requests ``stage``; with ``archive_existing``
    (MLflow's ``archive_existing_versions``) every other version requesting that stage
    requests Archived. The operator still decides what takes effect (gates, newest wins)."""
    stage = normalize_stage(stage)
    target = find_version(versions, model, version)
    changes = [SpecChange(_name(target), {"spec": {"stage": stage}})]
    if archive_existing and stage in ("Staging", "Production"):
        for other in versions:
            if other is not target and (other.get("spec") or {}).get("stage") == stage:
                changes.append(SpecChange(_name(other), {"spec": {"stage": "Archived"}}))
    return changes


def check_alias(alias: str) -> str:
    if not _ALIAS.match(alias or ""):
        raise ValueError(
            f"Invalid alias {alias!r}: use 1 to 63 letters, digits, '_' or '-' (the ModelVersion CRD's aliases)"
        )
    if _RESERVED_ALIAS.match(alias):
        raise ValueError(f"Invalid alias name: '{alias}'. Aliases cannot be 'latest' or of the form 'v<number>'.")
    return alias


def _aliases_patch(aliases: list[str]) -> dict[str, Any]:
    return {"spec": {"aliases": aliases or None}}  # null removes the field


def plan_set_alias(
    versions: Sequence[Mapping[str, Any]], model: str, alias: str, version: int | str
) -> list[SpecChange]:
    """Point ``alias`` at ``version``: the version lists it, and every other version that
    lists it drops it (in Modelship the newest claimant would hold it; MLflow moves it)."""
    check_alias(alias)
    target = find_version(versions, model, version)
    changes = []
    for obj in versions:
        listed = list((obj.get("spec") or {}).get("aliases") or [])
        if obj is target and alias not in listed:
            changes.append(SpecChange(_name(obj), _aliases_patch([*listed, alias])))
        elif obj is not target and alias in listed:
            changes.append(SpecChange(_name(obj), _aliases_patch([a for a in listed if a != alias])))
    # The target first: a reader then sees the new holder before the old one lets go.
    return sorted(changes, key=lambda c: c.name != _name(target))


def plan_delete_alias(versions: Sequence[Mapping[str, Any]], alias: str) -> list[SpecChange]:
    """Every version that lists ``alias`` drops it (none: nothing to do, as in MLflow)."""
    changes = []
    for obj in versions:
        listed = list((obj.get("spec") or {}).get("aliases") or [])
        if alias in listed:
            changes.append(SpecChange(_name(obj), _aliases_patch([a for a in listed if a != alias])))
    return changes


def tag_patch(key: str, value: str | None) -> dict[str, Any]:
    """Set (or, with None, delete) one tag: a merge patch of ``spec.tags``."""
    if not key:
        raise ValueError("Missing value for required parameter 'key'.")
    if value is not None and len(value) > 100_000:
        raise ValueError(f"Tag value of {key!r} is {len(value)} characters; at most 100000")
    return {"spec": {"tags": {key: value}}}


def description_patch(description: str | None) -> dict[str, Any]:
    return {"spec": {"description": description or None}}


def tags_dict(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """MLflow's ``[{key, value}]`` as a map (a key twice: the last wins, as in MLflow)."""
    out: dict[str, str] = {}
    for tag in tags or []:
        key = str(tag.get("key") or "")
        if not key:
            raise ValueError("Missing value for required parameter 'key' in tags.")
        out[key] = str(tag.get("value") if tag.get("value") is not None else "")
    return out


# --- the model-level view --------------------------------------------------------------------


def registered_model_status(
    model: str,
    versions: Sequence[Mapping[str, Any]],
    *,
    duplicate_of: str | None,
    generation: int | None,
    now: datetime,
    previous_ready: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A RegisteredModel's status from its model's ModelVersions (as the API lists them).

    ``duplicate_of`` names an older RegisteredModel of the same model in the namespace:
    this one is then not the model's entry (Ready False) and the readers ignore it.
    """
    numbered = sorted((v for v in versions if _version_of(v) is not None), key=lambda v: _version_of(v) or 0)
    latest: dict[str, Mapping[str, Any]] = {}
    aliases: dict[str, Mapping[str, Any]] = {}
    for v in numbered:  # ascending: the newest wins
        latest[(v.get("status") or {}).get("stage") or "None"] = v
        for alias in (v.get("status") or {}).get("aliases") or []:
            aliases[alias] = v

    def holder(v: Mapping[str, Any]) -> dict[str, Any]:
        return {"version": _version_of(v), "modelVersion": _name(v)}

    status: dict[str, Any] = {
        "versionCount": len(numbered),
        "latestVersion": _version_of(numbered[-1]) if numbered else None,
        "production": _version_of(latest["Production"]) if "Production" in latest else None,
        "staging": _version_of(latest["Staging"]) if "Staging" in latest else None,
        "latestVersions": [{"stage": s, **holder(latest[s])} for s in STAGES if s in latest],
        "aliases": [{"alias": a, **holder(aliases[a])} for a in sorted(aliases)],
    }
    if generation is not None:
        status["observedGeneration"] = generation
    if duplicate_of:
        ready = ("False", "DuplicateModel", f"RegisteredModel {duplicate_of} is the entry of model {model!r}")
    else:
        summary = f"{len(numbered)} version(s) of {model}"
        if status["production"] is not None:
            summary += f"; Production: version {status['production']}"
        ready = ("True", "VersionsListed", summary + ".")
    same = previous_ready and (previous_ready.get("status"), previous_ready.get("reason")) == ready[:2]
    condition = make_condition(READY, ready[0], ready[1], ready[2], now=now, observed_generation=generation)  # type: ignore[arg-type]
    if same and previous_ready:
        condition["lastTransitionTime"] = previous_ready.get("lastTransitionTime") or condition["lastTransitionTime"]
    status["conditions"] = [condition]
    return status
