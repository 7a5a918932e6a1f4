"""Parsing MLproject files: the model we build, and the files we refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelship.projects import Environment, Parameter, ProjectError, load_project, parse_project

FULL = """
name: tutorial
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      l1_ratio: {type: float, default: 1e-1}
      epochs: {type: int, default: 10}
      data: path
      out: {type: uri, default: "s3://bucket/out"}
      label: {default: y}
      tag:
    command: "python train.py {alpha} {l1_ratio} --epochs {epochs} {data} {out} {label} {tag}"
  validate:
    command: "python validate.py"
"""


def test_full_file() -> None:
    project = parse_project(FULL)
    assert project.name == "tutorial"
    assert project.environment == Environment(kind="python", file="python_env.yaml")
    assert list(project.entry_points) == ["main", "validate"]
    params = project.entry_points["main"].parameters
    assert list(params) == ["alpha", "l1_ratio", "epochs", "data", "out", "label", "tag"]
    assert params["alpha"] == Parameter("alpha", "float", "0.5", "float")
    # YAML reads 1e-1 as a string; as a float parameter it is normalised.
    assert params["l1_ratio"].default == "0.1"
    assert params["epochs"] == Parameter("epochs", "int", "10", "int")
    assert params["data"].required and params["data"].type == "path"
    assert params["out"].default == "s3://bucket/out"
    assert params["label"] == Parameter("label", "string", "y", "string")
    assert params["tag"].required and params["tag"].type == "string"
    assert project.entry_points["validate"].parameters == {}
    assert project.warnings == ()


@pytest.mark.parametrize(
    ("text", "environment"),
    [
        ("name: x", Environment()),
        ("conda_env: envs/conda.yaml", Environment(kind="conda", file="envs/conda.yaml")),
        ("docker_env: {image: python:3.11}", Environment(kind="docker", image="python:3.11")),
        (
            "docker_env: {image: img, volumes: ['/a:/a'], environment: [[K, v], HOME]}",
            Environment(kind="docker", image="img", volumes=("/a:/a",), variables=(("K", "v"), "HOME")),
        ),
    ],
)
def test_environments(text: str, environment: Environment) -> None:
    assert parse_project(text).environment == environment


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed", "not valid YAML"),
        ("- a\n- b", "must be a mapping, got a list"),
        ("python_env: a.yaml\nconda_env: b.yaml", "only one environment may be declared, found python_env, conda_env"),
        ("python_env: /etc/env.yaml", "must be a path inside the project"),
        ("conda_env: ../outside.yaml", "must be a path inside the project"),
        ("python_env: {a: 1}", "python_env must be the path of a file, got a mapping"),
        ("docker_env: {volumes: []}", "docker_env needs an image"),
        ("docker_env: {image: i, volumes: /a}", "volumes must be a list of strings"),
        ("docker_env: {image: i, environment: [[a, b, c]]}", "a variable name or a [name, value] pair"),
        ("entry_points: [main]", "entry_points must be a mapping, got a list"),
        ("entry_points: {main: python x.py}", 'entry point "main": must be a mapping with a command, got str'),
        ("entry_points: {main: {parameters: {}}}", 'entry point "main": needs a command'),
        ("entry_points: {main: {command: '  '}}", 'entry point "main": needs a command'),
        ("entry_points: {main: {command: x, parameters: [a]}}", 'entry point "main": parameters must be a mapping'),
        (
            "entry_points: {main: {command: 'python t.py {alpha} {beta}', parameters: {alpha: float}}}",
            'entry point "main": the command uses {beta}, which is not a declared parameter (declared: "alpha")',
        ),
        (
            "entry_points: {main: {command: 'python t.py {beta}'}}",
            "the command uses {beta}, which is not a declared parameter (declared: none)",
        ),
        ("entry_points: {main: {command: 'echo {'}}", 'entry point "main": the command is not a valid template'),
        ("entry_points: {main: {command: 'echo }'}}", "the command is not a valid template"),
        ("entry_points: {main: {command: 'echo {}'}}", "placeholder {} is not supported"),
        ("entry_points: {main: {command: 'echo {0}'}}", "placeholder {0} is not supported"),
        (
            "entry_points: {main: {command: 'echo {a.real}', parameters: {a: float}}}",
            "placeholder {a.real} is not supported",
        ),
        (
            "entry_points: {main: {command: 'echo {a:>5}', parameters: {a: float}}}",
            "placeholder {a:>5} is not supported",
        ),
        (
            "entry_points: {main: {command: x, parameters: {a: {type: float, default: abc}}}}",
            'entry point "main": parameter "a" must be a float, got "abc" (the default in the MLproject)',
        ),
        (
            "entry_points: {main: {command: x, parameters: {n: {type: int, default: 2.5}}}}",
            'parameter "n" must be an int, got 2.5 (the default',
        ),
        (
            "entry_points: {main: {command: x, parameters: {u: {type: uri, default: local/dir}}}}",
            'parameter "u" must be a URI with a scheme',
        ),
        ("entry_points: {main: {command: x, parameters: {a: 3}}}", 'parameter "a": must be a type name or a mapping'),
        (
            "entry_points: {main: {command: x, parameters: {a: {type: [float]}}}}",
            'parameter "a": type must be a string',
        ),
        (
            "entry_points: {main: {command: x, parameters: {a: {default: [1]}}}}",
            'parameter "a": default must be a scalar, got a list',
        ),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(ProjectError) as info:
        parse_project(text)
    assert message in str(info.value)


def test_literal_braces_are_not_placeholders() -> None:
    project = parse_project("entry_points: {main: {command: 'echo {{json}}'}}")
    assert project.entry_points["main"].command == "echo {{json}}"


def test_unknown_type_is_a_string_with_a_warning() -> None:
    # MLflow accepts any type name and treats it as a string; so do we, and say so.
    project = parse_project(
        "entry_points: {main: {command: 'x {flag}', parameters: {flag: {type: bool, default: true}}}}"
    )
    assert project.entry_points["main"].parameters["flag"] == Parameter("flag", "string", "true", "bool")
    assert project.warnings == (
        'entry point "main": parameter "flag": unknown type \'bool\' is treated as string (known: float, int, string, path, uri)',
    )


def test_unknown_field_warns() -> None:
    assert parse_project("name: x\nentry_point: {}").warnings == ("MLproject: unknown field 'entry_point' is ignored",)


def test_empty_file_is_a_project_of_scripts() -> None:
    project = parse_project("")
    assert project.name is None and project.entry_points == {}
    assert project.entry_point("train.py").command == "python train.py"


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("train.py", "python train.py"),
        ("scripts/prepare data.sh", "bash 'scripts/prepare data.sh'"),
    ],
)
def test_script_entry_points(name: str, command: str) -> None:
    entry_point = parse_project(FULL).entry_point(name)
    assert (entry_point.command, entry_point.parameters, entry_point.declared) == (command, {}, False)


def test_unknown_entry_point_lists_the_known_ones() -> None:
    with pytest.raises(ProjectError) as info:
        parse_project(FULL).entry_point("train")
    assert str(info.value) == (
        'unknown entry point "train": the project declares "main", "validate"; '
        "a file ending in .py or .sh also runs as a script"
    )


def test_load_finds_the_file_in_any_case_and_the_default_environment(tmp_path: Path) -> None:
    (tmp_path / "mlproject").write_text("name: lower\nentry_points: {main: {command: 'python t.py'}}")
    (tmp_path / "conda.yaml").write_text("name: env\n")
    project = load_project(tmp_path)
    assert project.name == "lower"
    assert project.environment == Environment(kind="conda", file="conda.yaml")
    (tmp_path / "python_env.yaml").write_text("python: '3.11'\n")
    assert load_project(tmp_path).environment == Environment(kind="python", file="python_env.yaml")


def test_load_without_mlproject(tmp_path: Path) -> None:
    project = load_project(tmp_path)
    assert project.name is None and project.entry_points == {}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"MLproject": "python_env: missing.yaml"},
            "names the python environment file 'missing.yaml', which does not exist",
        ),
        ({"MLproject": "name: [x"}, "MLproject: not valid YAML"),
    ],
)
def test_load_refuses(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ProjectError) as info:
        load_project(tmp_path)
    assert message in str(info.value)


def test_load_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="does not exist"):
        load_project(tmp_path / "nowhere")
