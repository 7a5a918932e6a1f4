"""ModelVersion handlers: accept the spec; later issues add version numbers, stages, gates and webhooks."""

from __future__ import annotations

from typing import Any

import kopf

from modelship.api import ModelVersionSpec, kind_by_name
from modelship.controllers.common import accept_spec, register_reconcile
from modelship.controllers.metrics import METRICS

KIND = kind_by_name("ModelVersion")


@METRICS.measured(KIND.kind)
async def reconcile(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    """Observe the ModelVersion, decide with pure functions, write status into ``patch``."""
    spec = accept_spec(KIND, ModelVersionSpec, body, patch)
    # Later issues reconcile the children from ``spec`` here, through resources/ builders.
    logger.debug("%s spec accepted (%d fields set)", KIND.kind, len(spec.model_fields_set))


def register(registry: kopf.OperatorRegistry) -> None:
    """Register this kind's handlers on ``registry``."""
    register_reconcile(registry, KIND, reconcile)
