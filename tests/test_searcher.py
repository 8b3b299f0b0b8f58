"""SweepSearcher, the one searcher of a sweep's one Tuner, driven by hand with real Optuna studies and real trials
(``run_trial`` writing Parquet on tmp_path): the order it issues trials in, save/restore in the middle of a
sweep, and the state a killed driver leaves behind."""
from __future__ import annotations

import math

import pytest
from ray.tune.search import Searcher

from orchestrator.sweeps import resolve
from orchestrator.searcher import SweepSearcher
from trainers.config import TrialConfig
from trainers.train import run_trial

SETS = ["cells=lru", "nus=0.9", "seeds=2", "steps=5", "batch=8", "eval_batch=16", "checkpoint_every=0",
        "grad_norm_every=0", "analyses=hessian_opt:lru"]
KEY = "lru-d1-nu0.9"


def spec(budget: int):
    protocol = "tpe" if budget else "none"
    sets = SETS + [f"lr_search={protocol}", f"lr_search_trials={budget}"]
    return resolve("curse-of-memory", "smoke", sets).validate()


def run(suggestion: dict) -> dict:
    return run_trial(TrialConfig.from_dict(suggestion["trial"]))


def best(pairs: list[tuple[dict, dict]]) -> float:
    """The rate of the lowest finite final loss among (suggestion, summary) pairs, computed here from the
    summaries the trials returned (the searcher reads the ``trials`` rows instead)."""
    ok = [(s["final_loss"], c["trial"]["lr"]) for c, s in pairs if math.isfinite(s["final_loss"])]
    return min(ok)[1]


def studies(s: SweepSearcher) -> list:
    return [[(t.number, t.state.name, t.params, t.values) for t in st.trials] for st in s.studies]


def test_save_restore_round_trips_mid_sweep(tmp_path, one_thread):
    results = str(tmp_path)
    a = SweepSearcher(spec(3), "S", results, threads=1)
    t1, t2 = a.suggest("t1"), a.suggest("t2")
    assert [t["trial"]["trial_id"] for t in (t1, t2)] == [f"lr-{KEY}-0", f"lr-{KEY}-1"]
    s1 = run(t1)
    a.on_trial_complete("t1", s1)
    a.save(str(tmp_path / "state.pkl"))
    b = SweepSearcher(spec(3), "S", results, threads=1)
    b.restore(str(tmp_path / "state.pkl"))
    assert (b.issued, b.told, b.lrs, b.live.keys()) == (a.issued, a.told, {}, {"t2"})
    assert studies(b) == studies(a) and studies(a)[0][0][1] == "COMPLETE" and studies(a)[0][1][1] == "RUNNING"
    # the restored one goes on exactly as the original: the same third rate from TPE, then the analysis,
    # then nothing (None, not FINISHED) while the search runs
    t3 = a.suggest("t3")
    assert b.suggest("t3") == t3 and t3["trial"]["trial_id"] == f"lr-{KEY}-2"
    t4 = a.suggest("t4")
    assert b.suggest("t4") == t4 and t4["trial"]["stage"] == "analysis" and t4["trial"]["analysis"] == "hessian_opt"
    assert a.suggest("t5") is None and b.suggest("t5") is None
    s2, s3 = run(t2), run(t3)
    for s in (a, b):
        s.on_trial_complete("t2", s2)
        s.on_trial_complete("t3", s3)
    lr = best([(t1, s1), (t2, s2), (t3, s3)])
    assert a.lrs == b.lrs == {KEY: (lr,)}
    seeds = a.suggest("t6")
    assert b.suggest("t6") == seeds and seeds["trial"]["trial_id"] == f"{KEY}-seeds"
    assert [(m["trial_id"], m["stage"], m["lr"]) for m in seeds["trial"]["members"]] == [
        (f"{KEY}-s0", "seed", lr), (f"{KEY}-s1", "seed", lr)]
    assert a.suggest("t7") == b.suggest("t7") == Searcher.FINISHED and a.remaining() == 0


def test_a_killed_driver_leaves_a_state_that_names_every_trial_it_started(tmp_path, one_thread):
    results = str(tmp_path)
    a = SweepSearcher(spec(2), "S", results, threads=1)
    t1, t2, t3 = a.suggest("t1"), a.suggest("t2"), a.suggest("t3")
    assert [t["trial"]["stage"] for t in (t1, t2, t3)] == ["lr_search", "lr_search", "analysis"]
    s1, s2 = run(t1), run(t2)  # both search trials finish, and the analysis is under way,
    a.on_trial_complete("t1", s1)  # but the driver is killed after hearing of t1 only (which writes no state)
    b = SweepSearcher.load(spec(2), "S", results, threads=1)  # what `sweep resume` does
    # t2's final row is found and told: the group's search is over, its rate chosen, its seeds not yet issued;
    # the analysis, never finished, is issued again first, the same config
    assert b.told == [2] and b.lrs == {KEY: (best([(t1, s1), (t2, s2)]),)} and b.seeds_issued == [0]
    assert studies(b)[0][1][1:] == ("COMPLETE", {"lr": t2["trial"]["lr"]}, [s2["final_loss"]])
    assert b.remaining() == 2 and b.suggest("x1") == t3
    seeds = b.suggest("x2")
    assert seeds["trial"]["trial_id"] == f"{KEY}-seeds" and b.suggest("x3") == Searcher.FINISHED
    # killed again, before either ran: both are issued again, nothing else
    c = SweepSearcher.load(spec(2), "S", results, threads=1)
    assert [e["trial"] for e in c.queue] == [t3["trial"], seeds["trial"]] and c.remaining() == 2
    assert c.suggest("y1") == t3 and c.suggest("y2") == seeds and c.suggest("y3") == Searcher.FINISHED


def test_no_search_issues_every_seed_at_the_fixed_rate_at_once(tmp_path):
    s = SweepSearcher(spec(0), "S", str(tmp_path), threads=2)
    out = [s.suggest(f"t{i}") for i in range(3)]
    assert out[0]["threads"] == 2 and [m["lr"] for m in out[0]["trial"]["members"]] == [s.spec.lr] * 2
    assert out[1]["trial"]["stage"] == "analysis" and out[2] == Searcher.FINISHED


@pytest.mark.parametrize("bundle", [True, False])
def test_remaining_counts_every_ray_trial(tmp_path, bundle):
    sets = [f"bundle_seeds={str(bundle).lower()}", "cells=lru,lstm", "analyses=hessian_opt:lru"]
    sp = resolve("curse-of-memory", "smoke", sets + ["lr_search=tpe"]).validate()
    s = SweepSearcher(sp, "S", str(tmp_path), threads=1)
    groups = len(sp.grid())  # 2 cells x 2 nus; lstm never bundles
    assert s.remaining() == groups * sp.lr_search_trials + (2 + 2 * sp.seeds if bundle else groups * sp.seeds) + 1
    # grid: lru trains 2 rates x seeds (one bundle per group), lstm (no grid) its one rate x seeds, solo
    grid = SweepSearcher(resolve("curse-of-memory", "smoke", sets).validate(), "S", str(tmp_path), threads=1)
    assert grid.remaining() == (2 + 2 * sp.seeds if bundle else 2 * 2 * sp.seeds + 2 * sp.seeds) + 1


def test_a_trial_tune_gave_up_on_is_told_a_bad_loss_and_retried_by_a_resume(tmp_path):
    results = str(tmp_path)
    a = SweepSearcher(spec(1), "S", results, threads=1)
    t1 = a.suggest("t1")  # the group's only search trial; its process is lost max_failures times
    a.on_trial_complete("t1", None, error=True)
    assert studies(a)[0] == [(0, "COMPLETE", {"lr": t1["trial"]["lr"]}, [SweepSearcher.BAD])]
    assert a.lrs == {KEY: (a.spec.lr,)}  # no search trial has a row: the spec's fixed rate, as with no search
    # the run goes on (seeds, analysis), and at its end the errored trial is final...
    end = SweepSearcher.load(spec(1), "S", results, threads=1, retry_errored=False)
    assert end.queue == [] and end.remaining() == 2 and len(end.errored) == 1
    # ...while `sweep resume` of an interrupted run retries it first, without telling its study twice
    again = SweepSearcher.load(spec(1), "S", results, threads=1)
    assert again.remaining() == 3 and again.suggest("r1")["trial"] == t1["trial"]
    again.on_trial_complete("r1", {"final_loss": 0.5})
    assert again.told == [1] and studies(again) == studies(a)
