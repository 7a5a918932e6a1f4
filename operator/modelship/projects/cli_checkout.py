"""``modelship checkout URL DEST``: clone a project at a ref, as an Experiment's init container does.

Prints the commit checked out. ``modelship run`` on the checked-out directory records that
commit (and the remote URL) as the run's ``mlflow.source.git.*`` tags.
Exit codes: 0 done, 1 git failed (unknown ref, unreachable repository, missing path).
"""

from __future__ import annotations

import argparse
import sys

from modelship.projects.git import GitError, checkout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="git URL (https://, ssh, file://)")
    parser.add_argument("dest", help="directory to clone into (absent or empty)")
    parser.add_argument("--ref", default="HEAD", help="branch, tag or commit (default: HEAD)")
    parser.add_argument("--path", default=".", help="project directory that must exist in the repository")


def run(args: argparse.Namespace) -> int:
    try:
        done = checkout(args.url, args.dest, ref=args.ref, path=args.path)
    except GitError as exc:
        print(f"modelship checkout: {exc}", file=sys.stderr)
        return 1
    print(f"checked out {done.commit} ({args.ref}) into {done.root}")
    return 0
