"""The plan of a sweep: every trial its spec runs, in one list, written once.

``plan(spec)`` turns a ``SweepSpec`` into its planned trials: for each grid group its seed trials, then one
trial per analysis. A group's seed trials: every rate of the group's grid x every seed (trial id
``<group>-s<seed>``, with ``-lr<rate>`` before the seed where the group has several rates); under tpe, for each
of its ``lr_search_trials`` Optuna trials k every seed at the rate Optuna suggests (trial id
``<group>-tpe<k>-s<seed>``, ``tpe`` = k). The seeds of one rate (tpe: of one Optuna trial) and, under grid, all
the group's rates, are one bundle, one Ray trial, where the cell allows. Everything that counts or
lists a sweep's trials reads this list: the searcher (``orchestrator.searcher``), `sweep show`
(``orchestrator.show``), the cost model (``orchestrator.cost``), `sweep status` (``orchestrator.status``) and
``SweepSpec.stage_trials``. No torch here unless bundles are asked for (the bundle rule asks the cell registry).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .spec import SweepSpec

STAGES = ("lr_search", "seed", "analysis")  # the ``stage`` column of ``trials`` (lr_search: sweeps from before
#                                              the tpe protocol trained every seed of each Optuna trial)


@dataclass(frozen=True)
class PlannedTrial:
    """One row of the ``trials`` table a sweep will have."""

    stage: str  # seed | analysis (lr_search: older sweeps only)
    group: dict  # the grid group's axes (an analysis: the settings it runs on)
    group_key: str  # SweepSpec.group_key of the group ("" for an analysis: it belongs to no group)
    trial_id: str
    seed: int
    lr: float | None  # None: suggested by the group's Optuna study (tpe), when the searcher issues the trial
    bundle: str | None = None  # the Ray trial id of the seed bundle it trains in; None: a Ray trial of its own
    train_steps: int = 0  # the optimiser steps it trains (an analysis: none)
    analysis: str = ""  # an analysis trial: the analysis it computes (trainers.analyses)
    tpe: int | None = None  # tpe: the group's Optuna trial (0 .. lr_search_trials - 1) it is one seed of

    @property
    def ray_trial(self) -> str:
        """The Ray trial that runs it: its bundle, else itself."""
        return self.bundle or self.trial_id


def bundled(spec: SweepSpec, group: dict, bundled_cells=None) -> bool:
    """Whether ``group`` trains its rates x seeds as one bundle, one Ray trial (trainers.bundle).
    ``bundled_cells``: the cells that bundled, as a past sweep's sweep.json records them (then no torch)."""
    if not (spec.bundle_seeds and spec.seeds * len(spec.rates(group)) > 1):
        return False
    if bundled_cells is not None:
        return group["cell"] in bundled_cells
    from trainers.bundle import bundle_supported  # torch

    return bundle_supported(group["cell"])


def plan(spec: SweepSpec, *, bundles: bool = True, bundled_cells=None) -> list[PlannedTrial]:
    """Every trial of ``spec``, group by group (tpe: Optuna trial by Optuna trial), then the analyses.
    ``bundles=False``: no trial names a bundle (rows only, without importing torch: `sweep status` counts rows);
    ``bundled_cells``: as ``bundled``."""
    out = []
    for g in spec.grid():
        key, steps = spec.group_key(g), g.get("steps", spec.steps)  # steps may be an axis (orchestrator.axes)
        bundle = bundles and bundled(spec, g, bundled_cells)
        if spec.lr_search == "tpe":  # each Optuna trial: every seed at its rate, one bundle where allowed
            out += [PlannedTrial("seed", g, key, f"{key}-tpe{k}-s{s}", s, None, f"{key}-tpe{k}-seeds" if bundle
                                 else None, steps, tpe=k) for k in range(spec.lr_search_trials)
                    for s in range(spec.seeds)]
            continue
        rates = spec.rates(g)
        out += [PlannedTrial("seed", g, key, f"{key}-lr{lr:g}-s{s}" if len(rates) > 1 else f"{key}-s{s}", s,
                             lr, f"{key}-seeds" if bundle else None, steps) for lr in rates for s in range(spec.seeds)]
    for a in spec.analyses:  # on the first group's settings at the largest nu, the longest memory
        g = dict(spec.grid()[0], nu=max(spec.nus), cell=a.cell or a.name)
        out.append(PlannedTrial("analysis", g, "", a.trial_id, 0, spec.lr, analysis=a.name))
    return out


def stage_counts(trials: list[PlannedTrial]) -> dict[str, int]:
    """Rows of ``trials`` per stage (every stage named, 0 where none)."""
    n = Counter(t.stage for t in trials)
    return {s: n[s] for s in STAGES}


def ray_trials(trials: list[PlannedTrial]) -> list[list[PlannedTrial]]:
    """``trials`` by the Ray trial that runs them (a bundle's members together), in plan order."""
    out: dict[str, list[PlannedTrial]] = {}
    for t in trials:
        out.setdefault(t.ray_trial, []).append(t)
    return list(out.values())
