"""kubeconform, and the JSON schemas it checks against, made here from the pinned Kubernetes release.

- The binary: ``go install github.com/yannh/kubeconform/cmd/kubeconform@<version>`` from the Go
  module proxy into ``~/.cache/modelship/tools/kubeconform-<version>/``.
- The schemas: the ``k8s.io/kubernetes`` module of the release the bed runs (the pin of
  tests/cluster/build.sh) carries the API server's own OpenAPI document,
  ``api/openapi-spec/swagger.json``; every definition with a group-version-kind becomes one
  standalone JSON schema (its references kept under ``definitions``), strict: an object with
  properties allows no others (``additionalProperties: false``), as kubeconform's ``-strict``
  schemas do. Our CRDs' ``openAPIV3Schema`` become the schemas of our kinds the same way.
  Nothing is downloaded but Go modules; the schemas are cached in
  ``~/.cache/modelship/tools/k8s-schemas-<release>-<hash of this file and crds/>/``.

scripts/setup.sh runs ``python -m tests.tools.kubeconform``; :func:`binary` and :func:`schemas`
make what is missing on first use.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
VERSION = "v0.8.0"
# kubeconform's template: {{ .Group }} is the apiVersion's group, or "v1" for the core group.
LOCATION = "{{ .ResourceKind }}_{{ .Group }}_{{ .ResourceAPIVersion }}.json"


def _tools() -> Path:
    root = (
        os.environ.get("MODELSHIP_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelship"
    )
    return Path(root) / "tools"


def kubernetes_version() -> str:
    match = re.search(
        r'K8S_VERSION="\$\{MODELSHIP_K8S_VERSION:-(v[0-9.]+)\}"', (ROOT / "tests/cluster/build.sh").read_text()
    )
    assert match, "tests/cluster/build.sh pins K8S_VERSION"
    return match.group(1)


def _go(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["go", *args],
        cwd=cwd,
        env={**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert done.returncode == 0, f"go {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def binary() -> Path:
    path = _tools() / f"kubeconform-{VERSION}" / "kubeconform"
    if not path.exists():
        _go(
            "install", "-trimpath", "-ldflags", "-s -w", f"github.com/yannh/kubeconform/cmd/kubeconform@{VERSION}",
            env={"GOBIN": str(path.parent)},
        )  # fmt: skip
    return path


SPECIAL = {
    # What the API server accepts for these, though the document says "string".
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": ["string", "integer"]},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": ["string", "number"]},
}


def _strict(node: Any) -> Any:
    """The schema with ``additionalProperties: false`` on every object that lists its properties."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _swagger_schema(definitions: dict[str, Any], name: str) -> dict[str, Any]:
    """One standalone schema: the definition, and every definition it reaches under ``definitions``."""
    reached: dict[str, Any] = {}

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(n) for n in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            target = ref.removeprefix("#/definitions/")
            if target in SPECIAL:
                return {**SPECIAL[target], **{k: v for k, v in node.items() if k != "$ref"}}
            if target not in reached:
                reached[target] = {}
                reached[target] = rewrite(definitions[target])
            return {"$ref": ref}
        return {k: rewrite(v) for k, v in node.items()}

    root = rewrite(definitions[name])
    return _strict({**root, "definitions": reached})


def crd_schemas(crds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """File name -> strict schema of each version of each CRD."""
    out = {}
    for crd in crds:
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
            props = schema.setdefault("properties", {})
            props["metadata"] = {"type": "object"}  # ObjectMeta, checked by the API server
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            out[f"{kind.lower()}_{group}_{version['name']}.json"] = _strict(schema)
    return out


def _crd_schemas() -> dict[str, dict[str, Any]]:
    return crd_schemas([yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds").glob("*.yaml"))])


def schemas() -> Path:
    """The directory of schemas for LOCATION, made once per release and source."""
    release = kubernetes_version()
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        digest.update(path.read_bytes())
    directory = _tools() / f"k8s-schemas-{release}-{digest.hexdigest()[:12]}"
    if (directory / "done").exists():
        return directory
    module = json.loads(_go("mod", "download", "-json", f"k8s.io/kubernetes@{release}", cwd=_tools()))["Dir"]
    swagger = json.loads((Path(module) / "api" / "openapi-spec" / "swagger.json").read_text())
    definitions = swagger["definitions"]
    directory.mkdir(parents=True, exist_ok=True)
    for name, definition in definitions.items():
        for gvk in definition.get("x-kubernetes-group-version-kind") or []:
            group = gvk["group"] or "v1"
            file = directory / f"{gvk['kind'].lower()}_{group}_{gvk['version']}.json"
            file.write_text(json.dumps(_swagger_schema(definitions, name)))
    for file_name, schema in _crd_schemas().items():
        (directory / file_name).write_text(json.dumps(schema))
    (directory / "done").write_text(release)
    return directory


def run(*paths: Path | str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``kubeconform -strict`` over files (or ``-`` with stdin) against the generated schemas;
    a CRD in stdin (kopf's peering CRDs in the chart) gives the schema of its own kind too."""
    command = [str(binary()), "-strict", "-summary", "-output", "text", "-schema-location", str(schemas() / LOCATION)]
    with tempfile.TemporaryDirectory() as extra:
        crds = [d for d in yaml.safe_load_all(stdin or "") if d and d.get("kind") == "CustomResourceDefinition"]
        for name, schema in crd_schemas(crds).items():
            (Path(extra) / name).write_text(json.dumps(schema))
        command += ["-schema-location", str(Path(extra) / LOCATION)]
        return subprocess.run(
            [*command, *map(str, paths)], input=stdin, capture_output=True, text=True, check=False, timeout=600
        )


if __name__ == "__main__":
    print(binary(), schemas())
    sys.exit(0)
