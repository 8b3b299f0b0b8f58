"""SweepSearcher, the one searcher of a sweep's one Tuner, driven by hand with real Optuna studies and real trials
(``run_trial`` writing Parquet on tmp_path): the order it issues trials in, save/restore in the middle of a
sweep, and the state a killed driver leaves behind."""
from __future__ import annotations

import math

import pytest
from ray.tune.search import Searcher

from orchestrator.sweeps import resolve
from orchestrator.searcher import SweepSearcher
from orchestrator.tpe_score import BAD
from trainers.bundle import run_bundle
from trainers.config import TrialConfig
from trainers.train import run_trial

SETS = ["cells=lru", "nus=0.9", "seeds=2", "steps=5", "batch=8", "eval_batch=16", "checkpoint_every=0",
        "grad_norm_every=0", "analyses=hessian_opt:lru"]
KEY = "lru-d1-nu0.9"


def spec(budget: int):
    protocol = "tpe" if budget else "none"
    sets = SETS + [f"lr_search={protocol}", f"lr_search_trials={budget}"]
    return resolve("curse-of-memory", "smoke", sets).validate()


def run(suggestion: dict) -> list[dict]:
    """Train what a suggestion carries (a seed bundle, or one trial); its members' summaries."""
    trial = suggestion["trial"]
    if "members" in trial:
        return run_bundle(trial["trial_id"], [TrialConfig.from_dict(m) for m in trial["members"]])
    return [run_trial(TrialConfig.from_dict(trial))]


def mean(summaries: list[dict]) -> float:
    """The score of an Optuna trial, computed here from the summaries its seeds returned (the searcher reads
    the ``trials`` rows instead): the mean final loss over its seeds."""
    assert all(math.isfinite(s["final_loss"]) for s in summaries)
    return sum(s["final_loss"] for s in summaries) / len(summaries)


def studies(s: SweepSearcher) -> list:
    return [[(t.number, t.state.name, t.params, t.values) for t in st.trials] for st in s.studies]


def test_save_restore_round_trips_mid_sweep(tmp_path, one_thread):
    results = str(tmp_path)
    a = SweepSearcher(spec(3), "S", results, threads=1)
    t1, t2 = a.suggest("t1"), a.suggest("t2")
    # each Optuna trial: every seed at its one rate, one bundle, stage seed
    for k, t in enumerate((t1, t2)):
        assert t["trial"]["trial_id"] == f"{KEY}-tpe{k}-seeds"
        lr = t["trial"]["members"][0]["lr"]
        assert [(m["trial_id"], m["stage"], m["seed"], m["lr"], m["group_key"]) for m in t["trial"]["members"]] == [
            (f"{KEY}-tpe{k}-s0", "seed", 0, lr, KEY), (f"{KEY}-tpe{k}-s1", "seed", 1, lr, KEY)]
    s1 = run(t1)
    a.on_trial_complete("t1", {"status": "bundle"})
    a.save(str(tmp_path / "state.pkl"))
    b = SweepSearcher(spec(3), "S", results, threads=1)
    b.restore(str(tmp_path / "state.pkl"))
    assert (b.issued, b.told, b.scored, b.live.keys()) == (a.issued, a.told, {(0, 0)}, {"t2"})
    assert studies(b) == studies(a) and studies(a)[0][0][1] == "COMPLETE" and studies(a)[0][1][1] == "RUNNING"
    assert studies(a)[0][0][3] == [pytest.approx(mean(s1), rel=1e-12)]  # told the mean over its seeds
    # the restored one goes on exactly as the original: the same third rate from TPE, then the analysis,
    # then FINISHED: nothing waits for the search, and nothing is re-run after it
    t3 = a.suggest("t3")
    assert b.suggest("t3") == t3 and t3["trial"]["trial_id"] == f"{KEY}-tpe2-seeds"
    t4 = a.suggest("t4")
    assert b.suggest("t4") == t4 and t4["trial"]["stage"] == "analysis" and t4["trial"]["analysis"] == "hessian_opt"
    assert a.suggest("t5") == b.suggest("t5") == Searcher.FINISHED and a.remaining() == 0
    s2, s3 = run(t2), run(t3)
    for s in (a, b):
        s.on_trial_complete("t2", {})
        s.on_trial_complete("t3", {})
    assert a.told == b.told == [3] and a.lrs == {}  # the chosen rate is the rows' (trials.selected)
    assert [v for _, _, _, v in studies(a)[0]] == [[pytest.approx(mean(x), rel=1e-12)] for x in (s1, s2, s3)]


def test_a_killed_driver_leaves_a_state_that_names_every_trial_it_started(tmp_path, one_thread):
    results = str(tmp_path)
    a = SweepSearcher(spec(2), "S", results, threads=1)
    t1, t2, t3 = a.suggest("t1"), a.suggest("t2"), a.suggest("t3")
    assert [t["trial"].get("members", [t["trial"]])[0]["stage"] for t in (t1, t2, t3)] == ["seed", "seed",
                                                                                           "analysis"]
    s1, s2 = run(t1), run(t2)  # both Optuna trials finish, and the analysis is under way,
    a.on_trial_complete("t1", {})  # but the driver is killed after hearing of t1 only (which writes no state)
    b = SweepSearcher.load(spec(2), "S", results, threads=1)  # what `sweep resume` does
    # t2's final rows are found and its mean told; the analysis, never finished, is issued again, the same config
    assert b.told == [2] and b.scored == {(0, 0), (0, 1)}
    assert studies(b)[0][0][3] == [pytest.approx(mean(s1), rel=1e-12)]
    assert studies(b)[0][1][1:] == ("COMPLETE", {"lr": t2["trial"]["members"][0]["lr"]},
                                    [pytest.approx(mean(s2), rel=1e-12)])
    assert b.remaining() == 1 and b.suggest("x1") == t3 and b.suggest("x2") == Searcher.FINISHED
    # killed again, before it ran: it is issued again, nothing else, and no study is told twice
    c = SweepSearcher.load(spec(2), "S", results, threads=1)
    assert [e["trial"] for e in c.queue] == [t3["trial"]] and c.remaining() == 1 and studies(c) == studies(b)
    assert c.suggest("y1") == t3 and c.suggest("y2") == Searcher.FINISHED


def test_seeds_without_a_bundle_are_one_optuna_trial_told_once_its_last_seed_ends(tmp_path, one_thread):
    """bundle_seeds=false: an Optuna trial's seeds are Ray trials of their own, handed out one after another at
    the one rate; its study is told their mean when the last one finishes, also across a killed driver."""
    results = str(tmp_path)
    sets = [x for x in SETS if not x.startswith("analyses=")]
    sp = resolve("curse-of-memory", "smoke", sets + ["lr_search=tpe", "lr_search_trials=1", "bundle_seeds=false"]
                 ).validate()
    a = SweepSearcher(sp, "S", results, threads=1)
    assert a.remaining() == 2
    t1, t2 = a.suggest("t1"), a.suggest("t2")
    assert [(t["trial"]["trial_id"], t["trial"]["seed"]) for t in (t1, t2)] == [(f"{KEY}-tpe0-s0", 0),
                                                                              (f"{KEY}-tpe0-s1", 1)]
    assert t1["trial"]["lr"] == t2["trial"]["lr"] and a.suggest("t3") == Searcher.FINISHED
    s1 = run(t1)
    a.on_trial_complete("t1", {})
    assert a.told == [0] and studies(a)[0][0][1] == "RUNNING"  # one seed of two: not told yet
    s2 = run(t2)  # finishes, but the driver is killed before it hears
    b = SweepSearcher.load(sp, "S", results, threads=1)
    assert b.told == [1] and b.queue == [] and b.remaining() == 0
    assert studies(b)[0][0][3] == [pytest.approx(mean(s1 + s2), rel=1e-12)]


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
    # each Optuna trial: lru one bundle, lstm (never bundled) a Ray trial per seed
    per_trial = 2 + 2 * sp.seeds if bundle else groups * sp.seeds
    assert s.remaining() == sp.lr_search_trials * per_trial + 1
    # grid: lru trains 2 rates x seeds (one bundle per group), lstm (no grid) its one rate x seeds, solo
    grid = SweepSearcher(resolve("curse-of-memory", "smoke", sets).validate(), "S", str(tmp_path), threads=1)
    assert grid.remaining() == (2 + 2 * sp.seeds if bundle else 2 * 2 * sp.seeds + 2 * sp.seeds) + 1


def test_a_trial_tune_gave_up_on_is_told_a_bad_loss_and_retried_by_a_resume(tmp_path):
    results = str(tmp_path)
    a = SweepSearcher(spec(1), "S", results, threads=1)
    t1 = a.suggest("t1")  # the group's only Optuna trial (its seeds' bundle); its process is lost max_failures times
    a.on_trial_complete("t1", None, error=True)
    assert studies(a)[0] == [(0, "COMPLETE", {"lr": t1["trial"]["members"][0]["lr"]}, [BAD])]
    # the run goes on (the analysis), and at its end the errored trial is final...
    end = SweepSearcher.load(spec(1), "S", results, threads=1, retry_errored=False)
    assert end.queue == [] and end.remaining() == 1 and len(end.errored) == 1
    # ...while `sweep resume` of an interrupted run retries it first, without telling its study twice
    again = SweepSearcher.load(spec(1), "S", results, threads=1)
    assert again.remaining() == 2 and again.suggest("r1")["trial"] == t1["trial"]
    run(t1)
    again.on_trial_complete("r1", {})
    assert again.told == [1] and studies(again) == studies(a)


def test_a_state_written_before_scored_existed_still_resumes(tmp_path):
    """A sweep interrupted by an older driver (its state has no ``scored``) resumes: the same trial again."""
    import pickle

    from layout.files import write_atomic
    from orchestrator.sweep_store import state_file

    s = SweepSearcher(spec(0), "S", str(tmp_path), threads=1)
    first = s.suggest("t1")
    fs, path = state_file(str(tmp_path), "S")
    with fs.open_input_stream(path) as f:
        old = pickle.loads(f.read())
    del old["scored"]
    write_atomic(fs, path, pickle.dumps(old))
    b = SweepSearcher.load(spec(0), "S", str(tmp_path), threads=1)
    assert b.scored == set() and b.suggest("r1") == first and b.remaining() == 1
