"""Typing of entry-point parameter values: float, int, string, path and uri.

MLflow itself checks only ``uri`` (and the existence of local ``path`` values); we also
refuse a float or int parameter that is not a number, so a typo fails before a trial's
Job starts rather than inside the training script. Numbers are normalised to the text
Python prints for them (``1`` as a float becomes ``1.0``, ``1e-2`` becomes ``0.01``), the
same text ``mlflow.log_param`` writes for a parsed value, so the parameter the runner
logs and the one a training script logs after ``argparse`` agree (MLflow refuses to change
a logged parameter). Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlparse

ParameterType = Literal["float", "int", "string", "path", "uri"]
PARAMETER_TYPES: tuple[ParameterType, ...] = ("float", "int", "string", "path", "uri")

Value = str | int | float | bool

_INT = re.compile(r"[+-]?[0-9]+")


class ParameterValueError(ValueError):
    """A value that does not fit its parameter's type; the message names both."""


def text(value: Value) -> str:
    """A value as text, the way it appears on a command line and in a logged parameter."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def has_scheme(value: str) -> bool:
    """True when ``value`` is a URI with a scheme (``s3://b/k``, ``file:///x``, ``runs:/r``)."""
    return bool(urlparse(value).scheme)


def coerce(kind: ParameterType, value: Value, *, entry_point: str, parameter: str) -> str:
    """Check ``value`` against ``kind`` and return its canonical text.

    The error message names the entry point and the parameter, e.g.
    ``entry point "main": parameter "alpha" must be a float, got "abc"``.
    """

    def refuse(expected: str) -> ParameterValueError:
        shown = f'"{value}"' if isinstance(value, str) else text(value)
        return ParameterValueError(
            f'entry point "{entry_point}": parameter "{parameter}" must be {expected}, got {shown}'
        )

    if kind == "float":
        if isinstance(value, bool):
            raise refuse("a float")
        if isinstance(value, (int, float)):
            return repr(float(value))
        # float() also accepts "1_0" and surrounding blanks; a command line should not.
        if "_" in value or value != value.strip():
            raise refuse("a float")
        try:
            return repr(float(value))
        except ValueError:
            raise refuse("a float") from None
    if kind == "int":
        if isinstance(value, bool):
            raise refuse("an int")
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if value.is_integer():
                return str(int(value))
            raise refuse("an int")
        if not _INT.fullmatch(value):
            raise refuse("an int")
        return str(int(value))
    if kind == "path":
        if not isinstance(value, str) or not value:
            raise refuse("a non-empty path")
        return value
    if kind == "uri":
        if not isinstance(value, str) or not has_scheme(value):
            raise refuse("a URI with a scheme (such as s3://bucket/key or file:///data)")
        return value
    return text(value)
