"""The tpe protocol's score of one Optuna trial (orchestrator.tpe_score): the mean final loss over its seeds,
BAD for a diverged, failed, lost or non-finite seed; checked against exact fractions and real ``trials`` rows."""
from __future__ import annotations

import math
from fractions import Fraction

from orchestrator.tpe_score import BAD, mean_score, seed_loss
from trainers.config import TrialConfig
from trainers.record import TrialWriter
from trainers.trial import trial_row


def test_the_score_is_the_exact_mean_over_seeds():
    losses = [0.1, 0.2, 0.7000000000000001, 1e-3]
    exact = sum(Fraction(x) for x in losses) / len(losses)
    assert mean_score(losses) == float(exact)
    assert mean_score([0.5]) == 0.5 and mean_score([2.0, 4.0]) == 3.0
    assert mean_score([3.0, 3.0, 3.0]) == 3.0


def test_a_bad_seed_makes_the_whole_trial_bad():
    for bad in (None, math.inf, -math.inf, math.nan, BAD):
        assert mean_score([0.1, bad, 0.2]) == BAD, bad
    assert mean_score([]) == BAD  # no seeds at all: nothing learnt about the rate
    assert mean_score([1e31, 1e31]) == BAD  # never above BAD


def test_a_seeds_loss_is_read_from_its_final_trials_row(tmp_path):
    def row(tid: str, status: str, loss: float | None) -> dict:
        cfg = TrialConfig(sweep="t", sweep_id="s", trial_id=tid, results=str(tmp_path), lr=0.01, group_key="g")
        w = TrialWriter(str(tmp_path), "s", tid)
        w.write_trial(trial_row(cfg, status=status, final_loss=loss, steps_done=10))
        return w.read_trial()

    assert seed_loss(row("a", "completed", 0.25)) == 0.25
    assert seed_loss(row("b", "diverged", None)) == BAD and seed_loss(row("c", "failed", None)) == BAD
    assert seed_loss(row("d", "completed", math.nan)) == BAD  # a NaN final loss counts as diverged
    assert seed_loss(row("e", "running", None)) is None and seed_loss(None) is None  # not final yet
