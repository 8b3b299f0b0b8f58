"""Trial configs: what one planned trial (``orchestrator.plan``) trains, as JSON-ready data (a ``TrialConfig``
as a dict): what a Ray trial carries and what ``trials`` records.

A config takes every field the spec shares with ``TrialConfig`` by name (``SHARED``: hidden, steps, optimizer,
probes, checkpoint_every, ...), then its grid group's values, then what its place in the plan sets (stage, trial
id, seed, rate). A new training option is one field of each dataclass of the same name, and nothing here.
"""
from __future__ import annotations

import dataclasses
import json

from trainers.config import TrialConfig

from .plan import PlannedTrial
from .spec import SweepSpec

SHARED = tuple(sorted({f.name for f in dataclasses.fields(TrialConfig)}
                      & {f.name for f in dataclasses.fields(SweepSpec)}))  # the fields a trial takes from its spec


def trial_config(spec: SweepSpec, sweep_id: str, results: str, group: dict, **fields) -> dict:
    """A trial's config: the spec's shared fields (``SHARED``), then the group's, then ``fields``."""
    shared = {name: getattr(spec, name) for name in SHARED}
    shared.update(sweep=spec.name, sweep_id=sweep_id, results=results, init=spec.init_for(group["cell"]))
    group = dict(group, clip=group.get("clip") or None, nu_max=spec.nu_max(group["nu"]),
                 **spec.step_schedule(group["task"]))
    return json.loads(TrialConfig(**{**shared, **group, **fields}).to_json())


def planned_config(spec: SweepSpec, sweep_id: str, results: str, trial: PlannedTrial, lr: float | None = None) -> dict:
    """The config of a planned trial; ``lr``: its rate where the plan leaves it to the search (``trial.lr`` None).
    Only seed trials run the spec's probes (a search trial only picks a rate; an analysis trains nothing)."""
    fields = dict(stage=trial.stage, trial_id=trial.trial_id, seed=trial.seed, lr=lr if trial.lr is None else trial.lr)
    if trial.stage != "seed":
        fields["probes"] = ()
    if trial.tpe is not None and spec.lr_search_pruner != "none":
        fields["pruning"] = True  # the sweep's pruner may stop it (orchestrator.searcher)
    if trial.analysis:
        fields["analysis"] = trial.analysis
    return trial_config(spec, sweep_id, results, trial.group, group_key=trial.group_key, **fields)


def ray_trial_config(spec: SweepSpec, sweep_id: str, results: str, trials: list[PlannedTrial],
                     lr: float | None = None) -> dict:
    """The config a Ray trial carries for ``trials`` (one Ray trial's, ``plan.ray_trials``): a seed bundle's
    ``{"trial_id", "members"}``, else the one trial's config."""
    configs = [planned_config(spec, sweep_id, results, t, lr) for t in trials]
    return {"trial_id": trials[0].bundle, "members": configs} if trials[0].bundle else configs[0]
