"""The command line shared by the ``check_*.py`` acceptance checks of the named sweeps.

``sweep_under_check(name)`` parses ``--scale`` (quick by default), ``--results`` (a new temporary directory by
default), ``--sweep-id`` (check that finished sweep instead of launching one) and ``--set key=value``
(overrides for the launch, as on ``sweep launch``), launches the sweep on a private local Ray when no id is
given, and returns the results directory and the sweep id. ``check(name)`` does that, then ``sweep verify``:
the paper's claims, declared once in ``orchestrator/sweeps/<name>_claims.py``, judged on the sweep.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from orchestrator.sweeps import resolve
from orchestrator.launch import launch
from orchestrator.verify import verify


def sweep_under_check(name: str, description: str | None = None) -> tuple[str, str]:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--scale", default="quick", help="the scale to launch (default quick)")
    ap.add_argument("--results", default=None, help="results directory (default: a new temporary one)")
    ap.add_argument("--sweep-id", default=None, help="check this finished sweep instead of launching one")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="key=value override for the launch")
    args = ap.parse_args()
    results = args.results or tempfile.mkdtemp(prefix=f"check-{name}-")
    if args.sweep_id is not None:
        return results, args.sweep_id
    t0 = time.perf_counter()
    sid = launch(resolve(name, args.scale, args.sets), results)
    print(f"launched {sid} under {results}: {time.perf_counter() - t0:.0f} s wall "
          f"(load average at the end {os.getloadavg()[0]:.1f})")
    return results, sid


def check(name: str, description: str | None = None) -> int:
    """Launch (or read) sweep ``name`` as above and print its "Paper vs this run" table with each tolerance;
    the exit status of ``sweep verify``: 1 when a claim expected at the sweep's scale does not hold."""
    results, sid = sweep_under_check(name, description)
    return verify(results, sid, why=True)
