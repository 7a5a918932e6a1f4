"""Parameter values reach the command literally wherever the template puts them: unquoted,
inside double quotes, inside single quotes, inside ``$(...)``. Checked with real bash: the
command prints what it received, and a value that would run a command leaves a trace."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelship.projects import ProjectError, parse_project, render_command

NASTY = [
    "$(id)",
    "`id`",
    "$(touch pwned)",
    "`touch pwned`",
    '"; touch pwned; echo "',
    "'; touch pwned; echo '",
    "\\",
    'a\\"b',
    "$HOME",
    "${HOME}",
    "a b  c",
    "",
    "new\nline",
    "!bang",
    "*",
    "it's",
    "\\$(touch pwned)",
    "$'\\x41'",
    "EOF\ntouch pwned",
]

TEMPLATES = {
    "bare": "printf '%s\\n' {v}",
    "double quotes": 'printf "%s\\n" "{v}"',
    "inside a double-quoted word": 'printf "%s\\n" "<{v}>"',
    "single quotes": "printf '%s\\n' '<{v}>'",
    "two in one double-quoted word": 'printf "%s\\n" "{v}:{v}"',
    "ANSI-C quotes": "printf '%s\\n' $'<{v}>'",
    "command substitution in double quotes": 'printf "%s\\n" "$(printf "%s" {v})"',
    "quoted inside command substitution": 'printf "%s\\n" "$(printf "%s" "{v}")"',
    "after a dollar": "printf '%s\\n' ${v}",
    "after a backslash": "printf '%s\\n' \\{v}",
    "after a backslash in double quotes": 'printf "%s\\n" "\\{v}"',
}
EXPECTED = {
    "inside a double-quoted word": "<{}>",
    "single quotes": "<{}>",
    "two in one double-quoted word": "{0}:{0}",
    "ANSI-C quotes": "<{}>",
    "after a dollar": "${}",
    "after a backslash": "\\{}",
    "after a backslash in double quotes": "\\{}",
}


def run(command: str, cwd: Path) -> str:
    out = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, (command, out.stderr)
    return out.stdout


def entry_point(command: str):  # type: ignore[no-untyped-def]
    escaped = command.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    text = f'entry_points: {{e: {{command: "{escaped}", parameters: {{v: string}}}}}}'
    return parse_project(text).entry_points["e"]


@pytest.mark.parametrize("template", list(TEMPLATES), ids=list(TEMPLATES))
@pytest.mark.parametrize("value", NASTY, ids=[repr(v) for v in NASTY])
def test_values_are_received_literally(tmp_path: Path, template: str, value: str) -> None:
    ep = entry_point(TEMPLATES[template])
    assert ep.command == TEMPLATES[template]
    command = render_command(ep, {"v": value}).command
    out = run(command, tmp_path)
    assert not (tmp_path / "pwned").exists(), f"{command!r} ran a command from the value"
    assert out == EXPECTED.get(template, "{}").format(value) + "\n", command


@pytest.mark.parametrize("value", ["$(touch pwned)", "`touch pwned`", "x y"])
def test_extra_parameters_are_literal(tmp_path: Path, value: str) -> None:
    ep = entry_point("printf '%s\\n' {v}")
    out = run(render_command(ep, {"v": "x", "extra": value}).command, tmp_path)
    assert out.splitlines() == ["x", "--extra", value] and not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("template", ["python train.py {v} # train", "echo '{v}", "cat <<EOF\n{v}"])
def test_extra_parameters_are_refused_where_they_cannot_go(template: str) -> None:
    ep = entry_point(template)
    assert render_command(ep, {"v": "1"}).command
    with pytest.raises(ProjectError, match="cannot be appended"):
        render_command(ep, {"v": "1", "seed": "1"})


def test_how_each_place_is_quoted() -> None:
    """Unquoted: ``shlex.quote`` (as before, and as MLflow). In double quotes: ``$ ` " \\``
    escaped, so ``"{v}"`` gets the value and not its single-quoted form. In single quotes:
    the quote is closed around the quoted value."""
    ep = entry_point("python train.py --name {v} --tag=\"{v}\" '{v}'")
    assert render_command(ep, {"v": "a b"}).command == ("python train.py --name 'a b' --tag=\"a b\" '''a b'''")
    assert render_command(ep, {"v": "$(id)"}).command == (
        "python train.py --name '$(id)' --tag=\"\\$(id)\" '''$(id)'''"
    )


@pytest.mark.parametrize(
    ("template", "where"),
    [
        ("echo `echo {v}`", "backquotes"),
        ('echo "`echo {v}`"', "backquotes"),
        ("echo ${{X:-{v}}}", "${...}"),
        ("echo $(( {v} + 1 ))", "$((...))"),
        ("cat <<EOF\n{v}\nEOF", "here-document"),
    ],
)
def test_places_that_cannot_be_quoted_take_only_plain_values(tmp_path: Path, template: str, where: str) -> None:
    ep = entry_point(template)
    with pytest.raises(ProjectError) as info:
        render_command(ep, {"v": "$(touch pwned)"})
    message = str(info.value)
    assert 'parameter "v"' in message and where in message and 'entry point "e"' in message
    # a value that needs no quoting is fine there
    plain = render_command(ep, {"v": "41"}).command
    assert "41" in plain and not (tmp_path / "pwned").exists()


def test_a_newline_value_in_a_comment_is_refused() -> None:
    ep = entry_point("echo hi # {v}")
    assert render_command(ep, {"v": "no newline; $(id)"}).command.startswith("echo hi # ")
    with pytest.raises(ProjectError, match="comment"):
        render_command(ep, {"v": "x\ntouch pwned"})


@settings(max_examples=150, deadline=None)
@given(value=st.text(alphabet="$`\"'\\ \n\t#;&|(){}<>*?!~a=-", max_size=12), template=st.sampled_from(list(TEMPLATES)))
def test_any_value_is_received_literally(tmp_path_factory: pytest.TempPathFactory, value: str, template: str) -> None:
    cwd = tmp_path_factory.mktemp("q")
    command = render_command(entry_point(TEMPLATES[template]), {"v": value}).command
    out = run(command + " && ls", cwd)  # ls: any file a value made would show
    if "substitution" in template:
        value = value.rstrip("\n")  # what $(...) does to any output
    assert out == EXPECTED.get(template, "{}").format(value) + "\n", command
