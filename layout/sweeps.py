"""The sweeps under a results location, their order, and the latest sweep of a name.

A sweep is a folder of the root holding a sweep.json or a table folder. Sweeps are ordered by their
sweep.json's ``created_at`` (a sweep without one first), then by id; "the latest sweep of a name" is the last
of that name in this order. Every command and API that takes "a sweep id or a name" resolves it by ``latest``.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

import pyarrow.fs as pafs

from . import paths
from .schemas import SCHEMAS

EARLIEST = dt.datetime.min.replace(tzinfo=dt.timezone.utc)


def sweep_ids(fs: pafs.FileSystem, root: str, only: str | None = None) -> list[str]:
    """The ids (folder names) of the sweeps under ``root``, sorted (``only``: that one alone, if it is one).
    Raises pyarrow's error (OSError, ArrowException) when the root cannot be listed."""
    marks = {paths.SWEEP_FILE, *SCHEMAS}
    out = []
    for d in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True)):
        if d.type != pafs.FileType.Directory or paths.is_hidden(d.base_name):
            continue
        if only is not None and d.base_name != only:
            continue
        children = fs.get_file_info(pafs.FileSelector(d.path, allow_not_found=True))
        if any(c.base_name in marks for c in children):
            out.append(d.base_name)
    return sorted(out)


def created(created_at: Any) -> dt.datetime | None:
    """A sweep.json's ``created_at`` as an aware datetime (UTC when it names no zone); None when missing or bad."""
    try:
        t = dt.datetime.fromisoformat(str(created_at))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def order(sweep: dict) -> tuple[dt.datetime, str]:
    """The sort key of a sweep (a dict with ``sweep_id`` and its sweep.json's ``created_at``): oldest first, a
    sweep without a readable ``created_at`` before all others."""
    return created(sweep.get("created_at")) or EARLIEST, sweep["sweep_id"]


def latest(sweeps: Iterable[dict], name_or_id: str) -> dict | None:
    """The sweep whose ``sweep_id`` is ``name_or_id``, else the latest (``order``) whose ``name`` is; None."""
    sweeps = list(sweeps)
    for s in sweeps:
        if s["sweep_id"] == name_or_id:
            return s
    named = [s for s in sweeps if s.get("name") == name_or_id]
    return max(named, key=order) if named else None
