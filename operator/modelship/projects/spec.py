"""The ``MLproject`` file: a typed model of it, parsed as MLflow parses it.

``parse_project`` is pure (text in, ``Project`` out). ``load_project`` is the one edge
that touches the file system: it finds the file (any case of ``MLproject``, as MLflow),
reads it, and settles the environment file against what exists in the directory.
"""

from __future__ import annotations

import posixpath
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from modelship.projects.values import (
    PARAMETER_TYPES,
    ParameterType,
    ParameterValueError,
    coerce,
)

MLPROJECT_FILE = "MLproject"
DEFAULT_PYTHON_ENV = "python_env.yaml"
DEFAULT_CONDA_ENV = "conda.yaml"
ENV_FIELDS = {"python_env": "python", "conda_env": "conda", "docker_env": "docker"}
KNOWN_FIELDS = {"name", "entry_points", *ENV_FIELDS, "databricks_spark_job"}
# An entry point that is not declared but names a script runs with its interpreter.
SCRIPT_INTERPRETERS = {".py": "python", ".sh": "bash"}

EnvironmentKind = Literal["python", "conda", "docker", "none"]


class ProjectError(ValueError):
    """An MLproject that cannot be parsed, or a run request it cannot satisfy."""


@dataclass(frozen=True)
class Parameter:
    """One parameter of an entry point."""

    name: str
    type: ParameterType
    """The type values are checked against; an unknown declared type is ``string``."""
    default: str | None = None
    """Canonical text of the default; ``None`` makes the parameter required."""
    declared_type: str = "string"
    """The type as written in the file (kept for messages when it was unknown)."""

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class EntryPoint:
    """A command template and its parameters, in declaration order."""

    name: str
    command: str
    """Shell command with ``{param}`` placeholders (``{{`` and ``}}`` are literal braces)."""
    parameters: dict[str, Parameter] = field(default_factory=dict)
    declared: bool = True
    """False for a script entry point (``train.py``) that the MLproject does not declare."""


@dataclass(frozen=True)
class Environment:
    """Where the entry point expects to run; ``modelship run`` runs it in the current one."""

    kind: EnvironmentKind = "none"
    file: str | None = None
    """python_env / conda file, relative to the project directory."""
    image: str | None = None
    """docker_env image."""
    volumes: tuple[str, ...] = ()
    variables: tuple[str | tuple[str, str], ...] = ()
    """docker_env environment: a name to copy from the host, or a (name, value) pair."""


@dataclass(frozen=True)
class Project:
    """A parsed MLproject."""

    name: str | None
    environment: Environment = field(default_factory=Environment)
    entry_points: dict[str, EntryPoint] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    """Things MLflow accepts silently that are probably mistakes (unknown keys, types)."""

    def entry_point(self, name: str) -> EntryPoint:
        """The entry point called ``name``; an undeclared ``*.py`` / ``*.sh`` runs as a script.

        Like MLflow, a script entry point declares no parameters: every parameter given is
        appended as ``--key value``.
        """
        if name in self.entry_points:
            return self.entry_points[name]
        interpreter = SCRIPT_INTERPRETERS.get(posixpath.splitext(name)[1])
        if interpreter:
            return EntryPoint(name=name, command=f"{interpreter} {shlex.quote(name)}", declared=False)
        known = ", ".join(f'"{n}"' for n in self.entry_points) or "none"
        raise ProjectError(
            f'unknown entry point "{name}": the project declares {known}; '
            "a file ending in .py or .sh also runs as a script"
        )


def parse_project(text: str, *, source: str = MLPROJECT_FILE) -> Project:
    """Parse the text of an MLproject file. ``source`` names it in error messages."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProjectError(f"{source}: not valid YAML: {exc}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ProjectError(f"{source}: must be a mapping, got {_kind(document)}")
    warnings = [f"{source}: unknown field {key!r} is ignored" for key in document if key not in KNOWN_FIELDS]
    name = document.get("name")
    if name is not None and not isinstance(name, (str, int, float)):
        raise ProjectError(f"{source}: name must be a string, got {_kind(name)}")
    environment = _parse_environment(document, source)
    raw_entry_points = document.get("entry_points") or {}
    if not isinstance(raw_entry_points, dict):
        raise ProjectError(f"{source}: entry_points must be a mapping, got {_kind(raw_entry_points)}")
    entry_points: dict[str, EntryPoint] = {}
    for ep_name, raw in raw_entry_points.items():
        entry_point, ep_warnings = _parse_entry_point(str(ep_name), raw)
        entry_points[entry_point.name] = entry_point
        warnings.extend(ep_warnings)
    return Project(
        name=None if name is None else str(name),
        environment=environment,
        entry_points=entry_points,
        warnings=tuple(warnings),
    )


def load_project(directory: str | Path) -> Project:
    """Read the MLproject of ``directory`` (a project without one has only script entry points).

    The environment follows MLflow: the declared python_env / conda_env file must exist;
    without a declaration, ``python_env.yaml`` and then ``conda.yaml`` are used if present.
    """
    root = Path(directory)
    if not root.is_dir():
        raise ProjectError(f"project directory {str(root)!r} does not exist")
    found = sorted(p for p in root.iterdir() if p.name.lower() == MLPROJECT_FILE.lower())
    if found:
        project = parse_project(found[0].read_text(encoding="utf-8"), source=str(found[0]))
    else:
        project = Project(name=None)
    env = project.environment
    if env.file is not None and not (root / env.file).is_file():
        raise ProjectError(
            f"the MLproject names the {env.kind} environment file {env.file!r}, which does not exist in {str(root)!r}"
        )
    if env.kind == "none":
        defaults: tuple[tuple[str, EnvironmentKind], ...] = (
            (DEFAULT_PYTHON_ENV, "python"),
            (DEFAULT_CONDA_ENV, "conda"),
        )
        for default, kind in defaults:
            if (root / default).is_file():
                return replace(project, environment=Environment(kind=kind, file=default))
    return project


def _parse_environment(document: Mapping[str, Any], source: str) -> Environment:
    present = [key for key in ENV_FIELDS if key in document]
    if len(present) > 1:
        raise ProjectError(f"{source}: only one environment may be declared, found {', '.join(present)}")
    if not present:
        return Environment()
    key = present[0]
    value = document[key]
    if key in ("python_env", "conda_env"):
        if not isinstance(value, str) or not value:
            raise ProjectError(f"{source}: {key} must be the path of a file, got {_kind(value)}")
        if posixpath.isabs(value) or ".." in posixpath.normpath(value).split("/"):
            raise ProjectError(f"{source}: {key} must be a path inside the project, got {value!r}")
        return Environment(kind="python" if key == "python_env" else "conda", file=value)
    if not isinstance(value, dict) or not isinstance(value.get("image"), str) or not value["image"]:
        raise ProjectError(f"{source}: docker_env needs an image")
    volumes = value.get("volumes") or []
    if not isinstance(volumes, list) or not all(isinstance(v, str) for v in volumes):
        raise ProjectError(f"{source}: docker_env volumes must be a list of strings")
    variables: list[str | tuple[str, str]] = []
    for item in value.get("environment") or []:
        if isinstance(item, str):
            variables.append(item)
        elif isinstance(item, list) and len(item) == 2 and all(isinstance(i, str) for i in item):
            variables.append((item[0], item[1]))
        else:
            raise ProjectError(
                f"{source}: docker_env environment entries must be a variable name or a "
                f"[name, value] pair, got {item!r}"
            )
    return Environment(kind="docker", image=value["image"], volumes=tuple(volumes), variables=tuple(variables))


def _parse_entry_point(name: str, raw: Any) -> tuple[EntryPoint, list[str]]:
    where = f'entry point "{name}"'
    if not isinstance(raw, dict):
        raise ProjectError(f"{where}: must be a mapping with a command, got {_kind(raw)}")
    command = raw.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ProjectError(f"{where}: needs a command (a non-empty string)")
    raw_parameters = raw.get("parameters") or {}
    if not isinstance(raw_parameters, dict):
        raise ProjectError(f"{where}: parameters must be a mapping, got {_kind(raw_parameters)}")
    warnings: list[str] = []
    parameters: dict[str, Parameter] = {}
    for param_name, param_raw in raw_parameters.items():
        parameter, warning = _parse_parameter(name, str(param_name), param_raw)
        parameters[parameter.name] = parameter
        if warning:
            warnings.append(warning)
    for placeholder in template_fields(command, where):
        if placeholder not in parameters:
            declared = ", ".join(f'"{p}"' for p in parameters) or "none"
            raise ProjectError(
                f"{where}: the command uses {{{placeholder}}}, which is not a declared parameter (declared: {declared})"
            )
    return EntryPoint(name=name, command=command, parameters=parameters), warnings


def _parse_parameter(entry_point: str, name: str, raw: Any) -> tuple[Parameter, str | None]:
    where = f'entry point "{entry_point}": parameter "{name}"'
    default: Any = None
    if raw is None:
        declared = "string"
    elif isinstance(raw, str):
        declared = raw
    elif isinstance(raw, dict):
        declared = raw.get("type", "string")
        default = raw.get("default")
        if not isinstance(declared, str):
            raise ProjectError(f"{where}: type must be a string, got {_kind(declared)}")
    else:
        raise ProjectError(f"{where}: must be a type name or a mapping with type and default")
    warning = None
    kind: ParameterType
    if declared in PARAMETER_TYPES:
        kind = declared
    else:
        # MLflow treats an unknown type as a string; refusing it would break projects that run there.
        kind = "string"
        known = ", ".join(PARAMETER_TYPES)
        warning = f"{where}: unknown type {declared!r} is treated as string (known: {known})"
    if default is not None and not isinstance(default, (str, int, float, bool)):
        raise ProjectError(f"{where}: default must be a scalar, got {_kind(default)}")
    canonical: str | None = None
    if default is not None:
        try:
            canonical = coerce(kind, default, entry_point=entry_point, parameter=name)
        except ParameterValueError as exc:
            raise ProjectError(f"{exc} (the default in the MLproject)") from None
    return Parameter(name=name, type=kind, default=canonical, declared_type=declared), warning


def template_fields(command: str, where: str) -> list[str]:
    """The placeholder names of a command template, in order; refuses anything but ``{name}``."""
    names: list[str] = []
    try:
        pieces = list(string.Formatter().parse(command))
    except ValueError as exc:
        raise ProjectError(
            f"{where}: the command is not a valid template: {exc} (write {{{{ for a literal brace)"
        ) from None
    for _, field_name, spec, conversion in pieces:
        if field_name is None:
            continue
        if not field_name or field_name.isdigit() or any(c in field_name for c in ".[") or spec or conversion:
            raise ProjectError(
                f"{where}: the command placeholder {{{field_name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} is not supported; use {{name}} of a declared parameter"
            )
        names.append(field_name)
    return names


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(value), type(value).__name__)
