"""Generate CustomResourceDefinitions from the pydantic models (``modelship crds``).

Pydantic writes JSON Schema; a CRD needs a *structural* OpenAPI v3 schema. The
translation inlines ``$ref``s, turns ``X | None`` into an optional ``X``, drops titles and
null defaults, and keeps the ``x-kubernetes-*`` extensions the models carry.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import yaml

from modelship.api.common import GROUP, VERSION
from modelship.api.kinds import KINDS, Kind

_DROP = {"title", "$defs", "discriminator"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        target.update(extra)
        return _resolve(target, defs)
    return {k: _resolve(v, defs) for k, v in node.items()}


def _structural(node: Any) -> Any:
    if isinstance(node, list):
        return [_structural(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    any_of = node.get("anyOf")
    if any_of and not node.get("x-kubernetes-int-or-string"):
        non_null = [s for s in any_of if s.get("type") != "null"]
        if len(non_null) == 1 and len(non_null) < len(any_of):
            merged = {k: v for k, v in node.items() if k != "anyOf"}
            merged.update(non_null[0])
            for key in ("description", "default"):
                if key in node:
                    merged[key] = node[key]
            node = merged
    if node.get("default", 0) is None:
        del node["default"]
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if node.get("x-kubernetes-preserve-unknown-fields") and node.get("type") != "object":
        node = {k: v for k, v in node.items() if k in ("description", "x-kubernetes-preserve-unknown-fields")}
    if "exclusiveMinimum" in node and not isinstance(node["exclusiveMinimum"], bool):
        node["minimum"], node["exclusiveMinimum"] = node["exclusiveMinimum"], True
    if "exclusiveMaximum" in node and not isinstance(node["exclusiveMaximum"], bool):
        node["maximum"], node["exclusiveMaximum"] = node["exclusiveMaximum"], True
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _structural(value)
        elif key == "anyOf":
            out[key] = [_structural(s) for s in value]
        else:
            out[key] = value
    if out.get("additionalProperties") is False:
        del out["additionalProperties"]
    return out


def openapi_schema(model: type) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one pydantic model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")  # type: ignore[attr-defined]
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _structural(_resolve(raw, defs))
    return schema


def build_crd(kind: Kind) -> dict[str, Any]:
    spec_schema = openapi_schema(kind.spec)
    status_schema = openapi_schema(kind.status)
    columns = [{**c, "priority": int(c["priority"])} if "priority" in c else dict(c) for c in kind.columns]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": {"app.kubernetes.io/part-of": "modelship"}},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": kind.short_names,
                "categories": ["modelship"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": kind.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def render(kind: Kind) -> str:
    header = "# Generated by `modelship crds` from modelship.api; do not edit by hand.\n"
    return header + yaml.safe_dump(build_crd(kind), sort_keys=False, width=120)


def crd_files() -> dict[str, str]:
    """File name -> YAML text of every CRD."""
    return {f"{k.crd_name}.yaml": render(k) for k in KINDS}


def write(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in crd_files().items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", "-o", default="crds", help="directory for the YAML files (default: crds)")


def run(args: argparse.Namespace) -> int:
    for path in write(Path(args.output_dir)):
        print(path)
    return 0
