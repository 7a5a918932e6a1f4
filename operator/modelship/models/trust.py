"""What a model may run when it is loaded: the server operator's decision, not the model's.

pickle and cloudpickle files run whatever code their author put in them when unpickled,
and a ``loader_module`` model imports Python code the model names (and may ship in its
``code`` directory). All of them are refused unless the operator of the server opts in:
``allow_pickle=True``, ``MODELSHIP_ALLOW_PICKLE=true`` or ``modelship serve --allow-pickle``.

skops files load without the opt-in: skops rebuilds only types it trusts. The types
trusted beyond skops' defaults come from the server's configuration
(``MODELSHIP_SKOPS_TRUSTED_TYPES``, comma-separated), never from the ``skops_trusted_types``
list of the model's own ``MLmodel`` file, which would let a model trust ``os.system``.

Pure: reads the environment only in ``TrustPolicy.from_env``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ALLOW_PICKLE_ENV = "MODELSHIP_ALLOW_PICKLE"
SKOPS_TRUSTED_TYPES_ENV = "MODELSHIP_SKOPS_TRUSTED_TYPES"
ALLOW_PICKLE_FLAG = "--allow-pickle"

# What pydantic-settings accepts for a bool, so the variable reads as the other settings do.
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


class UntrustedModelError(ValueError):
    """The model would run code, or rebuild types, that the server does not trust."""


@dataclass(frozen=True)
class TrustPolicy:
    """What the server lets models do when they load. The default trusts the least."""

    allow_pickle: bool = False
    """Load pickle and cloudpickle files and ``loader_module`` models (they run code)."""
    skops_trusted_types: tuple[str, ...] = ()
    """Types a skops file may contain beyond skops' own defaults."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TrustPolicy:
        """The policy of ``MODELSHIP_ALLOW_PICKLE`` and ``MODELSHIP_SKOPS_TRUSTED_TYPES``."""
        raw = environ.get(ALLOW_PICKLE_ENV, "").strip().lower()
        if raw not in _TRUE | _FALSE:
            raise ValueError(f"{ALLOW_PICKLE_ENV}={environ[ALLOW_PICKLE_ENV]!r} is not a boolean (use true or false)")
        return cls(
            allow_pickle=raw in _TRUE,
            skops_trusted_types=split_types(environ.get(SKOPS_TRUSTED_TYPES_ENV, "")),
        )

    @classmethod
    def resolve(
        cls,
        allow_pickle: bool | None = None,
        skops_trusted_types: Iterable[str] | str | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> TrustPolicy:
        """Explicit arguments win; what is left ``None`` comes from the environment."""
        needs_env = allow_pickle is None or skops_trusted_types is None
        env = cls.from_env(environ) if needs_env else cls()
        return cls(
            allow_pickle=env.allow_pickle if allow_pickle is None else allow_pickle,
            skops_trusted_types=(
                env.skops_trusted_types if skops_trusted_types is None else split_types(skops_trusted_types)
            ),
        )

    def require_code(self, what: str) -> None:
        """Refuse to go on loading ``what`` (which runs the model's code) without the opt-in."""
        if self.allow_pickle:
            return
        raise UntrustedModelError(
            f"refusing to load the model: {what}, which runs the code of whoever made the "
            f"model. Serve only models from a source you trust, and tell the server so: "
            f"`modelship serve {ALLOW_PICKLE_FLAG}` (or {ALLOW_PICKLE_ENV}=true)"
        )


def split_types(value: Iterable[str] | str) -> tuple[str, ...]:
    """``"a.B, c.D"`` (or a list) as ``("a.B", "c.D")``, blanks dropped."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(t.strip() for t in items if t and t.strip())
