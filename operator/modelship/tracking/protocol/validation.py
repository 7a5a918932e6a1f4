"""MLflow's input rules (names, lengths, batch limits), as pure functions.

The limits are MLflow's, so a script that works against ``mlflow server`` works here and a
script that MLflow refuses is refused here with the same error code.
"""

from __future__ import annotations

import json
import math
import posixpath
import re

from modelship.tracking.errors import TrackingError, invalid

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 256
MAX_DATASET_NAME_LENGTH = 500
MAX_DATASET_DIGEST_LENGTH = 36
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
    """A metric, param or tag key (``what``), checked as MLflow checks it, in its wording."""
    if isinstance(name, str) and name in _GOOD_KEYS:
        return name
    _check_key(name, what)
    if len(_GOOD_KEYS) < 100_000:  # a run has few distinct keys; bound the cache anyway
        _GOOD_KEYS.add(name)  # type: ignore[arg-type]
    return name  # type: ignore[return-value]


_GOOD_KEYS: set[str] = set()
# MLflow's names for a key in its messages: the parameter of the check, the entity of the limit.
_KEY_PARAMETER = {"metric": "name", "param": "key", "tag": "key"}
_KEY_ENTITY = {"metric": "Metric name", "param": "Param key", "tag": "key"}
API_DOCS_HINT = "See the API docs for more information about request parameters."


def show(value: object) -> str:
    """A value as MLflow shows it in a message: JSON, cut to a readable length."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def invalid_value(path: str, value: object, message: str = "") -> TrackingError:
    """MLflow's ``Invalid value <json> for parameter '<path>' supplied[: message]``."""
    tail = f": {message}" if message else "."
    return invalid(f"Invalid value {show(value)} for parameter '{path}' supplied{tail}")


def wrong_type(path: str, value: object) -> TrackingError:
    """A field of the wrong JSON type, worded as ``mlflow server`` words it."""
    return invalid_value(path, value, f"Hint: Value was of type '{type(value).__name__}'. {API_DOCS_HINT}")


def missing(path: str) -> TrackingError:
    return invalid(f"Missing value for required parameter '{path}'. {API_DOCS_HINT}")


def exceeds(entity: str, limit: int, context: str = "") -> TrackingError:
    return invalid(f"'{entity}' exceeds the maximum length of {limit} characters{context}")


def _check_key(name: object, what: str) -> str:
    path = _KEY_PARAMETER.get(what, "key")
    if not isinstance(name, str) or name == "":
        raise missing(path)
    if len(name) > MAX_KEY_LENGTH:
        raise exceeds(_KEY_ENTITY.get(what, "key"), MAX_KEY_LENGTH, f" ({what} '{name[:40]}...')")
    if not _KEY.match(name):
        raise invalid_value(
            path,
            name,
            "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), "
            "spaces ( ), colon(:) and slashes (/).",
        )
    norm = posixpath.normpath(name)
    if norm != name or norm == "." or norm.startswith(("..", "/")):
        raise invalid_value(
            path,
            name,
            "Names may be treated as files in certain cases, and must not resolve to other names "
            f"when treated as such. This name would resolve to {norm!r}",
        )
    return name


def string(value: object, what: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise wrong_type(what, value)
    if len(value) > max_len:
        raise exceeds(what, max_len)
    return value


def param_value(key: str, value: object) -> str:
    """A param's value: refused past 6000 characters, in MLflow's words (``mlflow server``
    truncates it by default instead; refusing loses nothing silently)."""
    if isinstance(value, str) and len(value) > MAX_PARAM_VALUE_LENGTH:
        raise exceeds("Param value", MAX_PARAM_VALUE_LENGTH, f" (param '{key[:100]}')")
    return string(value, "value", MAX_PARAM_VALUE_LENGTH)


def tag_value(key: str, value: object) -> str:
    if isinstance(value, str) and len(value) > MAX_TAG_VALUE_LENGTH:
        raise exceeds("value", MAX_TAG_VALUE_LENGTH, f" (tag '{key[:100]}')")
    return string(value, "value", MAX_TAG_VALUE_LENGTH)


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
    if value <= 0:
        raise invalid(f"Invalid value {value} for parameter 'max_results' supplied. It must be a positive integer")
    if value > limit:
        raise invalid(f"Invalid value {value} for parameter 'max_results' supplied. It must be at most {limit}")
    return value


def encode_float(value: float) -> float | str:
    """Proto3 JSON spelling of a double: NaN and infinities are strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value
