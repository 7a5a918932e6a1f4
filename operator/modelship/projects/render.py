"""Parameter resolution and command rendering for an entry point. Pure: no I/O.

Values are typed (``values.coerce``), then shell-quoted into the command template for
the place each placeholder takes: outside quotes, inside double or single quotes
(``quoting``). Parameters the entry point does not declare are appended as
``--key value``, key and value quoted, as MLflow does.
"""

from __future__ import annotations

import posixpath
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from modelship.projects.quoting import QuotingError, ShellContext
from modelship.projects.spec import EntryPoint, ProjectError
from modelship.projects.values import ParameterValueError, Value, coerce, has_scheme, text


@dataclass(frozen=True)
class ResolvedCommand:
    """An entry point with its parameter values settled."""

    entry_point: str
    command: str
    """The shell command to run in the project directory."""
    parameters: dict[str, str]
    """Every parameter as it is logged to the run: declared ones (defaults filled in,
    numbers in canonical form) then the extra ones, in the order given."""
    extra: tuple[str, ...] = ()
    """Names of the parameters the entry point does not declare."""
    local_paths: dict[str, str] = field(default_factory=dict)
    """Declared ``path`` parameters the caller gave that name a local path: the path the
    command receives (absolute when ``path_base`` was given). The runner checks they exist."""


def resolve_parameters(
    entry_point: EntryPoint, given: Mapping[str, Value], *, path_base: str | None = None
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Type and complete the parameters of ``entry_point``.

    Returns ``(logged, substituted, extra)``: the declared values as logged, the declared
    values as put into the command (a relative ``path`` given by the caller is made
    absolute against ``path_base``, as ``mlflow run`` does against its working directory;
    defaults stay relative to the project directory the command runs in), and the
    undeclared ones.
    """
    missing = [p.name for p in entry_point.parameters.values() if p.required and p.name not in given]
    if missing:
        names = ", ".join(f'"{m}"' for m in missing)
        noun = "parameter" if len(missing) == 1 else "parameters"
        raise ProjectError(f'entry point "{entry_point.name}": missing required {noun} {names}')
    logged: dict[str, str] = {}
    substituted: dict[str, str] = {}
    for name, parameter in entry_point.parameters.items():
        if name not in given:
            assert parameter.default is not None
            logged[name] = substituted[name] = parameter.default
            continue
        try:
            value = coerce(parameter.type, given[name], entry_point=entry_point.name, parameter=name)
        except ParameterValueError as exc:
            raise ProjectError(str(exc)) from None
        logged[name] = value
        substituted[name] = _local_path(value, path_base) if parameter.type == "path" else value
    extra = {key: text(value) for key, value in given.items() if key not in entry_point.parameters}
    return logged, substituted, extra


def render_command(
    entry_point: EntryPoint, given: Mapping[str, Value], *, path_base: str | None = None
) -> ResolvedCommand:
    """The shell command of ``entry_point`` with ``given`` parameters, quoted for ``bash -c``."""
    logged, substituted, extra = resolve_parameters(entry_point, given, path_base=path_base)
    where = f'entry point "{entry_point.name}"'
    shell = ShellContext()
    parts: list[str] = []
    for literal, field_name, _, _ in string.Formatter().parse(entry_point.command):
        shell.feed(literal)
        parts.append(literal)
        if field_name is not None:
            # spec.template_fields has refused any placeholder that is not a declared name.
            value = substituted[field_name]
            parts[-1] = shell.fix_before(parts[-1])
            try:
                parts.append(shell.quote(value))
            except QuotingError as exc:
                raise ProjectError(
                    f'{where}: parameter "{field_name}" is used inside {exc} in the command, '
                    "where a value cannot be quoted: only letters, digits and @%+=:,./-_ "
                    f"are accepted there, got {value!r} (assign it to a variable outside, "
                    f'V={{{field_name}}}, and use "$V")'
                ) from None
    if extra:
        if reason := shell.appendable:
            raise ProjectError(
                f"{where}: {reason}, so the parameters it does not declare "
                f"({', '.join(extra)}) cannot be appended to it"
            )
        parts[-1] = shell.fix_before(parts[-1]) if parts else ""
    command = "".join(parts)
    for key, value in extra.items():
        command += f" --{shlex.quote(key)} {shlex.quote(value)}"
    local_paths = {
        name: substituted[name]
        for name, parameter in entry_point.parameters.items()
        if parameter.type == "path" and name in given and not has_scheme(substituted[name])
    }
    return ResolvedCommand(
        entry_point=entry_point.name,
        command=command,
        parameters={**logged, **extra},
        extra=tuple(extra),
        local_paths=local_paths,
    )


def _local_path(value: str, base: str | None) -> str:
    """A ``file://`` URI or a relative path as an absolute path; other URIs are unchanged."""
    if value.startswith("file://"):
        return unquote(urlparse(value).path) or "/"
    if has_scheme(value) or base is None or posixpath.isabs(value):
        return value
    return posixpath.normpath(posixpath.join(base, value))
