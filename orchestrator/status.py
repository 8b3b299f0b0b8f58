"""`sweep status`: a sweep's live state read from its results location (``analysis.live``), against the trials
its spec plans (``orchestrator.plan``)."""
from __future__ import annotations

import math
import sys
import time

from analysis.live import Planned, find_sweep, live_state, read_meta, render

from .plan import plan
from .spec import AXES, SweepSpec, UserError


def status_plan(spec: SweepSpec) -> list[Planned]:
    """The spec's plan as `sweep status` counts it: the trials of each stage and grid group, one ``Planned``
    each (a group's trials carry its axes as ``trials`` columns; clipping off is a null ``clip``, as
    ``trial_configs.trial_config`` records it), and one for the analyses (no training steps)."""
    out: dict[tuple, Planned] = {}
    for t in plan(spec, bundles=False):
        match = () if t.stage == "analysis" else tuple((a, (t.group[a] or None) if a == "clip" else t.group[a])
                                                       for a in AXES)
        key = (t.stage, t.group_key)
        old = out.get(key)
        out[key] = Planned(t.stage, match, (old.trials if old else 0) + 1, t.train_steps,
                           *(() if t.stage == "analysis" else (t.group["cell"],)))
    return list(out.values())


def plan_of(meta: dict) -> list[Planned]:
    """The plan of a sweep from its sweep.json (empty when it has no readable spec)."""
    try:
        return status_plan(SweepSpec.from_dict(meta["spec"]))
    except (KeyError, TypeError, UserError):
        return []


def print_status(results: str, target: str, *, watch: float | None = None, limit: int = 20, out=None) -> None:
    """Print the status screen of sweep ``target``; with ``watch``, redraw every ``watch`` seconds until the sweep
    is no longer running (clearing the screen on a terminal, else one block after another). Ctrl-C stops."""
    out = out or sys.stdout
    if watch is not None and not (watch > 0 and math.isfinite(watch)):
        raise UserError(f"invalid --watch {watch!r}; valid: a number of seconds > 0")
    if limit < 0:
        raise UserError(f"invalid --trials {limit!r}; valid: an integer >= 0")
    sweep_id = find_sweep(results, target)
    tty, cache = out.isatty(), {}
    try:
        while True:
            state = live_state(results, sweep_id, plan_of(read_meta(results, sweep_id)), cache=cache)
            text = render(state, limit)
            if watch and tty:
                out.write("\033[H\033[2J")
            out.write(text if not watch or tty else text + "\n")
            out.flush()
            if not watch or state.status != "running":
                return
            time.sleep(watch)
    except KeyboardInterrupt:
        out.write("\n")
