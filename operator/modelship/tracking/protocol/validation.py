"""MLflow's input rules (names, lengths, batch limits), as pure functions.

The limits are MLflow's, so a script that works against ``mlflow server`` works here and a
script that MLflow refuses is refused here with the same error code.
"""

from __future__ import annotations

import math
import posixpath
import re

from modelship.tracking.errors import invalid

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 256
MAX_RESULTS_RUNS = 50000
MAX_RESULTS_EXPERIMENTS = 50000
# Integers are stored as BIGINT (steps, timestamps, times, experiment ids): a larger one
# would overflow the database driver, so it is refused as the value of its field.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# One IN list per experiment id in a search; PostgreSQL takes at most 65535 parameters in a
# statement, SQLite 250000 (and this plus the filter's values stays below both).
MAX_SEARCH_EXPERIMENT_IDS = 20000
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
"""A run's statuses (MLflow's ``RunStatus`` names)."""

_KEY = re.compile(r"^[/\w.\- :]*$")
_RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")


def key(name: object, what: str) -> str:
    if isinstance(name, str) and name in _GOOD_KEYS:
        return name
    _check_key(name, what)
    if len(_GOOD_KEYS) < 100_000:  # a run has few distinct keys; bound the cache anyway
        _GOOD_KEYS.add(name)  # type: ignore[arg-type]
    return name  # type: ignore[return-value]


_GOOD_KEYS: set[str] = set()


def _check_key(name: object, what: str) -> str:
    if not isinstance(name, str) or name == "":
        raise invalid(f"Missing value for required parameter '{what}'.")
    if len(name) > MAX_KEY_LENGTH:
        raise invalid(f"{what} '{name[:40]}...' exceeds the maximum length of {MAX_KEY_LENGTH}")
    if not _KEY.match(name):
        raise invalid(
            f"Invalid {what} name: '{name}'. Names may only contain alphanumerics, underscores "
            "(_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )
    norm = posixpath.normpath(name)
    if norm != name or norm == "." or norm.startswith(("..", "/")):
        raise invalid(
            f"Invalid {what} name: '{name}'. Names may be treated as files in "
            "certain cases, and must not resolve to other names when treated as such."
        )
    return name


def string(value: object, what: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise invalid(f"Invalid value for '{what}': expected a string")
    if len(value) > max_len:
        raise invalid(f"'{what}' exceeds the maximum length of {max_len} characters")
    return value


def run_id(value: object) -> str:
    if not isinstance(value, str) or not _RUN_ID.match(value):
        raise invalid(f"Invalid run ID: '{value}'")
    return value


def int64(value: int, what: str) -> int:
    """``value`` if it fits the 64-bit columns it is stored in; else a 400 naming ``what``."""
    if INT64_MIN <= value <= INT64_MAX:
        return value
    shown = str(value) if value.bit_length() < 200 else f"an integer of {value.bit_length()} bits"
    raise invalid(
        f"Invalid value {shown} for '{what}': it must be a 64-bit integer, between {INT64_MIN} and {INT64_MAX}"
    )


def experiment_id_count(n: int) -> None:
    if n > MAX_SEARCH_EXPERIMENT_IDS:
        raise invalid(
            f"Invalid value for 'experiment_ids': a search takes at most "
            f"{MAX_SEARCH_EXPERIMENT_IDS} experiment ids, got {n}"
        )


def metric_value(value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise invalid(f"Got invalid value {value!r} for metric (value must be a number)")
    return float(value)


def batch_sizes(n_metrics: int, n_params: int, n_tags: int) -> None:
    if n_metrics > MAX_METRICS_PER_BATCH:
        raise invalid(
            f"A batch logging request can contain at most {MAX_METRICS_PER_BATCH} metrics. "
            f"Got {n_metrics} metrics. Please split up metrics across multiple requests and try again."
        )
    if n_params > MAX_PARAMS_PER_BATCH:
        raise invalid(
            f"A batch logging request can contain at most {MAX_PARAMS_PER_BATCH} params. "
            f"Got {n_params} params. Please split up params across multiple requests and try again."
        )
    if n_tags > MAX_TAGS_PER_BATCH:
        raise invalid(
            f"A batch logging request can contain at most {MAX_TAGS_PER_BATCH} tags. "
            f"Got {n_tags} tags. Please split up tags across multiple requests and try again."
        )
    if n_metrics + n_params + n_tags > MAX_ENTITIES_PER_BATCH:
        raise invalid(
            f"A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} total metrics, params and tags."
        )


def max_results(value: int | None, default: int, limit: int) -> int:
    if value is None:
        return default
    if value <= 0 or value > limit:
        raise invalid(
            f"Invalid value {value} for parameter 'max_results' supplied. It must be at least 1 and at most {limit}."
        )
    return value


def encode_float(value: float) -> float | str:
    """Proto3 JSON spelling of a double: NaN and infinities are strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value
