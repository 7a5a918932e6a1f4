"""Mount targets made on the host are shared by every bed's agent and removed by the last one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.cluster.mountpoints import MountPoints


def agents(tmp_path: Path, *pids: str) -> list[MountPoints]:
    out = []
    for pid in pids:
        mp = MountPoints(tmp_path / "registry.json")
        mp.pid = pid
        out.append(mp)
    return out


def test_the_last_agent_to_release_a_created_path_removes_it(tmp_path: Path) -> None:
    me = str(os.getpid())
    parent = str(os.getppid())  # alive, standing in for a second bed's agent
    a, b = agents(tmp_path, me, parent)
    target = str(tmp_path / "run" / "secrets" / "sa")
    assert a.claim(target, True)
    assert b.claim(target, True)  # made by a, but b's too now: b must not be refused
    a.release(target)
    assert os.path.isdir(target)  # b still mounts it: deleting it would unmount b's containers
    b.release(target)
    assert not (tmp_path / "run").exists()


def test_a_path_that_existed_before_is_never_claimed(tmp_path: Path) -> None:
    (a,) = agents(tmp_path, str(os.getpid()))
    existing = tmp_path / "data"
    existing.mkdir()
    assert a.claim(str(existing), True) is False
    assert existing.is_dir()


def test_claims_of_a_dead_agent_are_dropped_and_its_paths_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    ghost, me = agents(tmp_path, str(dead.pid), str(os.getpid()))
    target = str(tmp_path / "left" / "behind")
    assert ghost.claim(target, True)
    other = str(tmp_path / "mine")
    assert me.claim(other, True)  # looking at the registry prunes the dead agent's claims
    assert not (tmp_path / "left").exists()
    me.release(other)
    assert not Path(other).exists()


def test_a_file_target_is_made_and_removed(tmp_path: Path) -> None:
    (a,) = agents(tmp_path, str(os.getpid()))
    target = str(tmp_path / "etc" / "config.yaml")
    assert a.claim(target, False)
    assert Path(target).is_file()
    a.release(target)
    assert not (tmp_path / "etc").exists()
