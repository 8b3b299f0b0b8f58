"""What sweep.json records about how a sweep came to be: the exact command line, the command that reproduces
its grid, the spec file's text and hash, the project's git commit (and whether the tree had changes) when it
runs from a checkout, and the versions of the packages that shape its numbers.

Versions come from the installed distributions' metadata (no package is imported for them).
"""
from __future__ import annotations

import hashlib
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "ray", "optuna", "duckdb", "pyarrow", "numpy")
PROJECT = "rnn-dynamics-sweeps"  # this project's distribution name (`sweep --version`)
ROOT = Path(__file__).resolve().parent.parent  # the project's folder: a git checkout, or site-packages


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_state(root: Path = ROOT) -> dict | None:
    """``{"commit", "dirty"}`` of the checkout the project runs from; None when it is not one (or git is
    missing). ``dirty``: tracked files differ from the commit, or untracked files are not ignored."""
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=10)
        if top.returncode or Path(top.stdout.strip()).resolve() != root:
            return None
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True,
                                text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def reproduce(target: str, scale: str, sets: list[str]) -> str:
    """The `sweep launch` command that resolves to the same grid: the target (a named sweep or the spec file
    as given), the scale the spec resolved to, and every ``--set`` in order (``--seeds N`` as ``seeds=N``)."""
    args = ["sweep", "launch", target, "--scale", scale]
    for s in sets:
        args += ["--set", s]
    return shlex.join(args)


def provenance(argv: list[str], target: str, scale: str, sets: list[str], source: dict | None) -> dict:
    """The sweep.json fields: ``command`` (as typed, argv after the program), ``cwd``, ``reproduce``,
    ``spec_file_sha256`` (a spec file's text; the text itself is in ``spec_file``), ``git``, ``versions``."""
    out = {"command": shlex.join(["sweep", *argv]), "cwd": os.getcwd(), "reproduce": reproduce(target, scale, sets),
           "git": git_state(), "versions": {"python": platform.python_version(),
                                            **{p: version(p) for p in (PROJECT, *PACKAGES)}},
           "python_executable": sys.executable}
    if source is not None:
        out["spec_file_sha256"] = hashlib.sha256(source["text"].encode()).hexdigest()
    return out
