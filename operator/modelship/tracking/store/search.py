"""MLflow's search language, parsed into plain clauses (no SQL, no I/O).

Filter: comparisons joined by ``AND``, each ``<entity>.<key> <op> <value>`` where the
entity is ``metrics``/``params``/``tags``/``attributes`` (MLflow's singular forms and
``attr``/``run`` are accepted too) and the key may be quoted with backticks or double
quotes (``tags."mlflow.runName"``). Order by: ``<entity>.<key> [ASC|DESC]``.
Page tokens are opaque base64 of JSON: an offset, or for runs in start-time order the last
run of the page (a keyset token).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Literal

import orjson

from modelship.tracking.errors import invalid
from modelship.tracking.protocol.validation import INT64_MAX

Kind = Literal["metric", "param", "tag", "attribute"]

_ENTITY: dict[str, Kind] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}

STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"})

# Each comparison is one more level of the SQL expression tree, and SQLite refuses a tree
# deeper than 1000; real filters hold a handful of comparisons.
MAX_FILTER_CLAUSES = 200
# All the values of a filter's IN lists: each is a statement parameter (PostgreSQL takes
# 65535 in all, beside up to MAX_SEARCH_EXPERIMENT_IDS experiment ids).
MAX_FILTER_VALUES = 20000
NUMERIC_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
      | (?P<bt>`[^`]*`)
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),])
      | (?P<num>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)(?![\w.]))
      | (?P<word>[A-Za-z_][\w.\-/:]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Clause:
    kind: Kind
    key: str
    op: str
    value: str | float | tuple[str, ...]


@dataclass(frozen=True)
class OrderBy:
    kind: Kind
    key: str
    ascending: bool


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise invalid(f"Invalid search expression near {text[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _unquote(tok: str) -> str:
    if tok[0] == "'":
        return tok[1:-1].replace("''", "'").replace("\\'", "'")
    if tok[0] == '"':
        return tok[1:-1].replace('\\"', '"')
    return tok[1:-1]  # backticks


def _identifier(toks: list[tuple[str, str]], i: int) -> tuple[Kind, str, int]:
    if i >= len(toks) or toks[i][0] not in ("word", "bt", "str"):
        raise invalid("Invalid search expression: expected an identifier")
    kind, text = toks[i]
    if kind != "word":
        return "attribute", _unquote(text), i + 1
    if "." not in text:
        return "attribute", text, i + 1
    entity, _, key = text.partition(".")
    if entity.lower() not in _ENTITY:
        raise invalid(f"Invalid entity type '{entity}'. Valid values are ['metric', 'parameter', 'tag', 'attribute']")
    if key == "":
        if i + 1 >= len(toks) or toks[i + 1][0] not in ("bt", "str"):
            raise invalid(f"Invalid identifier {text!r}")
        return _ENTITY[entity.lower()], _unquote(toks[i + 1][1]), i + 2
    return _ENTITY[entity.lower()], key, i + 1


def parse_filter(text: str | None) -> list[Clause]:
    """Parse a run/model filter string into clauses that are ANDed together."""
    if not text or not text.strip():
        return []
    toks = _tokens(text)
    clauses: list[Clause] = []
    values = 0
    i = 0
    while True:
        if len(clauses) == MAX_FILTER_CLAUSES:
            raise invalid(
                f"Invalid value for 'filter': a filter joins at most {MAX_FILTER_CLAUSES} comparisons with AND"
            )
        kind, key, i = _identifier(toks, i)
        if i >= len(toks):
            raise invalid(f"Invalid filter {text!r}: expected a comparison after {key!r}")
        t, v = toks[i]
        if t == "op":
            op = "!=" if v == "<>" else v
            i += 1
        elif t == "word" and v.upper() in ("LIKE", "ILIKE", "IN"):
            op = v.upper()
            i += 1
        elif t == "word" and v.upper() == "NOT" and i + 1 < len(toks) and toks[i + 1][1].upper() == "IN":
            op = "NOT IN"
            i += 2
        else:
            raise invalid(f"Invalid comparator {v!r} in filter {text!r}")
        value: str | float | tuple[str, ...]
        if op in ("IN", "NOT IN"):
            if i >= len(toks) or toks[i] != ("punct", "("):
                raise invalid(f"Expected a parenthesised list after {op}")
            items: list[str] = []
            i += 1
            while i < len(toks) and toks[i] != ("punct", ")"):
                if toks[i][0] == "str":
                    items.append(_unquote(toks[i][1]))
                elif toks[i] != ("punct", ","):
                    raise invalid(f"Invalid list value {toks[i][1]!r}")
                i += 1
            if i >= len(toks) or not items:
                raise invalid("Unterminated or empty list in filter")
            i += 1
            values += len(items)
            if values > MAX_FILTER_VALUES:
                raise invalid(
                    f"Invalid value for 'filter': its IN lists hold at most {MAX_FILTER_VALUES} values in all"
                )
            value = tuple(items)
        else:
            if i >= len(toks):
                raise invalid(f"Invalid filter {text!r}: missing value")
            t, v = toks[i]
            i += 1
            if kind == "metric" or (kind == "attribute" and key in NUMERIC_ATTRIBUTES):
                if t != "num":
                    raise invalid(f"Expected a numeric value for {key!r}, got {v!r}")
                if op not in NUMERIC_OPS:
                    raise invalid(f"Comparator {op!r} is not supported for numeric {key!r}")
                value = float(v)
            else:
                if t != "str":
                    raise invalid(f"Value of {key!r} must be a quoted string, got {v!r}")
                if op not in STRING_OPS and kind != "attribute":
                    raise invalid(f"Comparator {op!r} is not supported for {kind} {key!r}")
                value = _unquote(v)
        clauses.append(Clause(kind, key, op, value))
        if i >= len(toks):
            return clauses
        if toks[i][0] == "word" and toks[i][1].upper() == "AND":
            i += 1
            continue
        raise invalid(f"Invalid filter {text!r}: only AND joins comparisons")


NUMERIC_ATTRIBUTES = frozenset(
    {"start_time", "end_time", "created", "creation_time", "creation_timestamp", "last_updated_timestamp"}
)


def parse_order_by(items: list[str] | None) -> list[OrderBy]:
    out: list[OrderBy] = []
    for item in items or []:
        toks = _tokens(item)
        kind, key, i = _identifier(toks, 0)
        ascending = True
        if i < len(toks):
            word = toks[i][1].upper()
            if word not in ("ASC", "DESC") or i + 1 != len(toks):
                raise invalid(f"Invalid order_by clause {item!r}")
            ascending = word == "ASC"
        out.append(OrderBy(kind, key, ascending))
    return out


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"offset": offset})).decode()


def _token_body(token: str) -> object:
    try:
        return orjson.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise invalid(f"Invalid page token {token[:40]!r}") from exc


def decode_page_token(token: str | None) -> int:
    if not token:
        return 0
    body = _token_body(token)
    offset = body.get("offset") if isinstance(body, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= INT64_MAX:
        raise invalid(f"Invalid page token {token[:40]!r}")
    return offset


@dataclass(frozen=True)
class RunPage:
    """Where a page of a run search starts: after the run ``after`` (its start time and id,
    a keyset token), or ``offset`` runs in (the tokens of other orders, and of earlier
    servers)."""

    offset: int = 0
    after: tuple[int, str] | None = None
    order: str = ""


def encode_run_page_token(order: str, start_time: int, run_id: str) -> str:
    """A keyset token: the next page starts after this run in ``order``. It reads only the
    runs of its page, however deep (an offset re-reads every run it skips), and a run
    created or deleted between two pages moves no other run to another page."""
    return base64.urlsafe_b64encode(orjson.dumps({"order": order, "after": [start_time, run_id]})).decode()


def decode_run_page_token(token: str | None) -> RunPage:
    if not token:
        return RunPage()
    body = _token_body(token)
    if isinstance(body, dict) and "after" in body:
        after, order = body.get("after"), body.get("order")
        if (
            isinstance(order, str)
            and isinstance(after, list)
            and len(after) == 2
            and isinstance(after[0], int)
            and not isinstance(after[0], bool)
            and abs(after[0]) <= INT64_MAX
            and isinstance(after[1], str)
            and len(after[1]) <= 64
        ):
            return RunPage(after=(after[0], after[1]), order=order)
        raise invalid(f"Invalid page token {token[:40]!r}")
    return RunPage(offset=decode_page_token(token))
