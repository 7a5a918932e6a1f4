"""Model and artifact URIs: one table of schemes, one S3 client, one way to show a URL.

Every component that takes a URI parses it here, as MLflow's artifact repository registry
maps each scheme to one implementation: :data:`SCHEMES` maps a scheme to the parser that
turns a URI into one of the typed references below, and :func:`parse` looks it up.

============================  ==================================================
``/path``, ``file:///path``   :class:`LocalURI`: a directory on this machine
``runs:/<run>/<path>``        :class:`RunsURI`: a path in a tracking run's artifacts
``models:/<name>/<ref>``      :class:`ModelsURI`: ``ref`` a version, a stage or ``latest``;
``models:/<name>@<alias>``    an alias; ``models:/<m-id>`` an MLflow 3 logged model
``mlflow-artifacts:/<path>``  :class:`ArtifactsURI`: a path behind the tracking server's
                              artifact proxy (``mlflow-artifacts://host:port/<path>`` too)
``s3://<bucket>/<key>``       :class:`S3URI`: objects in S3-compatible storage
============================  ==================================================

What a reference resolves to is its user's business (``modelship.models.uri`` downloads,
``controllers.registry_source`` reads the ``MLmodel``, the tracking store serves); the
grammar is here once. :func:`s3_client` is the one S3 client; :func:`redact_url` is the one
way any component shows a URL. Pure but for ``s3_client``; imports nothing of Modelship.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

STAGES = ("None", "Staging", "Production", "Archived")
"""The registry's stages, as MLflow spells them."""


class URIError(ValueError):
    """The URI is malformed, or of a scheme nothing here reads."""


@dataclass(frozen=True)
class LocalURI:
    uri: str
    path: str
    """The local path (a ``file://`` URI's path unquoted)."""


@dataclass(frozen=True)
class RunsURI:
    uri: str
    run_id: str
    path: str
    """The path under the run's artifact root, without leading or trailing slashes."""


@dataclass(frozen=True)
class ModelsURI:
    uri: str
    name: str
    """The registered model's name; for a logged model (``models:/m-...``), its id."""
    ref: str
    """What names the version: digits, a stage, ``latest``, ``@alias``, or ``""`` for a
    logged model."""

    @property
    def logged_model_id(self) -> str | None:
        """The id of the MLflow 3 logged model this URI names, if it names one."""
        return self.name if not self.ref else None

    @property
    def alias(self) -> str | None:
        return self.ref[1:] if self.ref.startswith("@") else None

    @property
    def version(self) -> str | None:
        return self.ref if self.ref.isdigit() else None

    @property
    def stage(self) -> str | None:
        """MLflow's spelling of the stage the ref names (case-insensitive), else None."""
        return next((s for s in STAGES if s.lower() == self.ref.lower()), None)

    @property
    def latest(self) -> bool:
        return self.ref.lower() == "latest"


@dataclass(frozen=True)
class ArtifactsURI:
    uri: str
    path: str
    """The path behind the artifact proxy (normalised; ``""`` for its root)."""


@dataclass(frozen=True)
class S3URI:
    uri: str
    bucket: str
    key: str
    """The key or prefix, without leading or trailing slashes."""


ModelSource = LocalURI | RunsURI | ModelsURI | ArtifactsURI | S3URI


def _local(uri: str) -> LocalURI:
    parts = urlsplit(uri)
    return LocalURI(uri, unquote(parts.path) if parts.scheme.lower() == "file" else uri)


def _runs(uri: str) -> RunsURI:
    run_id, _, path = _rest(uri).partition("/")
    if not run_id:
        raise URIError(f"{redact_url(uri)}: expected runs:/<run_id>/<path>")
    return RunsURI(uri, run_id, path.strip("/"))


def _models(uri: str) -> ModelsURI:
    rest = _rest(uri)
    if "/" not in rest and "@" not in rest and rest.startswith("m-"):
        return ModelsURI(uri, rest, "")
    if "@" in rest and "/" not in rest.split("@", 1)[1]:
        name, alias = rest.split("@", 1)
        ref = "@" + alias
    else:
        name, _, ref = rest.rpartition("/")
    if not name or not ref or ref == "@":
        raise URIError(f"{redact_url(uri)}: expected models:/<name>/<version|stage|latest> or models:/<name>@<alias>")
    return ModelsURI(uri, name, ref)


def _artifacts(uri: str) -> ArtifactsURI:
    # Normalised but not resolved: a ".." stays for safe_path to refuse.
    path = posixpath.normpath(unquote(urlsplit(uri).path).lstrip("/") or ".")
    return ArtifactsURI(uri, "" if path == "." else path)


def _s3(uri: str) -> S3URI:
    parts = urlsplit(uri)
    if not parts.netloc:
        raise URIError(f"{redact_url(uri)}: expected s3://<bucket>/<prefix>")
    return S3URI(uri, parts.netloc, parts.path.strip("/"))


def _rest(uri: str) -> str:
    """What follows ``scheme:`` and its slashes."""
    return uri.split(":", 1)[1].lstrip("/")


SCHEMES: Mapping[str, Callable[[str], ModelSource]] = {
    "": _local,
    "file": _local,
    "runs": _runs,
    "models": _models,
    "mlflow-artifacts": _artifacts,
    "s3": _s3,
}
"""Each scheme a model or artifact URI may have, and its parser."""


def scheme_of(uri: str) -> str:
    """The URI's scheme, lower case; ``""`` for a plain path (a Windows drive letter too)."""
    scheme = urlsplit(uri).scheme.lower()
    return "" if len(scheme) == 1 and os.name == "nt" else scheme


def local_path(uri: str) -> str | None:
    """The filesystem path a plain path or ``file:`` URI names on this machine; None for any
    other URI, and for ``file://<host>/...`` of another host."""
    if scheme_of(uri) not in ("", "file"):
        return None
    parts = urlsplit(uri)
    if parts.scheme and parts.netloc not in ("", "localhost"):
        return None
    return unquote(parts.path) if parts.scheme else uri


def decoded_path(uri: str) -> str:
    """The path part of ``uri`` once every percent-encoding is undone (``%252e`` too), as
    MLflow checks a registry source for relative references."""
    while (once := unquote(uri.replace("+", " "))) != uri:
        uri = once
    return urlsplit(uri).path


def parse(uri: str) -> ModelSource:
    """The typed reference ``uri`` is; URIError if it is malformed or of another scheme."""
    scheme = scheme_of(uri)
    parser = SCHEMES.get(scheme)
    if parser is None:
        raise URIError(
            f"unsupported URI scheme {scheme!r} in {redact_url(uri)!r}: use a path, file://, runs:/, "
            "models:/, mlflow-artifacts:/ or s3://"
        )
    return parser(uri)


# -- S3 ------------------------------------------------------------------------------------


def s3_client(environ: Mapping[str, str] = os.environ) -> Any:
    """The boto3 S3 client, configured from the environment as MLflow configures its own.

    ``MLFLOW_S3_ENDPOINT_URL`` names the endpoint of an S3-compatible store (MinIO, Ceph
    RGW...); unset, boto3 resolves the endpoint itself, from ``AWS_ENDPOINT_URL_S3``,
    ``AWS_ENDPOINT_URL`` or the profile's ``endpoint_url``, as with MLflow.
    ``MLFLOW_S3_IGNORE_TLS=true`` turns off certificate checks. Credentials come from
    boto3's usual chain (environment, IRSA / pod identity, config files).
    """
    try:
        import boto3
    except ImportError:  # pragma: no cover - boto3 is a dependency of the package
        raise URIError("s3:// URIs need boto3 installed (pip install boto3)") from None
    endpoint = environ.get("MLFLOW_S3_ENDPOINT_URL") or None
    verify = False if environ.get("MLFLOW_S3_IGNORE_TLS", "").lower() in ("true", "1") else None
    return boto3.client("s3", endpoint_url=endpoint, verify=verify)


# -- showing URLs --------------------------------------------------------------------------

# scheme://userinfo@ : the userinfo runs to the last "@" before the path, query or fragment.
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")


def redact_url(text: str) -> str:
    """``text`` with the user name and password of every URL in it replaced by ``***``.

    ``https://user:password@host/x`` becomes ``https://***@host/x``; a user name alone is
    redacted too, since it is often a token (``https://<token>@github.com``). For a log
    line, an error message or a status: never for a URL that is to be used.
    """
    return _USERINFO.sub(r"\1***@", text)


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without its user name and password, and them (unquoted), if it had any."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), (unquote(user), unquote(password))
