"""A small synchronous Kubernetes REST client for the test bed and the e2e tests.

The bed's node agent and the tests speak to the API server in plain JSON over HTTPS, so
what they send is exactly what is on the wire; this keeps them independent of the
generated client's changing surface.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any] | str, method: str, path: str):
        self.status = status
        self.body = body
        message = body.get("message", "") if isinstance(body, dict) else str(body)[:500]
        super().__init__(f"{method} {path}: HTTP {status}: {message}")

    @property
    def message(self) -> str:
        return self.body.get("message", "") if isinstance(self.body, dict) else str(self.body)


class KubeApi:
    def __init__(self, server: str, token: str, ca_file: str | Path, timeout: float = 30.0):
        self.server = server
        self._client = httpx.Client(
            base_url=server,
            verify=ssl.create_default_context(cafile=str(ca_file)),
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )

    @classmethod
    def from_kubeconfig(cls, path: str | Path) -> KubeApi:
        config = yaml.safe_load(Path(path).read_text())
        ctx_name = config["current-context"]
        ctx = next(c["context"] for c in config["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == ctx["user"])
        if "token" in user and "certificate-authority" in cluster:
            return cls(cluster["server"], user["token"], cluster["certificate-authority"])
        return cls._from_embedded(cluster, user)

    @classmethod
    def _from_embedded(cls, cluster: dict[str, Any], user: dict[str, Any]) -> KubeApi:
        """kind's kubeconfig: embedded CA and client certificate instead of a token."""
        import base64
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="kubeapi-"))
        files = {}
        for key, name in (
            ("certificate-authority-data", "ca.crt"),
            ("client-certificate-data", "client.crt"),
            ("client-key-data", "client.key"),
        ):
            data = cluster.get(key) or user.get(key)
            (tmp / name).write_bytes(base64.b64decode(data))
            files[name] = str(tmp / name)
        ctx = ssl.create_default_context(cafile=files["ca.crt"])
        ctx.load_cert_chain(files["client.crt"], files["client.key"])
        api = cls.__new__(cls)
        api.server = cluster["server"]
        api._client = httpx.Client(
            base_url=cluster["server"], verify=ctx, timeout=30.0, headers={"Accept": "application/json"}
        )
        return api

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        params: dict[str, Any] | None = None,
    ) -> Any:
        headers = {}
        content = None
        if body is not None:
            headers["Content-Type"] = content_type
            content = yaml.safe_dump(body) if content_type == APPLY else json.dumps(body)
        resp = self._client.request(method, path, content=content, headers=headers, params=params)
        if resp.status_code >= 400:
            try:
                err: dict[str, Any] | str = resp.json()
            except ValueError:
                err = resp.text
            raise ApiError(resp.status_code, err, method, path)
        return resp.json() if resp.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def text(self, path: str, **params: Any) -> str:
        resp = self._client.get(path, params=params or None)
        if resp.status_code >= 400:
            raise ApiError(resp.status_code, resp.text, "GET", path)
        return resp.text

    def create(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, body)

    def patch(self, path: str, body: Any, content_type: str = MERGE, **params: Any) -> Any:
        return self.request("PATCH", path, body, content_type, params=params or None)

    def apply(self, path: str, body: dict[str, Any], manager: str = "modelship-tests") -> Any:
        return self.request("PATCH", path, body, APPLY, params={"fieldManager": manager, "force": "true"})

    def delete(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        return self.request("DELETE", path, body, params=params or None)

    def exists(self, path: str) -> bool:
        try:
            self.get(path)
            return True
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise

    def watch(
        self, path: str, resource_version: str, timeout_seconds: int = 60, **params: Any
    ) -> Iterator[dict[str, Any]]:
        """Yield watch events ({type, object}) until the server ends the stream."""
        query = {
            "watch": "1",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(timeout_seconds),
            "allowWatchBookmarks": "true",
            **params,
        }
        with self._client.stream("GET", path, params=query, timeout=timeout_seconds + 10) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise ApiError(resp.status_code, resp.text, "WATCH", path)
            for line in resp.iter_lines():
                if line:
                    yield json.loads(line)


def path_for(
    api_version: str, plural: str, namespace: str | None = None, name: str | None = None, subresource: str | None = None
) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    parts = [base]
    if namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name:
        parts.append(name)
    if subresource:
        parts.append(subresource)
    return "/".join(parts)
