"""The Dockerfile and scripts/build-image.sh agree; nothing is built here.

The script builds the image on a machine with no container registry by passing local base
images as the Dockerfile's base build args; these tests hold the two files to each other
(every base the Dockerfile takes is set by the script, every FROM is a base arg or a stage,
the defaults stay the registry's images) and check that the cached root file system is
keyed by its inputs. The script is sourced by bash, its expensive steps replaced by stubs.
tests/image/test_image.py builds the image and runs it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
SCRIPT = ROOT / "scripts" / "build-image.sh"
REGISTRY_BASES = {"PYTHON_BASE": "python:3.11-slim", "NODE_BASE": "node:20-slim"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def global_args() -> dict[str, str]:
    """The ARGs before the first FROM: the only ones a FROM line can use."""
    args: dict[str, str] = {}
    for word, rest in instructions():
        if word == "FROM":
            break
        if word == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
    return args


def sourced(*commands: str) -> str:
    """Run ``commands`` in bash after sourcing the script (which then runs nothing itself)."""
    script = f"source {SCRIPT}\n" + "\n".join(commands)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_bases_are_build_args_whose_defaults_are_the_registry_images() -> None:
    assert global_args() == REGISTRY_BASES


def test_every_from_is_a_base_arg_or_an_earlier_stage() -> None:
    stages: list[str] = []
    for word, rest in instructions():
        if word != "FROM":
            continue
        image, *alias = rest.split()
        arg = re.fullmatch(r"\$\{(\w+)\}", image)
        assert (arg and arg[1] in global_args()) or image in stages, f"FROM {image}: neither a base arg nor a stage"
        if alias:
            assert alias[0].upper() == "AS", rest
            stages.append(alias[1])
    assert stages == ["ui", "builder"]


def test_the_builder_and_the_runtime_use_the_same_python_base() -> None:
    """The venv is copied from the builder: its interpreter's path must exist in the runtime."""
    froms = [rest.split()[0] for word, rest in instructions() if word == "FROM"]
    assert froms == ["${NODE_BASE}", "${PYTHON_BASE}", "${PYTHON_BASE}"]


def test_the_script_sets_every_base_the_dockerfile_takes() -> None:
    out = sourced(
        "ensure_rootfs() { echo /cache/rootfs.tar; }",
        'ensure_base() { echo "localhost/base-from-$1"; }',
        'ensure_node_base() { echo "localhost/node-on-$1"; }',
        "build_args",
    )
    given = dict(line.split("=", 1) for line in out.splitlines())
    assert given == {
        "PYTHON_BASE": "localhost/base-from-/cache/rootfs.tar",
        "NODE_BASE": "localhost/node-on-localhost/base-from-/cache/rootfs.tar",
    }
    assert given.keys() == global_args().keys()


def test_the_root_file_system_has_what_the_dockerfile_runs() -> None:
    packages = sourced('echo "$PACKAGES"').strip().split(",")
    assert {"python3", "python3-venv", "git", "ca-certificates"} <= set(packages)
    # Debian's python3 has no `python` command: the Dockerfile must call python3.
    runs = " ".join(rest for word, rest in instructions() if word == "RUN")
    assert not re.search(r"(^|[\s&;])python\s", runs), runs
    assert sourced('echo "$SUITE"').strip() == "bookworm"  # python3 is 3.11 there, as in python:3.11-slim


@pytest.mark.parametrize(
    "change",
    [
        "SUITE=trixie",
        "MIRROR=http://mirror.example/debian",
        "SECURITY_MIRROR=http://mirror.example/debian-security",
        'PACKAGES="$PACKAGES,curl"',
        "ARCH=arm64",
        'make_rootfs() { debootstrap --variant=buildd "$SUITE" "$1" "$MIRROR"; }',
    ],
)
def test_the_cached_root_file_system_is_keyed_by_its_inputs(change: str) -> None:
    before, same, after = sourced("rootfs_key", "rootfs_key", change, "rootfs_key").split()
    assert re.fullmatch(r"[0-9a-f]{16}", before)
    assert before == same
    assert before != after


def test_the_storage_and_the_cache_are_outside_the_repository() -> None:
    store, cache = sourced('echo "$STORE"', 'echo "$CACHE"').split()
    assert store == "/var/tmp/modelship-image"
    for path in (store, cache):
        assert ROOT not in Path(path).resolve().parents


def test_the_image_carries_the_files_the_bed_mounts_for_it() -> None:
    """The bed stands in for the image with the checkout (tests/cluster/podspec.py): every
    directory it mounts is one the Dockerfile COPYs to the same place, and .dockerignore lets in."""
    from tests.cluster.podspec import PROJECT_IMAGE_FILES

    copies = {tuple(rest.split()[-2:]) for word, rest in instructions() if word == "COPY" and "--from" not in rest}
    for target, source in PROJECT_IMAGE_FILES.items():
        assert (source, target) in copies, f"the Dockerfile does not COPY {source} {target}"
        assert f"!{source}/" in (ROOT / ".dockerignore").read_text().splitlines()


def test_the_image_has_the_mlflow_client_the_examples_import() -> None:
    """The examples' trainers import mlflow: the image installs the train extra, whose
    mlflow-skinny is the release of the test extra's mlflow (the client the tests prove)."""
    import tomllib

    runs = " ".join(rest for word, rest in instructions() if word == "RUN")
    assert "pip install '.[train]'" in runs
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (skinny,) = extras["train"]
    (mlflow,) = [d for d in extras["test"] if d.startswith("mlflow==")]
    assert skinny.removeprefix("mlflow-skinny==") == mlflow.removeprefix("mlflow==")
    for example in sorted((ROOT / "manifests" / "examples").glob("*/train.py")):
        assert "import mlflow" in example.read_text(), example
