"""Answers written by the database: the SQL that returns a run, an experiment or a history
point as the JSON text of MLflow's shape, for SQLite (its JSON1 functions) and PostgreSQL
(``json_build_object``). Pure text, no I/O.

Why: a search page is 100 runs and some 3,300 child rows (params, tags, latest metrics).
Read as driver tuples and turned into a dict each, then encoded, the Python side cost 2-7x
the database's own work (benchmarks/tracking/scale.py, py-spy). Built by the database, a
run arrives as one string, in one statement for the whole page with its children, and the
server only joins the strings.

Doubles are written exactly. PostgreSQL's ``to_json(float8)`` is the shortest text that
reads back as the same double (``extra_float_digits`` > 0, set per session in ``db.py``).
SQLite's JSON functions write a REAL with 15 significant digits, which loses precision, so
a metric value goes through ``printf('%!.20e')`` (21 significant digits; SQLite 3.40's own
``quote()`` is short and misses some large exponents): checked to read back equal for
125,000 random doubles of every exponent (tests/unit/tracking/test_search_json.py keeps a
sample). NaN and the infinities are the strings proto3 JSON spells them with, as
``validation.encode_float`` writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import orjson

SQLITE, POSTGRESQL = "sqlite", "postgresql"


def _value_text(dialect: str, table: str) -> str:
    """A metric value as the text of its JSON: a number, or "NaN" / "Infinity" / "-Infinity"."""
    v, nan = f"{table}.value", f"{table}.is_nan"
    if dialect == SQLITE:
        return (
            f"CASE WHEN {nan} THEN '\"NaN\"' WHEN {v} = 9e999 THEN '\"Infinity\"' "
            f"WHEN {v} = -9e999 THEN '\"-Infinity\"' ELSE printf('%!.20e', {v}) END"
        )
    # float8's text is what to_json(float8) writes for a finite value (the shortest that
    # reads back as the same double, extra_float_digits > 0).
    return (
        f"CASE WHEN {nan} THEN '\"NaN\"' WHEN {v} = 'Infinity'::float8 THEN '\"Infinity\"' "
        f"WHEN {v} = '-Infinity'::float8 THEN '\"-Infinity\"' ELSE {v}::text END"
    )


def _value(dialect: str, table: str) -> str:
    """A metric value as JSON: a number, or "NaN" / "Infinity" / "-Infinity"."""
    v, nan = f"{table}.value", f"{table}.is_nan"
    if dialect == SQLITE:
        return f"json({_value_text(dialect, table)})"
    return (
        f"CASE WHEN {nan} THEN to_json('NaN'::text) WHEN {v} = 'Infinity'::float8 THEN to_json('Infinity'::text) "
        f"WHEN {v} = '-Infinity'::float8 THEN to_json('-Infinity'::text) ELSE to_json({v}) END"
    )


def _object(dialect: str, pairs: Sequence[tuple[str, str]]) -> str:
    fn = "json_object" if dialect == SQLITE else "json_build_object"
    return fn + "(" + ", ".join(f"'{k}', {expr}" for k, expr in pairs) + ")"


def _sqlite_in_order(table: str, where: str, order: str) -> str:
    """SQLite: the rows of ``table`` (``"name alias"``) that pass ``where``, in ``order``, as a
    subquery under the same alias, for an aggregate over them. SQLite 3.40's aggregates take
    no ORDER BY and join rows in the order they are read, which is the planner's choice: with
    statistics (``ANALYZE``, ``PRAGMA optimize``) it scanned a small ``latest_metrics`` in
    insertion order instead of along its primary key, and a run's metrics came out unsorted.
    A subquery with ORDER BY feeding an aggregate is not flattened into it, and is read in
    its order (along the primary key here: no sort)."""
    alias = table.split()[-1]
    return f"(SELECT * FROM {table} WHERE {where} ORDER BY {order}) AS {alias}"


def _array(dialect: str, element: str, table: str, where: str, order: str) -> str:
    """A JSON array of ``element`` over the rows of ``table`` that pass ``where`` ([] for none)."""
    if dialect == SQLITE:
        return f"(SELECT json_group_array({element}) FROM {_sqlite_in_order(table, where, order)})"
    return f"COALESCE((SELECT json_agg({element} ORDER BY {order}) FROM {table} WHERE {where}), '[]'::json)"


def _info(dialect: str, with_end_time: bool) -> str:
    pairs = [
        ("run_id", "r.run_uuid"),
        ("run_uuid", "r.run_uuid"),
        ("run_name", "r.name"),
        ("experiment_id", "CAST(r.experiment_id AS TEXT)"),
        ("user_id", "r.user_id"),
        ("status", "r.status"),
        ("start_time", "r.start_time"),
        ("artifact_uri", "r.artifact_uri"),
        ("lifecycle_stage", "r.lifecycle_stage"),
    ]
    if with_end_time:  # MLflow leaves end_time out of a run that has none
        pairs.append(("end_time", "r.end_time"))
    return _object(dialect, pairs)


def _texts(element: str, table: str, where: str, order: str, rare: bool = False) -> str:
    """PostgreSQL: the text of a JSON array of the ``element`` texts of ``table``'s rows that
    pass ``where``, in ``order`` ("[]" for none). For a ``rare`` table (a run's inputs and
    outputs) an EXISTS probe first: an aggregate is set up for each run even without rows."""
    joined = f"COALESCE((SELECT string_agg({element}, ',' ORDER BY {order}) FROM {table} WHERE {where}), '')"
    array = f"'[' || {joined} || ']'"
    return f"CASE WHEN EXISTS (SELECT 1 FROM {table} WHERE {where}) THEN {array} ELSE '[]' END" if rare else array


def _kv_element(dialect: str, alias: str) -> str:
    """One param or tag (of the table aliased ``alias``) as the text of its JSON object."""
    if dialect == SQLITE:
        return f"json_object('key', {alias}.key, 'value', {alias}.value)"
    return f"""'{{"key":' || to_json({alias}.key) || ',"value":' || to_json({alias}.value) || '}}'"""


def _kv_elements(dialect: str, table: str, run: str) -> str:
    """The run ``run``'s rows of ``table`` (params or tags) as the elements of a JSON array,
    in key order, joined by commas, without the brackets ('' for none)."""
    alias = table[0]
    element = _kv_element(dialect, alias)
    where = f"{alias}.run_uuid = {run}"
    if dialect == SQLITE:
        rows = _sqlite_in_order(f"{table} {alias}", where, f"{alias}.key")
        return f"COALESCE((SELECT group_concat({element}, ',') FROM {rows}), '')"
    return f"COALESCE((SELECT string_agg({element}, ',' ORDER BY {alias}.key) FROM {table} {alias} WHERE {where}), '')"


def _kv_array(dialect: str, table: str) -> str:
    """A run's params or tags (``table``) as the text of a JSON array, for the run ``r``
    joined to its ``run_data`` row ``d``: the row's text, or, for a run without one, from
    the rows (``COALESCE`` evaluates the aggregate only then)."""
    return f"'[' || COALESCE(d.{table}, {_kv_elements(dialect, table, 'r.run_uuid')}) || ']'"


def run_data_upsert_sql(dialect: str, where: str) -> str:
    """Write the ``run_data`` rows of the runs ``r`` that pass ``where`` from their params
    and tags as they are now: the texts ``run_json`` reads, built by the same expressions
    it falls back to. Run in the transaction that wrote the rows (``TrackingStore``), and
    once over all runs by the migration that added the table."""
    return (
        f"INSERT INTO run_data (run_uuid, params, tags) SELECT r.run_uuid, "
        f"{_kv_elements(dialect, 'params', 'r.run_uuid')}, {_kv_elements(dialect, 'tags', 'r.run_uuid')} "
        f"FROM runs r WHERE {where} "
        "ON CONFLICT (run_uuid) DO UPDATE SET params = excluded.params, tags = excluded.tags"
    )


def _run_text_postgresql() -> str:
    """``run_json`` on PostgreSQL: texts joined, not ``json_build_object`` and ``json_agg``.
    For a page of 100 runs, PostgreSQL's own time went mostly to building the JSON values
    (each call looks up its arguments' types) and to the aggregates' ORDER BY (EXPLAIN
    ANALYZE; benchmarks/tracking/scale.py). Every column but ``end_time`` is NOT NULL, which
    the concatenation needs; ``end_time`` is left out when NULL, as MLflow does."""
    on_run = "{a}.run_uuid = r.run_uuid"
    metric = (
        """'{"key":' || to_json(m.key) || ',"value":' || """
        + _value_text(POSTGRESQL, "m")
        + """ || ',"timestamp":' || m.timestamp || ',"step":' || m.step || '}'"""
    )
    output = """'{"model_id":' || to_json(o.model_id) || ',"step":' || o.step || '}'"""
    inputs = "run_inputs i", "i.kind, i.ref"
    return (
        """'{"info":{"run_id":' || to_json(r.run_uuid) || ',"run_uuid":' || to_json(r.run_uuid)"""
        """ || ',"run_name":' || to_json(r.name) || ',"experiment_id":"' || r.experiment_id"""
        """ || '","user_id":' || to_json(r.user_id) || ',"status":' || to_json(r.status)"""
        """ || ',"start_time":' || r.start_time || ',"artifact_uri":' || to_json(r.artifact_uri)"""
        """ || ',"lifecycle_stage":' || to_json(r.lifecycle_stage) || COALESCE(',"end_time":' || r.end_time, '')"""
        """ || '},"data":{"metrics":' || """
        + _texts(metric, "latest_metrics m", on_run.format(a="m"), "m.key")
        + """ || ',"params":' || """
        + _kv_array(POSTGRESQL, "params")
        + """ || ',"tags":' || """
        + _kv_array(POSTGRESQL, "tags")
        + """ || '},"inputs":{"dataset_inputs":' || """
        + _texts("i.body", inputs[0], on_run.format(a="i") + " AND i.kind = 'dataset'", inputs[1], rare=True)
        + """ || ',"model_inputs":' || """
        + _texts("i.body", inputs[0], on_run.format(a="i") + " AND i.kind <> 'dataset'", inputs[1], rare=True)
        + """ || '},"outputs":{"model_outputs":' || """
        + _texts(output, "run_outputs o", on_run.format(a="o"), "o.model_id", rare=True)
        + """ || '}}'"""
    )


def run_json(dialect: str) -> str:
    """The select list of one run as MLflow's JSON (``info``, ``data``, ``inputs``,
    ``outputs``), over ``runs`` aliased ``r`` left-joined to its ``run_data`` row ``d``
    (``runs_json_sql``): the same object ``TrackingStore.get_run`` answers."""
    if dialect == POSTGRESQL:
        return f"({_run_text_postgresql()})"
    metric = _object(
        dialect,
        [("key", "m.key"), ("value", _value(dialect, "m")), ("timestamp", "m.timestamp"), ("step", "m.step")],
    )
    body = "json(i.body)" if dialect == SQLITE else "i.body::json"
    on_run = "{a}.run_uuid = r.run_uuid"
    data = _object(
        dialect,
        [
            ("metrics", _array(dialect, metric, "latest_metrics m", on_run.format(a="m"), "m.key")),
            ("params", f"json({_kv_array(dialect, 'params')})"),
            ("tags", f"json({_kv_array(dialect, 'tags')})"),
        ],
    )
    inputs = _object(
        dialect,
        [
            (
                "dataset_inputs",
                _array(
                    dialect, body, "run_inputs i", on_run.format(a="i") + " AND i.kind = 'dataset'", "i.kind, i.ref"
                ),
            ),
            (
                "model_inputs",
                _array(
                    dialect, body, "run_inputs i", on_run.format(a="i") + " AND i.kind <> 'dataset'", "i.kind, i.ref"
                ),
            ),
        ],
    )
    output = _object(dialect, [("model_id", "o.model_id"), ("step", "o.step")])
    outputs = _object(
        dialect, [("model_outputs", _array(dialect, output, "run_outputs o", on_run.format(a="o"), "o.model_id"))]
    )
    pairs = [("data", data), ("inputs", inputs), ("outputs", outputs)]
    with_end, without_end = (_object(dialect, [("info", _info(dialect, end)), *pairs]) for end in (True, False))
    return f"CASE WHEN r.end_time IS NULL THEN {without_end} ELSE {with_end} END"


def _map(dialect: str, value: str, table: str, where: str) -> str:
    """A JSON object of key -> ``value`` over the rows of ``table`` that pass ``where`` ({} for none)."""
    alias = table.split()[-1]
    if dialect == SQLITE:
        return f"(SELECT json_group_object({alias}.key, {value}) FROM {_sqlite_in_order(table, where, f'{alias}.key')})"
    return (
        f"COALESCE((SELECT json_object_agg({alias}.key, {value} ORDER BY {alias}.key) FROM {table} "
        f"WHERE {where}), '{{}}'::json)"
    )


def table_run_json(dialect: str) -> str:
    """The select list of one run as the web UI's runs table reads it, over ``runs`` aliased
    ``r``: MLflow's ``info``, and its latest metrics, params and tags as objects of key ->
    value (``{"info": ..., "metrics": {"loss": 0.5}, "params": {...}, "tags": {...}}``).
    Without each metric's timestamp and step, the key names once and no inputs or outputs,
    a run of 50 metrics and 20 params is 2.2 KB instead of MLflow's 5.4 KB."""
    on_run = "{a}.run_uuid = r.run_uuid"
    pairs = [
        ("metrics", _map(dialect, _value(dialect, "m"), "latest_metrics m", on_run.format(a="m"))),
        ("params", _map(dialect, "p.value", "params p", on_run.format(a="p"))),
        ("tags", _map(dialect, "t.value", "tags t", on_run.format(a="t"))),
    ]
    with_end, without_end = (_object(dialect, [("info", _info(dialect, end)), *pairs]) for end in (True, False))
    run = f"CASE WHEN r.end_time IS NULL THEN {without_end} ELSE {with_end} END"
    return run if dialect == SQLITE else f"({run})::text"


@lru_cache(maxsize=256)
def runs_json_sql(dialect: str, where: str, table: bool = False) -> str:
    """Run id, start time and run JSON of the runs ``r`` that pass ``where`` (a condition on
    ``r``): MLflow's run, or with ``table`` the runs table's (``table_run_json``)."""
    if table:
        return f"SELECT r.run_uuid, r.start_time, {table_run_json(dialect)} FROM runs r WHERE {where}"
    return (
        f"SELECT r.run_uuid, r.start_time, {run_json(dialect)} "
        f"FROM runs r LEFT JOIN run_data d ON d.run_uuid = r.run_uuid WHERE {where}"
    )


def experiment_json(dialect: str) -> str:
    """One experiment as MLflow's JSON, over ``experiments`` (not aliased), with its tags."""
    tag = _object(dialect, [("key", "et.key"), ("value", "et.value")])
    on_experiment = "et.experiment_id = experiments.experiment_id"
    tags = _array(dialect, tag, "experiment_tags et", on_experiment, "et.key")
    if dialect == POSTGRESQL:
        # Texts joined, not json_build_object: listing 1,000 experiments spent most of its
        # 3.7 ms in it and in the tags' aggregate, set up for each experiment even without
        # tags (1.9-2.5 ms this way, EXPLAIN ANALYZE; benchmarks/tracking/scale.py). Every
        # column is NOT NULL, which the concatenation needs.
        tags = (
            f"CASE WHEN EXISTS (SELECT 1 FROM experiment_tags et WHERE {on_experiment}) THEN {tags}::text ELSE '[]' END"
        )
        return (
            """('{"experiment_id":"' || experiments.experiment_id || '","name":' || to_json(experiments.name)"""
            """ || ',"artifact_location":' || to_json(experiments.artifact_location)"""
            """ || ',"lifecycle_stage":' || to_json(experiments.lifecycle_stage)"""
            """ || ',"creation_time":' || experiments.creation_time"""
            """ || ',"last_update_time":' || experiments.last_update_time"""
            f""" || ',"tags":' || {tags} || '}}')"""
        )
    return _object(
        dialect,
        [
            ("experiment_id", "CAST(experiments.experiment_id AS TEXT)"),
            ("name", "experiments.name"),
            ("artifact_location", "experiments.artifact_location"),
            ("lifecycle_stage", "experiments.lifecycle_stage"),
            ("creation_time", "experiments.creation_time"),
            ("last_update_time", "experiments.last_update_time"),
            ("tags", tags),
        ],
    )


POINT_SEPARATOR = "|"
"""Between the points of a run in ``history_points_by_run_sql``: no point's varying text
(a number or "NaN"/"Infinity"/"-Infinity", and two integers) holds it."""


def history_points_by_run_sql(dialect: str, ph: str, runs: int, in_range: str) -> str:
    """Per run of the ``metrics`` rows of ``runs`` runs, of one key, in ``in_range``
    (conditions on ``step`` with the marker ``ph``): its id, its count of points, and the
    varying part of each point's JSON (``"value":...,"timestamp":...,"step":...`` less the
    ``"value":`` name) in history order (step, timestamp, value), joined by
    ``POINT_SEPARATOR``; ``history_points_json`` completes them. The parameters: the run
    ids as ``rows.any_of`` gives them (one array on PostgreSQL), the key, the range's.

    One row per run, and the least text per point: 100 runs x 100 steps are 10,000 points,
    and a ``json_build_object`` per point, sent as a row each, took 19 ms of PostgreSQL's
    time where this takes 5.5 (the key and run id, the same in all of a run's points, are
    written once by the server; benchmarks/tracking/scale.py).

    On PostgreSQL a run at a time (``LATERAL`` over the array of ids): each run's points are
    one range of the primary key (run, key, step, timestamp, value), read in history order,
    and ``string_agg`` joins them in the order its ordered subquery gives them (what
    PostgreSQL's documentation of aggregates offers for ordered input, beside ``ORDER BY``
    in the call). A ``GROUP BY`` over all runs' points sorted the 10,000 rows by run, then
    each run's again for the aggregate's ``ORDER BY`` (PostgreSQL 15 does not see that the
    index gives that order): 6.5 ms, this 4.9 (EXPLAIN ANALYZE on the benchmark's database).
    SQLite 3.40 has no ORDER BY inside ``group_concat``: it concatenates in the order it
    reads, the primary key's, in which the table is stored (WITHOUT ROWID)."""
    point = (
        f"""{_value_text(dialect, "metrics")} || ',"timestamp":' || metrics.timestamp || ',"step":' || metrics.step"""
    )
    if dialect == SQLITE:
        runs_in = f"metrics.run_uuid IN ({', '.join([ph] * runs)})"
        return (
            f"SELECT metrics.run_uuid, COUNT(*), group_concat({point}, '{POINT_SEPARATOR}') FROM metrics "
            f"WHERE {runs_in} AND key = {ph}{in_range} GROUP BY metrics.run_uuid"
        )
    in_history_order = (
        "SELECT step, timestamp, value, is_nan FROM metrics "
        f"WHERE metrics.run_uuid = u.id AND metrics.key = {ph}{in_range} ORDER BY step, timestamp, value"
    )
    return (
        f"SELECT u.id, x.n, x.points FROM unnest({ph}::text[]) AS u(id) CROSS JOIN LATERAL "
        f"(SELECT COUNT(*) AS n, string_agg({point}, '{POINT_SEPARATOR}') AS points "
        f"FROM ({in_history_order}) AS metrics) AS x WHERE x.n > 0"
    )


def history_points_json(run_id: str, key: str, points: str) -> str:
    """A run's points of ``key`` as JSON texts joined by commas (the bulk-interval read's
    shape, MLflow's order of fields), from ``history_points_by_run_sql``'s joined text."""
    head = '{"key":' + orjson.dumps(key).decode() + ',"value":'
    tail = ',"run_id":' + orjson.dumps(run_id).decode() + "}"
    return head + points.replace(POINT_SEPARATOR, tail + "," + head) + tail


def history_point_json(dialect: str) -> str:
    """One metric point (of ``metrics``, not aliased) as the bulk-interval read answers it."""
    out = _object(
        dialect,
        [
            ("key", "metrics.key"),
            ("value", _value(dialect, "metrics")),
            ("timestamp", "metrics.timestamp"),
            ("step", "metrics.step"),
            ("run_id", "metrics.run_uuid"),
        ],
    )
    return out if dialect == SQLITE else f"({out})::text"


def join_array(items: Sequence[str]) -> bytes:
    """``[item,item,...]`` from JSON texts."""
    return ("[" + ",".join(items) + "]").encode()
