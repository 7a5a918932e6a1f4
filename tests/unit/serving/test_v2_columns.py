"""One input per column (the pandas codecs of KServe's and MLServer's v2 clients).

The fast decode (one ``np.array`` call, no DataFrame) must give what the DataFrame path
gives for every body, near-misses included: the same array or the same error message.
The reference is the same code with both fast paths switched off.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelship.models import load_model
from modelship.models.load import LoadedModel
from modelship.serving import v2
from modelship.serving.codecs import BadRequest

from .test_fuzz import COLUMNS

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

value = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(-(10**6), 10**6),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=2),
)


@st.composite
def column_bodies(draw: Any) -> dict[str, Any]:
    """A clean per-column body (all columns, any order, ``[N]`` or ``[N, 1]``, FP64 or
    numbers), then up to three mutations: a column dropped, duplicated or added, a wrong
    shape, datatype or row count, a nested list, or a value of another type."""
    n = draw(st.integers(1, 4))
    numbers = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64), st.integers(-100, 100))
    inputs: list[dict[str, Any]] = [
        {
            "name": name,
            "shape": draw(st.sampled_from([[n], [n, 1]])),
            "datatype": "FP64",
            "data": draw(st.lists(numbers, min_size=n, max_size=n)),
        }
        for name in draw(st.permutations(COLUMNS))
    ]
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(inputs) - 1))
        kind = draw(st.sampled_from(["drop", "dup", "extra", "shape", "datatype", "rows", "nest", "value"]))
        inp = inputs[i]
        if kind == "drop" and len(inputs) > 1:
            inputs.pop(i)
        elif kind == "dup":
            inputs.append(dict(inp))
        elif kind == "extra":
            inputs.append({**inp, "name": "extra"})
        elif kind == "shape":
            inp["shape"] = draw(st.sampled_from([[n, 2], [1, n], [True, 1], [n, 1, 1], "x", [-1]]))
        elif kind == "datatype":
            inp["datatype"] = draw(st.sampled_from(["FP32", "FP16", "INT64", "INT32", "UINT8", "BYTES", "BOOL", 3]))
        elif kind == "rows":
            rows = draw(st.integers(0, 5))
            inp["data"], inp["shape"] = draw(st.lists(numbers, min_size=rows, max_size=rows)), [rows, 1]
        elif kind == "nest":
            inp["data"] = [inp["data"]]
        elif inp["data"]:
            inp["data"][draw(st.integers(0, len(inp["data"]) - 1))] = draw(value)
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def _decode(model: LoadedModel, body: bytes) -> Any:
    try:
        parsed, _ = v2.parse_infer(model, body)
        model.check_values(parsed.data)
    except (BadRequest, ValueError) as exc:
        return ("error", type(exc).__name__, str(exc))
    data = parsed.data
    if isinstance(data, pd.DataFrame):
        data = data.to_numpy()
    try:
        pred = model.runtime.predict(parsed.data).tolist()
    except ValueError as exc:  # e.g. a value too large for sklearn's float64 checks: a 500
        pred = ("predict raised", str(exc))
    return ("ok", np.asarray(data).dtype.str, np.asarray(data).tolist(), pred)


@pytest.fixture(scope="module")
def wine_model(wine_dir: Path) -> LoadedModel:
    return load_model(wine_dir)


@FUZZ
@given(body=column_bodies())
def test_the_fast_column_decode_agrees_with_the_dataframe_path(wine_model: LoadedModel, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    fast = _decode(wine_model, raw)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(v2, "_columns_in_one_call", lambda *_: None)
        m.setattr(v2, "_columns_fast", lambda *_: None)
        reference = _decode(wine_model, raw)
    assert fast == reference


def test_a_pandas_codec_request_predicts_what_invocations_predicts(
    serve: Any, wine_dir: Path, wine: pd.DataFrame
) -> None:
    """The body MLServer's ``PandasCodec.encode_request`` makes: ``[N, 1]`` per column."""
    client = serve(wine_dir, model_name="wine")
    df = wine.sample(7, random_state=1)
    split = client.post("/invocations", json={"dataframe_split": json.loads(df.to_json(orient="split"))})
    body = {
        "parameters": {"content_type": "pd"},
        "inputs": [{"name": c, "shape": [7, 1], "datatype": "FP64", "data": df[c].tolist()} for c in df.columns],
    }
    v2_reply = client.post("/v2/models/wine/infer", json=body)
    assert split.status_code == v2_reply.status_code == 200, (split.text, v2_reply.text)
    assert v2_reply.json()["outputs"][0]["data"] == split.json()["predictions"]
    body["inputs"][3]["data"][2] = "x"  # a string in a double column: the column is named
    bad = client.post("/v2/models/wine/infer", json=body)
    assert bad.status_code == 400 and df.columns[3] in bad.json()["error"], bad.text
