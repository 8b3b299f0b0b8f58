"""A sweep's state, as `sweep ls`, `sweep status` and the report say it, from its sweep.json.

``running`` (a driver is at work), ``completed``, ``interrupted`` (Ctrl-C or `sweep stop`: `sweep resume ID`
continues it), ``stale`` (sweep.json says running, but its driver's lease, ``<sweep_id>/_lease``, was not
renewed in time: the driver died; `sweep resume ID` continues it). A sweep.json without a status (an old one)
reads ``running`` while a trial runs, else ``completed``. This is the one place that decides.

The lease (written and renewed by ``orchestrator.lease``): JSON ``{"owner", "host", "pid", "renewed_at" (unix
seconds), "ttl_s"}``; it has expired once ``renewed_at + ttl_s`` has passed, or at once when its driver's
process on this host has ended.
"""
from __future__ import annotations

import json
import os
import socket
import time

import pyarrow as pa
import pyarrow.fs as pafs

from layout.paths import lease_file

STATES = ("running", "completed", "interrupted", "stale")


def sweep_state(meta: dict, trials_running: bool = False, lease: dict | None = None) -> str:
    status = meta.get("status")
    if status == "running" and lease is not None and lease_expired(lease):
        return "stale"
    if status in STATES:
        return status
    return "running" if trials_running else "completed"


def lease_expired(lease: dict, now: float | None = None) -> bool:
    """Whether the lease's driver is gone: not renewed within its ttl, or (on this host) its process has ended
    (a SIGKILLed driver's lease is then free at once, not after the ttl)."""
    try:
        if (time.time() if now is None else now) > float(lease["renewed_at"]) + float(lease["ttl_s"]):
            return True
    except (KeyError, TypeError, ValueError):
        return True  # an unreadable lease protects nothing
    return lease.get("host") == socket.gethostname() and not _alive(lease.get("pid"))


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def read_lease(fs: pafs.FileSystem, sweep_dir: str) -> dict | None:
    """The sweep's lease, or None when there is none (no driver ever took one, or it ended cleanly)."""
    try:
        with fs.open_input_stream(lease_file(sweep_dir)) as f:
            data = json.loads(f.read().decode())
    except FileNotFoundError:
        return None
    except (pa.ArrowException, OSError, ValueError):
        return {}  # present but unreadable: expired
    return data if isinstance(data, dict) else {}
