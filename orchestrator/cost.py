"""A sweep's estimated cost from measured step rates: core-hours and wall time on N workers.

The rates live in ``orchestrator/step_rates.json``, written by ``bench/project.py --write`` (real trials through
``trainers.train.run_trial``, a few steps per shape, one torch thread, solo: no seed bundle). A group whose shape
(task, cell, depth, seq_len, layer_norm, hidden, batch) was measured uses its rate; any other shape takes the
nearest measured shape of the same cell (same task first, nearest in work), scaled linearly in the work
``depth x T x batch x hidden^2`` but never below the cell's fastest measured step (a step's fixed costs do not
shrink); a cell never measured takes the nearest shape of any cell, and says so.

A sweep's cost is the sum over its training trials (every rate x seed of each group) of steps x seconds per step
plus the trial's measured fixed part ``start_s`` (build, data, the final evaluation); trials with ``steps = 0``
are timed whole. Its wall time on N workers (one trial per worker) is max(total / N, the longest trial of each
stage in turn): one Tuner runs the whole sweep. Probes
count in the seed trials (``orchestrator.probe_cost``: calls x a call's measured cost in training steps). Not
counted: Ray's start
and per-trial bookkeeping, analysis trials, early stops (``solve_every``), and seed bundles, which run a
group's seeds 1.3-1.9x faster on CPU (bench/bundle.py, bench/README.md): the seed stage is an upper bound.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from .plan import plan
from .spec import SweepSpec

RATES_FILE = Path(__file__).with_name("step_rates.json")
SHAPE = ("task", "cell", "depth", "seq_len", "layer_norm", "hidden", "batch")  # what sets a step's cost


def shape_of(spec: SweepSpec, group: dict) -> dict:
    """The cost-relevant shape of one group of ``spec``."""
    return {**{a: group[a] for a in ("task", "cell", "depth", "seq_len", "layer_norm")},
            "hidden": group.get("hidden", spec.hidden), "batch": group.get("batch", spec.batch)}  # or their axes


def work(shape: dict) -> float:
    """The scaling rule's unit of work: depth x T x batch x hidden^2."""
    return shape["depth"] * shape["seq_len"] * shape["batch"] * shape["hidden"] ** 2


def read_rates(path: Path | str = RATES_FILE) -> dict:
    """The rates file: {"measured": [how each run measured], "rates": [{SHAPE fields, "per": "step" | "trial",
    "device": "cpu" | "cuda", "seconds"}]}."""
    return json.loads(Path(path).read_text())


def write_rates(rates: list[dict], how: dict, path: Path | str = RATES_FILE) -> None:
    """Merge measured ``rates`` into the file (an entry of the same shape, ``per`` and device is replaced)."""
    path = Path(path)
    old = read_rates(path) if path.exists() else {"measured": [], "rates": []}
    key = lambda r: tuple(r[k] for k in SHAPE) + (r["per"], r["device"])  # noqa: E731
    new = {key(r): r for r in rates}
    merged = [r for r in old["rates"] if key(r) not in new] + list(new.values())
    merged.sort(key=lambda r: tuple(str(r[k]) for k in SHAPE))
    runs = [*old["measured"], {"at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **how,
                               "entries": len(rates)}]
    lines = ",\n".join("  " + json.dumps(r) for r in merged)  # one rate per line: diffs stay readable
    path.write_text(f'{{"measured": {json.dumps(runs, indent=1)},\n "rates": [\n{lines}\n]}}\n')


def rate_for(rates: list[dict], shape: dict, per: str, device: str = "cpu") -> tuple[float, float | None, str]:
    """Seconds per step (``per="step"``) or per trial for ``shape`` on ``device``; a trial's fixed seconds
    beyond its steps (``start_s``, as measured for the shape used, not scaled; None where not measured); and
    how they were found: "measured", "scaled" (another shape of the cell) or "other cell" (no shape of this
    cell was measured)."""
    same = [r for r in rates if r["per"] == per and r["device"] == device]
    for r in same:
        if all(r[k] == shape[k] for k in SHAPE):
            return r["seconds"], r.get("start_s"), "measured"
    cell = [r for r in same if r["cell"] == shape["cell"]]
    pool = cell or same
    if not pool:
        raise ValueError(f"no measured {device} rates per {per} in {RATES_FILE.name}")
    w = work(shape)
    best = min(pool, key=lambda r: (r["task"] != shape["task"], "start_s" not in r, abs(math.log(work(r) / w))))
    floor = min(r["seconds"] for r in pool)  # a step's fixed costs do not scale down: never below the fastest
    return max(best["seconds"] * w / work(best), floor), best.get("start_s"), "scaled" if cell else "other cell"


def trials_of(spec: SweepSpec) -> list[tuple[str, dict, int]]:
    """(stage, group, steps) for every training trial of the spec's plan."""
    return [(t.stage, t.group, t.train_steps) for t in plan(spec, bundles=False) if t.stage != "analysis"]


def wall_time(stages: dict[str, list[float]], workers: int) -> float:
    """One Tuner runs the whole sweep, so: max(all trial time / workers, the critical path: the longest trial of
    each stage in turn)."""
    total = sum(sum(c) for c in stages.values())
    return max(total / workers, sum(max(c) for c in stages.values() if c))


@dataclass(frozen=True)
class Estimate:
    """What ``estimate`` found for a spec."""

    trial_s: dict  # stage -> seconds of each of its training trials
    workers: int  # trials at once
    core_s: float  # total seconds of training (one core each)
    wall_s: float  # wall seconds on ``workers``
    measured: int  # groups whose shape was measured
    scaled: int  # groups scaled from another shape of their cell
    other_cell: tuple[str, ...]  # cells never measured (scaled from another cell's shape)
    no_start: int  # groups whose rate has no measured per-trial fixed part (start_s): steps only
    probe_s: float = 0.0  # of core_s: seconds in probes (seed trials; orchestrator.probe_cost)
    probe_guessed: tuple[str, ...] = ()  # "probe:cell" whose ratio was not measured for that cell


def estimate(spec: SweepSpec, workers: int, rates: dict | None = None, probe_rates: dict | None = None) -> Estimate:
    """The spec's training cost from the rates file (see the module docstring for the rule), probes included."""
    from . import probe_cost

    rates = (rates or read_rates())["rates"]
    ratios = (probe_rates or probe_cost.read())["ratios"]
    probe_s, guessed = 0.0, set()
    per = "step" if spec.steps else "trial"
    found = {}
    for g in spec.grid():
        found[spec.group_key(g)] = rate_for(rates, shape_of(spec, g), per)
    stages: dict[str, list[float]] = {}
    for stage, g, steps in trials_of(spec):
        seconds, start, _ = found[spec.group_key(g)]
        extra = 0.0
        if stage == "seed" and steps and spec.probes:  # steps = 0 trials are timed whole, probes included
            extra, missing = probe_cost.trial_probe_s(spec.probes, steps, g["cell"], g["depth"], seconds, ratios)
            probe_s, guessed = probe_s + extra, guessed | missing
        stages.setdefault(stage, []).append(seconds * max(steps, 1) + (start or 0.0) + extra)
    hows = [h for *_, h in found.values()]
    other = sorted({g["cell"] for g in spec.grid() if found[spec.group_key(g)][2] == "other cell"})
    no_start = sum(per == "step" and s is None for _, s, _ in found.values())
    return Estimate(stages, workers, sum(sum(c) for c in stages.values()), wall_time(stages, workers),
                    hows.count("measured"), hows.count("scaled"), tuple(other), no_start, probe_s,
                    tuple(sorted(guessed)))


def local_workers(cpus_per_trial: float, max_concurrent: int | None) -> tuple[int, int]:
    """(this machine's cores, trials that run at once on it with ``cpus_per_trial`` each)."""
    cores = os.cpu_count() or 1
    n = max(1, int(cores // cpus_per_trial))
    return cores, min(n, max_concurrent) if max_concurrent else n


def hours(s: float) -> str:
    return f"{s / 3600:.3g} h" if s >= 3600 else f"{s / 60:.3g} min" if s >= 60 else f"{s:.2g} s"
