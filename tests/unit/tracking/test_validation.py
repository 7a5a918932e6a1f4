"""Input rules shared by the server and the sidecar."""

from __future__ import annotations

import pytest

from modelship.tracking.errors import TrackingError
from modelship.tracking.protocol import validation as v
from modelship.tracking.protocol.paths import safe_path
from modelship.tracking.store.artifacts import relative_to_proxy


@pytest.mark.parametrize("name", ["acc", "loss/val", "a.b-c_d e:f", "x" * 250])
def test_good_keys(name: str) -> None:
    assert v.key(name, "metric") == name


@pytest.mark.parametrize("name", ["", "../x", "/abs", "a/../b", "bad*char", "x" * 251, ".", 5])
def test_bad_keys(name: object) -> None:
    with pytest.raises(TrackingError):
        v.key(name, "metric")


@pytest.mark.parametrize(("m", "p", "t"), [(1001, 0, 0), (0, 101, 0), (0, 0, 101), (900, 100, 1)])
def test_batch_limits(m: int, p: int, t: int) -> None:
    with pytest.raises(TrackingError):
        v.batch_sizes(m, p, t)


def test_batch_limits_at_the_edge() -> None:
    v.batch_sizes(1000, 0, 0)
    v.batch_sizes(800, 100, 100)


def test_float_spelling() -> None:
    assert v.encode_float(float("nan")) == "NaN"
    assert v.encode_float(float("inf")) == "Infinity"
    assert v.encode_float(float("-inf")) == "-Infinity"
    assert v.encode_float(1.5) == 1.5


@pytest.mark.parametrize(("path", "norm"), [("", ""), ("a/b", "a/b"), ("a//./b/", "a/b")])
def test_safe_paths(path: str, norm: str) -> None:
    assert safe_path(path) == norm


@pytest.mark.parametrize("path", ["..", "a/../../b", "/etc/passwd", "a\\b", "C:/x", "a\x00b"])
def test_unsafe_paths(path: str) -> None:
    with pytest.raises(TrackingError):
        safe_path(path)


def test_proxy_uris() -> None:
    assert relative_to_proxy("mlflow-artifacts:/1/abc/artifacts") == "1/abc/artifacts"
    assert relative_to_proxy("mlflow-artifacts://host:5000/1/x") == "1/x"
    with pytest.raises(TrackingError):
        relative_to_proxy("s3://bucket/x")
