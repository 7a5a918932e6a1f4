"""Materialise a pod's volumes as directories on the node (the agent's side of mounts)."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.cluster.podspec import ConfigError, Lookup, field_value

# token(namespace, service_account, audience, expiration_seconds, pod_name, pod_uid) -> JWT
TokenIssuer = Callable[[str, str, str | None, int, str, str], str]
# claim_path(namespace, claim_name) -> the node directory of the PersistentVolume bound to it
ClaimResolver = Callable[[str, str], Path]


def _write_file(root: Path, rel: str, content: str | bytes, mode: int | None) -> None:
    path = root / rel
    if ".." in Path(rel).parts:
        raise ConfigError(f"volume path {rel!r} must not contain '..'")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content.encode() if isinstance(content, str) else content)
    if mode is not None:
        tmp.chmod(mode)
    os.replace(tmp, path)


def _write_keys(
    root: Path, data: dict[str, str | bytes], items: list[dict[str, Any]] | None, default_mode: int | None, what: str
) -> None:
    if items:
        for item in items:
            if item["key"] not in data:
                raise ConfigError(f"{what}: key {item['key']!r} not found")
            _write_file(root, item["path"], data[item["key"]], item.get("mode", default_mode))
    else:
        for key, value in data.items():
            _write_file(root, key, value, default_mode)


def _source(
    kind: str, ref: dict[str, Any], namespace: str, lookup: Lookup, root: Path, default_mode: int | None
) -> None:
    name = ref.get("name") or ref.get("secretName")
    data = lookup(kind, namespace, name)
    if data is None:
        if ref.get("optional"):
            return
        raise ConfigError(f'{kind} "{name}" not found')
    raw: dict[str, str | bytes] = dict(data)
    _write_keys(root, raw, ref.get("items"), ref.get("defaultMode", default_mode), f"{kind} {name}")


def prepare(
    pod: dict[str, Any],
    volume: dict[str, Any],
    root: Path,
    lookup: Lookup,
    issue_token: TokenIssuer,
    claim_path: ClaimResolver | None = None,
) -> Path:
    """Fill ``root`` for one volume and return the directory to bind-mount."""
    namespace = pod["metadata"]["namespace"]
    root.mkdir(parents=True, exist_ok=True)
    if "emptyDir" in volume:
        return root
    if "hostPath" in volume:
        return Path(volume["hostPath"]["path"])
    if "persistentVolumeClaim" in volume:
        if claim_path is None:
            raise ConfigError(f"volume {volume['name']!r}: this node cannot resolve PersistentVolumeClaims")
        return claim_path(namespace, volume["persistentVolumeClaim"]["claimName"])
    if "configMap" in volume:
        _source("configmap", volume["configMap"], namespace, lookup, root, None)
        return root
    if "secret" in volume:
        _source("secret", volume["secret"], namespace, lookup, root, None)
        return root
    if "downwardAPI" in volume:
        _downward(pod, volume["downwardAPI"].get("items") or [], root, None)
        return root
    if "projected" in volume:
        proj = volume["projected"]
        mode = proj.get("defaultMode")
        for src in proj.get("sources") or []:
            if "serviceAccountToken" in src:
                sat = src["serviceAccountToken"]
                token = issue_token(
                    namespace,
                    pod["spec"].get("serviceAccountName") or "default",
                    sat.get("audience"),
                    int(sat.get("expirationSeconds") or 3600),
                    pod["metadata"]["name"],
                    pod["metadata"]["uid"],
                )
                _write_file(root, sat["path"], token, mode)
            elif "configMap" in src:
                _source("configmap", src["configMap"], namespace, lookup, root, mode)
            elif "secret" in src:
                _source("secret", src["secret"], namespace, lookup, root, mode)
            elif "downwardAPI" in src:
                _downward(pod, src["downwardAPI"].get("items") or [], root, mode)
        return root
    kinds = sorted(k for k in volume if k != "name")
    raise ConfigError(f"volume {volume['name']!r}: {kinds} volumes are not supported by the test bed")


def _downward(pod: dict[str, Any], items: list[dict[str, Any]], root: Path, mode: int | None) -> None:
    for item in items:
        if "fieldRef" in item:
            _write_file(root, item["path"], field_value(pod, item["fieldRef"]["fieldPath"]), item.get("mode", mode))


def decode_secret(data: dict[str, str] | None) -> dict[str, str]:
    return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (data or {}).items()}
