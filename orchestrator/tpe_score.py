"""The tpe protocol's score of one Optuna trial: the mean final loss over its seeds (``SweepSpec.lr_search``).

One Optuna trial trains every seed of its group at one rate; the study is told the mean of their final losses.
A seed that diverged or failed, or whose final loss is not finite, makes the whole trial ``BAD`` (a very large
loss, so TPE learns that the rate was too high), as the grid protocol ranks a rate with a diverged seed after
every rate without one (analysis.selection).
"""
from __future__ import annotations

import math

BAD = 1e30  # what a study is told for a rate with a diverged, failed or lost seed


def seed_loss(row: dict | None) -> float | None:
    """A seed's final loss from its ``trials`` row: None while it has no final row (still running), ``BAD``
    unless it completed with a finite loss."""
    if row is None or row["status"] == "running":
        return None
    loss = row["final_loss"]
    return float(loss) if row["status"] == "completed" and loss is not None and math.isfinite(loss) else BAD


def mean_score(losses: list[float | None]) -> float:
    """The value told to the study for one Optuna trial from its seeds' final losses (None: a seed with no
    final loss, e.g. one lost by Tune): their mean, or ``BAD`` if any is missing, not finite or ``BAD``."""
    if not losses or any(x is None or not math.isfinite(x) or x >= BAD for x in losses):
        return BAD
    return min(math.fsum(losses) / len(losses), BAD)
