"""`sweep show NAME|FILE`: a resolved sweep in words and numbers, before anything runs.

The grid's axes, the fields that differ from SweepSpec's defaults (in --set syntax), the trial counts of each
stage (rows of the ``trials`` table, and Ray trials after seed bundling), probes, analyses, and the estimated
training cost on this machine's cores from the measured step rates (``orchestrator.cost``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .cost import RATES_FILE, estimate, hours, local_workers, read_rates
from .plan import plan, ray_trials, stage_counts
from .spec import AXES, RECORDS, Resources, SweepSpec
from .specfile import Target

FIXED = ("name", "scale", "vary", *(f"{a}s" for a in AXES))  # shown on their own lines


@dataclass(frozen=True)
class Counts:
    """Trials per stage: rows of the ``trials`` table and the Ray trials that run them."""

    groups: int  # grid groups
    lr_search: int  # search trials (rows = Ray trials)
    seed: int  # seed trials (rows)
    seed_ray: int  # Ray trials of the seed stage (a bundle runs a group's seeds as one)
    analysis: int  # analysis trials (rows = Ray trials)

    @property
    def rows(self) -> int:
        return self.lr_search + self.seed + self.analysis

    @property
    def ray(self) -> int:
        return self.lr_search + self.seed_ray + self.analysis


def counts(spec: SweepSpec, bundled_cells=None) -> Counts:
    """The counts of the spec's plan (``orchestrator.plan``; ``bundled_cells``: as ``plan.bundled``)."""
    trials = plan(spec, bundled_cells=bundled_cells)
    rows = stage_counts(trials)
    return Counts(len(spec.grid()), rows["lr_search"], rows["seed"],
                  len(ray_trials([t for t in trials if t.stage == "seed"])), rows["analysis"])


def _text(value) -> str:
    if isinstance(value, RECORDS):
        return value.text()
    if isinstance(value, tuple):
        return ",".join(_text(v) for v in value) if value else "''"
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def changed(spec: SweepSpec) -> list[str]:
    """``key=value`` for every non-grid field that differs from SweepSpec's default."""
    out, axes = [], {f for f, _ in spec.extra_axes()}
    for f in dataclasses.fields(SweepSpec):
        if f.name in FIXED or f.name in axes:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        if getattr(spec, f.name) != default:
            out.append(f"{f.name}={_text(getattr(spec, f.name))}")
    return out


def describe(target: Target, resources: Resources, rates: dict | None = None, bundled_cells=None) -> str:
    """The text of `sweep show` for a resolved target run with ``resources`` (``bundled_cells``: as ``counts``)."""
    spec, c = target.spec, counts(target.spec, bundled_cells)
    origin = f"from {target.source['path']}" if target.source else "a named sweep"
    lines = [f"{spec.name}: {origin}, base {target.base or 'none'}, scale {spec.scale}",
             f"grid: {c.groups} groups = " + " x ".join(
                 [f"{a}s {', '.join(_text(v) for v in getattr(spec, f'{a}s'))}" for a in AXES]
                 + [f"{f} {', '.join(_text(v) for v in vs)}" for f, vs in spec.extra_axes()])]
    lines.append("settings (differ from the defaults): " + (" ".join(changed(spec)) or "none"))
    bundled = f", in {c.seed_ray} Ray trials as bundles" if c.seed_ray != c.seed else ""
    n_rates = sorted({len(spec.rates(g)) for g in spec.grid()})
    pruner = {"none": "no pruner"}.get(spec.lr_search_pruner, f"pruner {spec.lr_search_pruner}, which the estimate "
                                                                "below leaves out")
    how = {"tpe": f"lr_search=tpe: {spec.lr_search_trials} Optuna trials per group x seeds, the lowest mean chosen; "
                  f"{pruner}",
           "grid": f"lr_search=grid: {'-'.join(map(str, (n_rates[0], n_rates[-1])[:len(n_rates)]))} rates per group "
                   "x seeds, the lowest mean chosen"}.get(spec.lr_search, f"fixed lr {spec.lr:g}")
    lines.append(f"trials: {c.lr_search} lr_search ({how}) + {c.seed} seed ({c.groups} groups x rates x "
                 f"{spec.seeds} seeds{bundled}) + {c.analysis} analysis = {c.rows} trials rows, {c.ray} Ray trials")
    lines.append(f"probes (seed trials): {', '.join(p.text() for p in spec.probes) or 'none'}; "
                 f"analyses: {', '.join(a.text() for a in spec.analyses) or 'none'}")
    cores, workers = local_workers(resources.cpus_per_trial, resources.max_concurrent)
    rates = rates or read_rates()
    cost = estimate(spec, workers, rates)
    lines.append(f"estimated cost: {cost.core_s / 3600:.3g} core-hours of training; {hours(cost.wall_s)} wall on this "
                 f"machine's {cores} cores ({workers} trial{'s' * (workers > 1)} at once, "
                 f"{resources.cpus_per_trial:g} CPU each)")
    runs = rates["measured"]
    how = f"{cost.measured} groups measured, {cost.scaled} scaled from their cell's nearest measured shape"
    if cost.other_cell:
        how += f", cells never measured ({', '.join(cost.other_cell)}) scaled from another cell's shape"
    if cost.no_start:
        how += f"; {cost.no_start} groups without a measured per-trial start (steps only)"
    latest = runs[-1] if runs else {}
    lines.append(f"  an estimate from orchestrator/{RATES_FILE.name} (median solo CPU step times, 1 thread, by "
                 f"bench/project.py --write; latest run {latest.get('at', '?')} at load {latest.get('load', '?')}): "
                 f"{how}; other shapes scale linearly in depth x T x batch x hidden^2")
    if cost.probe_s:
        lines.append(f"  probes: {hours(cost.probe_s)} of the {hours(cost.core_s)} of training "
                     "(calls x a call's cost in training steps, "
                     f"orchestrator/probe_rates.json from bench/probes.py --write"
                     + (f"; not measured for {', '.join(cost.probe_guessed)}: the probe's slowest measured cell"
                        if cost.probe_guessed else "") + ")")
    lines.append("  not counted: Ray's start and per-trial bookkeeping, analysis trials, early stops, other "
                 "load on the machine; seed bundles run 1.3-1.9x faster on CPU than these solo rates (bench/bundle.py)"
                 + ("; GPUs (the rates are CPU rates)" if resources.gpus_per_trial else ""))
    return "\n".join(lines)
