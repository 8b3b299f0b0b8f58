"""A sweep's state, as `sweep ls`, `sweep status` and the report say it, from its sweep.json.

``running`` (a driver is at work), ``completed``, ``interrupted`` (Ctrl-C or `sweep stop`: `sweep resume ID`
continues it). A sweep.json without a status (an old one) reads ``running`` while a trial runs, else
``completed``. This is the one place that decides; the driver's lease (``stale``) joins it here.
"""
from __future__ import annotations

STATES = ("running", "completed", "interrupted")


def sweep_state(meta: dict, trials_running: bool = False) -> str:
    status = meta.get("status")
    if status in STATES:
        return status
    return "running" if trials_running else "completed"
