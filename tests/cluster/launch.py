"""Start one container's process inside its pod: the last step before exec.

Run by the node agent as ``python launch.py SPEC.json``. It joins the pod's network
namespace, takes a mount and UTS namespace of its own, bind-mounts the pod's volumes at
their mount paths (visible to this process only), sets the hostname to the pod's name,
changes directory and replaces itself with the container's command. Standard library
only: it runs before anything of the container exists.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
O_PATH = 0o10000000
# The checkout this bed runs from (its venv is inside): tests/cluster/launch.py -> root.
PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src: str | None, dst: str, flags: int) -> None:
    _check(_libc.mount(src.encode() if src else None, dst.encode(), None, flags, None), f"mount {src} {dst}")


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def main(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    netns = os.open(f"/run/netns/{spec['netns']}", os.O_RDONLY)
    _check(_libc.setns(netns, CLONE_NEWNET), "setns")
    os.close(netns)
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare")
    _mount(None, "/", MS_REC | MS_PRIVATE)
    hostname = spec["hostname"].encode()
    _check(_libc.sethostname(hostname, len(hostname)), "sethostname")
    # The root filesystem is the host's: a volume at /tmp would hide what lives under it
    # (the pod's other volume sources, and the project and its venv when checked out
    # there). Everything needed is opened first and mounted from its descriptor, and the
    # project is mounted back where a volume covered it.
    workdir = spec["workingDir"]
    host_workdir = os.open(workdir, O_PATH) if os.path.isdir(workdir) else None
    handles = {m["source"]: os.open(m["source"], O_PATH) for m in spec["mounts"]}
    project = os.open(PROJECT, O_PATH)
    for m in spec["mounts"]:
        src, dst = m["source"], m["target"]
        if os.path.isdir(src):
            os.makedirs(dst, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if not os.path.exists(dst):
                open(dst, "a").close()
        _mount(f"/proc/self/fd/{handles[src]}", dst, MS_BIND | MS_REC)
        if m.get("readOnly"):
            _mount(None, dst, MS_BIND | MS_REMOUNT | MS_RDONLY)
        if _under(PROJECT, dst) and PROJECT != dst:
            os.makedirs(PROJECT, exist_ok=True)
            _mount(f"/proc/self/fd/{project}", PROJECT, MS_BIND | MS_REC)
    for fd in [*handles.values(), project]:
        os.close(fd)
    # The directory as the container sees it; else (a volume hid the bed's scratch
    # directory) the one opened before the mounts.
    if os.path.isdir(workdir):
        os.chdir(workdir)
    elif host_workdir is not None:
        os.fchdir(host_workdir)
    else:
        os.chdir(workdir)  # fails with the kubelet's kind of error
    argv = spec["argv"]
    try:
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as exc:
        # The kubelet's message for a command that cannot start; 127/126 like a shell.
        print(f"exec {argv[0]!r}: {exc.strerror}", file=sys.stderr)
        sys.exit(127 if isinstance(exc, FileNotFoundError) else 126)


if __name__ == "__main__":
    main(sys.argv[1])
