"""The tpe protocol's pruners (``SweepSpec.lr_search_pruner``): Optuna's own, fed the mean loss over an Optuna
trial's seeds at each step its trials report to Ray Tune (``orchestrator.searcher``).

- ``halving``: asynchronous successive halving (Optuna's ``SuccessiveHalvingPruner``): rungs at r, 3r, 9r, ...
  steps, r the larger of the first report (``TrialConfig.report_every``) and 1% of the steps (Optuna's own
  "auto" rule); at each rung a trial goes on only if its mean is in the best third of the trials that reached
  that rung so far.
- ``hyperband``: Optuna's ``HyperbandPruner`` (several successive-halving brackets with different first rungs,
  from r up to the trials' steps), reduction factor 3.
- ``none``: every Optuna trial trains to the end.
"""
from __future__ import annotations

PRUNERS = ("halving", "hyperband", "none")
REDUCTION = 3  # both pruners' reduction factor: a third of the trials at a rung go on to the next


def make_pruner(name: str, steps: int, first_report: int):
    """The Optuna pruner ``name`` for trials of ``steps`` steps that first report at step ``first_report``; None
    for ``none`` (the study keeps Optuna's default, which never prunes trials that report nothing)."""
    import optuna  # the driver's; `sweep show` and validation need only the names

    first = max(1, min(first_report, steps), steps // 100)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=REDUCTION)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=first, max_resource=max(first, steps),
                                              reduction_factor=REDUCTION)
    return None
