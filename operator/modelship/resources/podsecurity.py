"""Pod Security ``restricted`` for every pod the operator makes: trial Jobs and model servers.

The profile (https://kubernetes.io/docs/concepts/security/pod-security-standards/) wants,
of each pod: ``runAsNonRoot``, a ``RuntimeDefault`` (or Localhost) seccomp profile; of each
container, init and sidecar containers included: ``allowPrivilegeEscalation: false`` and
every capability dropped. The chart's own pods use the same values
(``charts/modelship/templates/_helpers.tpl``), and e2e namespaces enforce the profile, so
the API server refuses a pod that lacks one of them.

Pure: dicts in the shape of a PodSpec.
"""

from __future__ import annotations

from typing import Any

RUN_AS = 10001
"""The image's user and group (``USER 10001:10001`` in the Dockerfile)."""


def pod_security_context() -> dict[str, Any]:
    """A PodSpec's securityContext: not root, the image's user, the runtime's default seccomp."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(*, read_only_root: bool) -> dict[str, Any]:
    """A container's securityContext. ``read_only_root`` for Modelship's own processes, which
    write only to their volumes; not for a trainer, whose user code may write anywhere."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
