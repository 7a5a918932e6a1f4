"""Typing parameter values and rendering an entry point's command."""

from __future__ import annotations

import shlex

import pytest

from modelship.projects import ProjectError, parse_project, render_command
from modelship.projects.values import Value

PROJECT = parse_project(
    """
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      epochs: {type: int, default: 10}
      name: {type: string, default: "run one"}
      data: {type: path, default: data/train.csv}
      source: {type: uri, default: "s3://bucket/key"}
    command: "python train.py --alpha {alpha} --epochs {epochs} --name {name} {data} {source}"
  required:
    parameters:
      x: float
      y: int
    command: "echo {x} {y}"
  braces:
    parameters:
      a: string
    command: "echo '{{\\"a\\": 1}}' {a}"
"""
)
MAIN = PROJECT.entry_points["main"]
DEFAULT_COMMAND = "python train.py --alpha 0.5 --epochs 10 --name 'run one' data/train.csv s3://bucket/key"


@pytest.mark.parametrize(
    ("given", "command", "logged"),
    [
        ({}, DEFAULT_COMMAND, {}),
        ({"alpha": "0.25"}, DEFAULT_COMMAND.replace("0.5", "0.25"), {"alpha": "0.25"}),
        # numbers are canonical: the same text Python logs after parsing the argument
        ({"alpha": "1"}, DEFAULT_COMMAND.replace("0.5", "1.0"), {"alpha": "1.0"}),
        ({"alpha": "1e-3"}, DEFAULT_COMMAND.replace("0.5", "0.001"), {"alpha": "0.001"}),
        ({"alpha": 2}, DEFAULT_COMMAND.replace("0.5", "2.0"), {"alpha": "2.0"}),
        ({"alpha": "-.5"}, DEFAULT_COMMAND.replace("0.5", "-0.5"), {"alpha": "-0.5"}),
        ({"epochs": "+7"}, DEFAULT_COMMAND.replace("10", "7"), {"epochs": "7"}),
        ({"epochs": 30.0}, DEFAULT_COMMAND.replace("10", "30"), {"epochs": "30"}),
        (
            {"name": "it's; rm -rf /"},
            DEFAULT_COMMAND.replace("'run one'", shlex.quote("it's; rm -rf /")),
            {"name": "it's; rm -rf /"},
        ),
        ({"name": True}, DEFAULT_COMMAND.replace("'run one'", "true"), {"name": "true"}),
        (
            {"source": "runs:/abc/model"},
            DEFAULT_COMMAND.replace("s3://bucket/key", "runs:/abc/model"),
            {"source": "runs:/abc/model"},
        ),
        # extra parameters are appended as --key value, both quoted
        ({"seed": "1"}, DEFAULT_COMMAND + " --seed 1", {"seed": "1"}),
        ({"my key": "a b", "z": 0.5}, DEFAULT_COMMAND + " --'my key' 'a b' --z 0.5", {"my key": "a b", "z": "0.5"}),
    ],
)
def test_render(given: dict[str, Value], command: str, logged: dict[str, str]) -> None:
    """``logged``: the logged parameters that differ from the defaults."""
    resolved = render_command(MAIN, given)
    assert resolved.command == command
    defaults = {
        "alpha": "0.5",
        "epochs": "10",
        "name": "run one",
        "data": "data/train.csv",
        "source": "s3://bucket/key",
    }
    assert resolved.parameters == {**defaults, **logged}
    assert list(resolved.parameters) == [*defaults, *resolved.extra]
    assert resolved.extra == tuple(k for k in given if k not in MAIN.parameters)


@pytest.mark.parametrize(
    ("value", "command_path", "local"),
    [
        ("train.csv", "/work/in/train.csv", "/work/in/train.csv"),
        ("../up/train.csv", "/work/up/train.csv", "/work/up/train.csv"),
        ("/abs/train.csv", "/abs/train.csv", "/abs/train.csv"),
        ("file:///abs/my%20data.csv", "'/abs/my data.csv'", "/abs/my data.csv"),
        ("s3://bucket/train.csv", "s3://bucket/train.csv", None),
    ],
)
def test_path_values_are_made_absolute_against_the_callers_directory(
    value: str, command_path: str, local: str | None
) -> None:
    resolved = render_command(MAIN, {"data": value}, path_base="/work/in")
    assert f" {command_path} " in resolved.command
    # The logged value is what the caller gave, as MLflow logs it.
    assert resolved.parameters["data"] == value
    assert resolved.local_paths == ({} if local is None else {"data": local})


def test_default_paths_stay_relative_to_the_project() -> None:
    resolved = render_command(MAIN, {}, path_base="/work/in")
    assert " data/train.csv " in resolved.command and resolved.local_paths == {}


def test_literal_braces() -> None:
    assert render_command(PROJECT.entry_points["braces"], {"a": "x y"}).command == "echo '{\"a\": 1}' 'x y'"


def test_script_entry_point_gets_every_parameter_as_an_option() -> None:
    resolved = render_command(PROJECT.entry_point("train.py"), {"alpha": "0.1", "data": "a b"})
    assert resolved.command == "python train.py --alpha 0.1 --data 'a b'"
    assert resolved.parameters == {"alpha": "0.1", "data": "a b"}


@pytest.mark.parametrize(
    ("entry_point", "given", "message"),
    [
        ("required", {}, 'entry point "required": missing required parameters "x", "y"'),
        ("required", {"x": "1"}, 'entry point "required": missing required parameter "y"'),
        ("main", {"alpha": "abc"}, 'entry point "main": parameter "alpha" must be a float, got "abc"'),
        ("main", {"alpha": ""}, 'parameter "alpha" must be a float, got ""'),
        ("main", {"alpha": "1_000"}, 'parameter "alpha" must be a float, got "1_000"'),
        ("main", {"alpha": " 1"}, 'parameter "alpha" must be a float, got " 1"'),
        ("main", {"alpha": True}, 'parameter "alpha" must be a float, got true'),
        ("main", {"epochs": "1.5"}, 'entry point "main": parameter "epochs" must be an int, got "1.5"'),
        ("main", {"epochs": "ten"}, 'parameter "epochs" must be an int, got "ten"'),
        ("main", {"epochs": 2.5}, 'parameter "epochs" must be an int, got 2.5'),
        ("main", {"epochs": False}, 'parameter "epochs" must be an int, got false'),
        ("main", {"source": "bucket/key"}, 'parameter "source" must be a URI with a scheme'),
        ("main", {"data": ""}, 'parameter "data" must be a non-empty path, got ""'),
    ],
)
def test_refused(entry_point: str, given: dict[str, Value], message: str) -> None:
    with pytest.raises(ProjectError) as info:
        render_command(PROJECT.entry_points[entry_point], given)
    assert message in str(info.value)


def test_rendered_commands_split_back_into_the_values() -> None:
    """Whatever the values, bash sees each one as a single word, unchanged."""
    nasty = ["a b", "$(touch x)", "`id`", "'quoted'", '"dq"', "semi;colon", "new\nline", "*", "back\\slash", ""]
    entry_point = parse_project("entry_points: {e: {command: 'run {v}', parameters: {v: string}}}").entry_points["e"]
    for value in nasty:
        words = shlex.split(render_command(entry_point, {"v": value, "extra": value}).command)
        assert words == ["run", value, "--extra", value]
