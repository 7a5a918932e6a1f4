"""Mount targets the node agents had to create on the host, removed when no pod needs them.

Containers share the host's filesystem, so a mount path such as /data must exist there
for the bind mount; it is created empty and taken away again afterwards. Removing it
while a container of *another* bed still has a mount on it would unmount it there (the
kernel drops mounts on a deleted directory in every namespace), so the claims are kept in
one registry for the machine: a JSON file under an flock, each path with the pids of the
agents that use it and how often. A claim of an agent that died is dropped the next time
anyone looks.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.cluster.network import LOCK_DIR

Registry = dict[str, dict[str, int]]  # path -> {agent pid: claims}


def _alive(pid: str) -> bool:
    return os.path.exists(f"/proc/{pid}")


def _remove(path: str) -> None:
    try:
        os.rmdir(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
    except OSError:
        pass  # something was put there meanwhile: leave it


class MountPoints:
    def __init__(self, registry: Path | None = None) -> None:
        self.registry = registry or LOCK_DIR / "modelship-mountpoints.json"
        self._thread_lock = threading.Lock()
        self.pid = str(os.getpid())

    @contextmanager
    def _locked(self) -> Iterator[Registry]:
        with self._thread_lock, open(self.registry, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            text = f.read()
            reg: Registry = json.loads(text) if text.strip() else {}
            self._prune(reg)
            yield reg
            f.seek(0)
            f.truncate()
            f.write(json.dumps(reg))

    @staticmethod
    def _prune(reg: Registry) -> None:
        """Drop the claims of agents that are gone; remove what nobody claims any more (deepest first)."""
        for path in sorted(reg, key=len, reverse=True):
            reg[path] = {pid: n for pid, n in reg[path].items() if _alive(pid)}
            if not reg[path]:
                del reg[path]
                _remove(path)

    def prune(self) -> None:
        """Drop what dead agents claimed (a bed that was killed never released its mount points)."""
        with self._locked():
            pass

    def claim(self, target: str, is_dir: bool) -> bool:
        """Make target exist for a mount; False when it existed already and is nobody's to remove."""
        with self._locked() as reg:
            if target not in reg and os.path.lexists(target):
                return False
            chain = [target]
            parent = os.path.dirname(target)
            while parent and (parent in reg or not os.path.exists(parent)):
                chain.append(parent)
                parent = os.path.dirname(parent)
            if not os.path.lexists(target):
                if is_dir:
                    os.makedirs(target)
                else:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    open(target, "a").close()
            for path in chain:
                owners = reg.setdefault(path, {})
                owners[self.pid] = owners.get(self.pid, 0) + 1
            return True

    def release(self, target: str) -> None:
        with self._locked() as reg:
            chain = [target]
            parent = os.path.dirname(target)
            while parent in reg:
                chain.append(parent)
                parent = os.path.dirname(parent)
            for path in chain:
                owners = reg.get(path, {})
                if self.pid in owners:
                    owners[self.pid] -= 1
                    if owners[self.pid] <= 0:
                        del owners[self.pid]
                if path in reg and not owners:
                    del reg[path]
                    _remove(path)


MOUNT_POINTS = MountPoints()
