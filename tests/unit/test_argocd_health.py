"""Argo CD health checks of every kind (manifests/argocd/resource_customizations), run by gopher-lua.

The layout is Argo CD's own (resource_customizations/<group>/<Kind>/health.lua,
health_test.yaml, testdata/), so the checks could move upstream as they are. Each
testdata object is valid against the kind's CRD schema, every phase the kind's status
can take has a case, and the scripts run in the interpreter Argo CD embeds, with the
libraries Argo CD opens (tests/argocd/luahealth).
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from scripts import render_install
from tests.argocd import luahealth

from modelship.api import GROUP, KINDS, Kind

ROOT = Path(__file__).resolve().parents[2]
HEALTH = ROOT / "manifests" / "argocd" / "resource_customizations" / GROUP


def _cases(kind: Kind) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(expected healthStatus, object) of each test of the kind's health_test.yaml."""
    tests = yaml.safe_load((HEALTH / kind.kind / "health_test.yaml").read_text())["tests"]
    return [(t["healthStatus"], yaml.safe_load((HEALTH / kind.kind / t["inputPath"]).read_text())) for t in tests]


def _status_phases(kind: Kind) -> set[str]:
    """Every value status.phase can take, from the kind's pydantic status model."""
    field = kind.status.model_fields.get("phase")
    if field is None:
        return set()
    return {
        a for arg in typing.get_args(field.annotation) for a in typing.get_args(arg) or (arg,) if isinstance(a, str)
    }


def test_every_kind_has_a_health_check() -> None:
    assert sorted(p.name for p in HEALTH.iterdir()) == sorted(k.kind for k in KINDS)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_health_checks_give_the_expected_status(kind: Kind) -> None:
    cases = _cases(kind)
    script = (HEALTH / kind.kind / "health.lua").read_text()
    results = luahealth.run(script, [obj for _, obj in cases])
    assert results == [expected for expected, _ in cases]
    statuses = {r["status"] for r in results}
    assert {"Healthy", "Progressing", "Degraded"} <= statuses, "each check tells all three apart"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_testdata_are_valid_objects_covering_every_phase(kind: Kind) -> None:
    crd = yaml.safe_load((ROOT / "crds" / f"{kind.crd_name}.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    seen = set()
    for _, obj in _cases(kind):
        assert (obj["apiVersion"], obj["kind"]) == (kind.api_version, kind.kind)
        jsonschema.Draft4Validator(schema).validate(obj)
        seen.add((obj.get("status") or {}).get("phase"))
    missing = _status_phases(kind) - seen
    assert not missing, f"{kind.kind}: add testdata for status.phase {sorted(missing)}"
    assert None in seen, "an object the operator has not seen yet (no status) is a case too"


def test_a_script_error_is_reported() -> None:
    """The runner fails loudly, so a broken health.lua cannot pass as a status."""
    (result,) = luahealth.run("return obj.status.nothing.here", [{"status": {}}])
    assert "error" in result and "nothing" not in result.get("status", "")


def test_the_argocd_cm_patch_holds_every_script_verbatim() -> None:
    patch = yaml.safe_load(render_install.ARGOCD_CM_PATCH.read_text())["data"]
    assert patch == {
        f"resource.customizations.health.{GROUP}_{k.kind}": (HEALTH / k.kind / "health.lua").read_text() for k in KINDS
    }
    assert render_install.ARGOCD_CM_PATCH.read_text() == render_install.render_argocd_cm_patch(), (
        f"manifests/argocd/argocd-cm-patch.yaml drifted: run `{render_install.COMMAND}`"
    )
