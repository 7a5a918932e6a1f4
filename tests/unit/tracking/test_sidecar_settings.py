"""``modelship tracking-sidecar``'s settings: every field of ``SidecarSettings`` is a flag,
a flag beats the environment, the environment beats the default, and a bad value stops the
command with a message that names the flag."""

from __future__ import annotations

import argparse

import pytest

from modelship.tracking.cli_sidecar import add_arguments, settings_from_args
from modelship.tracking.settings import SidecarSettings


def parse(*argv: str) -> SidecarSettings:
    parser = argparse.ArgumentParser(prog="modelship tracking-sidecar")
    add_arguments(parser)
    return settings_from_args(parser.parse_args(list(argv)))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SidecarSettings.model_fields:
        monkeypatch.delenv(f"MODELSHIP_SIDECAR_{name.upper()}", raising=False)


def test_defaults_without_flags_or_environment() -> None:
    s = parse()
    assert (s.max_buffer_bytes, s.max_attempts, s.dead_letter_max_bytes) == (256 << 20, 10, 64 << 20)
    assert (s.retry_initial, s.retry_max, s.read_wait, s.linger, s.batch_max_entities) == (0.2, 5.0, 10.0, 0.05, 1000)
    assert (s.host, s.port, s.drain_timeout, s.server_token) == ("127.0.0.1", 5001, 30.0, None)


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["--max-buffer-bytes", "1048576"], "max_buffer_bytes", 1 << 20),
        (["--max-attempts", "3"], "max_attempts", 3),
        (["--dead-letter-max-bytes", "0"], "dead_letter_max_bytes", 0),
        (["--retry-initial", "0.05"], "retry_initial", 0.05),
        (["--retry-max", "0.5"], "retry_max", 0.5),
        (["--read-wait", "2"], "read_wait", 2.0),
        (["--linger", "0"], "linger", 0.0),
        (["--batch-max-entities", "100"], "batch_max_entities", 100),
        (["--drain-timeout", "2"], "drain_timeout", 2.0),
        (["--server", "http://tracking:5000"], "server", "http://tracking:5000"),
        (["--server-token", "t0ken"], "server_token", "t0ken"),
        (["--port", "6001"], "port", 6001),
    ],
)
def test_each_flag_sets_its_field(argv: list[str], field: str, value: object) -> None:
    assert getattr(parse(*argv), field) == value


def test_every_field_is_a_flag_with_its_docstring_as_help() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    actions = {a.dest: a for a in parser._actions}
    for name, field in SidecarSettings.model_fields.items():
        assert name in actions, name
        assert field.description and field.description.split()[0] in (actions[name].help or ""), name


def test_environment_fills_what_no_flag_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSHIP_SIDECAR_MAX_BUFFER_BYTES", "131072")
    monkeypatch.setenv("MODELSHIP_SIDECAR_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("MODELSHIP_SIDECAR_SERVER_TOKEN", "from-env")
    s = parse("--max-attempts", "7")
    assert s.max_buffer_bytes == 131072  # from the environment
    assert s.max_attempts == 7  # the flag wins
    assert s.server_token == "from-env"


@pytest.mark.parametrize(
    ("argv", "env", "needle"),
    [
        (["--max-buffer-bytes", "1000"], {}, "--max-buffer-bytes (or MODELSHIP_SIDECAR_MAX_BUFFER_BYTES)"),
        (["--max-attempts", "0"], {}, "--max-attempts"),
        (["--retry-initial", "0"], {}, "--retry-initial"),
        (["--batch-max-entities", "5000"], {}, "--batch-max-entities"),
        ([], {"MODELSHIP_SIDECAR_MAX_BUFFER_BYTES": "lots"}, "MODELSHIP_SIDECAR_MAX_BUFFER_BYTES"),
    ],
)
def test_bad_values_stop_with_the_flag_named(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], env: dict[str, str], needle: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as stopped:
        parse(*argv)
    assert needle in str(stopped.value)
    assert "Traceback" not in str(stopped.value)


def test_a_non_number_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--max-buffer-bytes", "lots")
    assert "--max-buffer-bytes" in capsys.readouterr().err
