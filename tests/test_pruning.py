"""Pruning under the tpe protocol: the driver's searcher feeds Optuna's pruner the mean loss over an Optuna trial's
seeds at each reported step and, when it prunes, asks the runs to stop (``layout.pruning``); each run ends as
``pruned`` at its next drain with its own final rows. Real trainers writing Parquet on tmp_path, real Optuna
studies, real DuckDB; the sweep test runs on the session's real Ray."""
from __future__ import annotations

import json
import math

import duckdb
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from analysis.db import connect, run_arrow
from layout import pruning
from layout.location import open_sweep
from orchestrator.cli import app
from orchestrator.searcher import SweepSearcher
from orchestrator.sweeps import resolve
from orchestrator.tpe_score import BAD
from trainers.bundle import run_bundle
from trainers.config import TrialConfig
from trainers.record import TrialWriter
from trainers.train import run_trial
from trainers.trial import trial_row

KEY = "lru-d1-nu0.9"


def cfg(root, tid: str, seed: int = 0, **kw) -> TrialConfig:
    base = dict(sweep="t", sweep_id="S", trial_id=tid, results=str(root), cell="lru", nu=0.9, steps=100, batch=8,
                seq_len=20, eval_batch=32, lr=0.01, grad_norm_every=10, seed=seed, pruning=True)
    return TrialConfig(**{**base, **kw})


def steps(root, tid: str) -> list[int]:
    return [r[0] for r in duckdb.sql(f"SELECT step FROM read_parquet('{root}/S/steps/trial_id={tid}/*.parquet') "
                                     "ORDER BY step").fetchall()]


def ask(root, tids: list[str]) -> None:
    pruning.request(*open_sweep(str(root), "S"), tids)


def test_a_run_asked_to_stop_ends_pruned_at_its_next_drain(tmp_path, one_thread):
    """A solo run and one seed of a bundle, asked before they start: each stops at its first drain (step 25), its
    rows up to there and a ``pruned`` final row with the loss where it stopped; the bundle's other seed, a run
    that is not prunable (``pruning`` false), and one whose first drain is its last step, train to the end
    although asked too."""
    ask(tmp_path, ["solo", "b-s1", "deaf", "short"])
    solo = run_trial(cfg(tmp_path, "solo"))
    assert (solo["status"], solo["steps_done"]) == ("pruned", 25) and math.isfinite(solo["final_loss"])
    assert steps(tmp_path, "solo") == list(range(1, 26))
    row = TrialWriter(str(tmp_path), "S", "solo").read_trial()
    assert row["status"] == "pruned" and row["error"] == "stopped by the sweep's pruner after step 25 of 100"
    assert TrialWriter(str(tmp_path), "S", "solo").load_checkpoint() is None
    assert run_trial(cfg(tmp_path, "deaf", pruning=False))["status"] == "completed"
    assert steps(tmp_path, "deaf") == list(range(1, 101))
    assert run_trial(cfg(tmp_path, "short", steps=20))["status"] == "completed"

    out = run_bundle("b-seeds", [cfg(tmp_path, "b-s0", seed=0), cfg(tmp_path, "b-s1", seed=1)])
    assert [(s["status"], s["steps_done"]) for s in out] == [("completed", 100), ("pruned", 25)]
    assert steps(tmp_path, "b-s0") == list(range(1, 101)) and steps(tmp_path, "b-s1") == list(range(1, 26))
    # a pruned run is final: run again, it is not trained again
    assert run_trial(cfg(tmp_path, "solo")) == solo


def spec(**sets):
    base = {"cells": "lru", "nus": "0.9", "seeds": 2, "steps": 100, "batch": 8, "eval_batch": 16,
            "checkpoint_every": 0, "grad_norm_every": 0, "lr_search": "tpe", "lr_search_trials": 4,
            "lr_search_pruner": "halving", **sets}
    return resolve("curse-of-memory", "smoke", [f"{k}={v}" for k, v in base.items()]).validate()


def intermediate(s: SweepSearcher, number: int) -> dict[int, float]:
    return s.studies[0].trials[number].intermediate_values


def test_the_pruner_is_fed_the_seed_mean_and_stops_a_worse_rate(tmp_path, one_thread):
    """Halving (rungs at 50, 150 steps; a third goes on): the first Optuna trial to reach step 50 goes on, a
    second one with a worse mean over its seeds at step 50 is pruned: its runs are asked to stop, its bundle ends
    them as ``pruned``, and the study is told so. Nothing is asked of a trial still going on."""
    s = SweepSearcher(spec(), "S", str(tmp_path), threads=1)
    t1, t2 = s.suggest("t1"), s.suggest("t2")
    assert [m["pruning"] for t in (t1, t2) for m in t["trial"]["members"]] == [True] * 4
    rows1, rows2 = ([m["trial_id"] for m in t["trial"]["members"]] for t in (t1, t2))
    s.on_trial_result("t1", {"step": 50, "loss": 0.3, "loss_seed0": 0.1, "loss_seed1": 0.3})
    s.on_trial_result("t2", {"step": 50, "loss": 2.0, "loss_seed0": 1.0, "loss_seed1": 2.0})
    assert intermediate(s, 0) == {50: pytest.approx(0.2)} and intermediate(s, 1) == {50: pytest.approx(1.5)}
    fs, base = open_sweep(str(tmp_path), "S")
    assert [pruning.requested(fs, base, t) for t in rows1 + rows2] == [False, False, True, True]
    assert s.pruned == {(0, 1)}
    s.on_trial_result("t2", {"step": 100, "loss_seed0": 0.5, "loss_seed1": 0.5})  # pruned: not fed again
    assert intermediate(s, 1) == {50: pytest.approx(1.5)}

    # its bundle runs, sees the request at its first drain, and ends both seeds as pruned; the study is told
    out = run_bundle(t2["trial"]["trial_id"], [TrialConfig.from_dict(m) for m in t2["trial"]["members"]])
    assert [(x["status"], x["steps_done"]) for x in out] == [("pruned", 25), ("pruned", 25)]
    s.on_trial_complete("t2", {"status": "bundle"})
    assert s.studies[0].trials[1].state == TrialState.PRUNED

    # a driver killed now: the state it left knows what was pruned, and goes on feeding the Optuna trial it
    # issues again (its run restarts: a step fed before is not fed twice)
    b = SweepSearcher.load(spec(), "S", str(tmp_path), threads=1)
    assert b.pruned == {(0, 1)} and b.studies[0].trials[1].state == TrialState.PRUNED
    assert b.suggest("x1") == t1
    b.on_trial_result("x1", {"step": 50, "loss_seed0": 0.7, "loss_seed1": 0.7})
    b.on_trial_result("x1", {"step": 100, "loss_seed0": 0.05, "loss_seed1": 0.15})
    assert intermediate(b, 0) == {50: pytest.approx(0.2), 100: pytest.approx(0.1)}


def test_a_step_is_fed_once_every_seed_has_reported_it(tmp_path, one_thread):
    """Seeds as Ray trials of their own (``bundle_seeds=false``): a step's mean is fed when the last seed reports
    it; a bundle seed that has ended (no loss in the report) counts with its final row, ``BAD`` if it
    diverged."""
    s = SweepSearcher(spec(bundle_seeds="false"), "S", str(tmp_path), threads=1)
    a, b = s.suggest("a"), s.suggest("b")  # the two seeds of Optuna trial 0
    assert {a["trial"]["seed"], b["trial"]["seed"]} == {0, 1} and "members" not in a["trial"]
    s.on_trial_result("a", {"step": 50, "loss": 0.4})
    assert intermediate(s, 0) == {}
    s.on_trial_result("b", {"step": 50, "loss": 0.2})
    assert intermediate(s, 0) == {50: pytest.approx(0.3)}

    s = SweepSearcher(spec(), "S2", str(tmp_path), threads=1)
    t1 = s.suggest("t1")
    gone = TrialConfig.from_dict(t1["trial"]["members"][1])
    s.on_trial_result("t1", {"step": 50, "loss_seed0": 0.1})  # seed 1 absent, its row not final: not fed
    assert intermediate(s, 0) == {}
    TrialWriter(str(tmp_path), "S2", gone.trial_id).write_trial(trial_row(gone, status="diverged", steps_done=60))
    s.on_trial_result("t1", {"step": 100, "loss_seed0": 0.1})
    assert intermediate(s, 0) == {100: BAD}


@pytest.mark.slow
def test_tpe_sweep_prunes_hopeless_rates_and_its_rows_say_so(ray_session, tmp_path):
    """A real tpe sweep with the halving pruner over a wide range: some Optuna trials stop early, every seed of
    them ``pruned`` before its last step, never ``selected``; the others train to the end; the summary says so."""
    results = tmp_path / "results"
    r = CliRunner().invoke(app, [
        "launch", "curse-of-memory", "--scale", "smoke", "--results", str(results), "--set", "cells=lru",
        "--set", "nus=0.9", "--set", "lr_search=tpe", "--set", "lr_search_trials=6", "--set", "seeds=2",
        "--set", "steps=1000", "--set", "checkpoint_every=0", "--set", "grad_norm_every=0",
        "--set", "lr_search_pruner=halving", "--set", "lr_ranges=lru:1e-5:1"])
    assert r.exit_code == 0, r.output
    rows = run_arrow(connect(str(results)), "SELECT trial_id, lr, status, steps_done, selected FROM trials "
                                            "ORDER BY trial_id").to_pylist()
    assert len(rows) == 12 and {x["status"] for x in rows} <= {"completed", "pruned", "diverged"}
    by_rate: dict[float, set] = {}
    for x in rows:
        by_rate.setdefault(x["lr"], set()).add(x["status"])
    pruned = [x for x in rows if x["status"] == "pruned"]
    assert pruned, "no rate was pruned"
    assert all(x["steps_done"] < 1000 and x["steps_done"] % 25 == 0 and not x["selected"] for x in pruned)
    assert all(x["steps_done"] == 1000 for x in rows if x["status"] == "completed")
    assert sum(x["selected"] for x in rows) == 2 and all(x["status"] == "completed" for x in rows if x["selected"])
    assert f"pruned: {len(pruned)} seed runs at {sum('pruned' in v for v in by_rate.values())} rates" in r.output


def test_pruner_settings_are_checked_and_older_sweeps_keep_theirs(tmp_path):
    """A bad pruner is a one-line error naming the valid ones; a spec file sets it in [lr_search]; a sweep.json
    from before pruning reads as ``none`` (its trials ran to the end, and resume keeps their configs)."""
    from orchestrator.spec import SpecError, SweepSpec
    from orchestrator.specfile import load_target

    with pytest.raises(SpecError, match=r"^invalid lr_search_pruner='median'; valid: halving, hyperband, none$"):
        spec(lr_search_pruner="median")
    assert spec(lr_search_pruner="hyperband").lr_search_pruner == "hyperband"
    old = json.loads(json.dumps(spec().to_dict()))  # as a sweep.json holds it
    del old["lr_search_pruner"]
    assert SweepSpec.from_dict(old).lr_search_pruner == "none"
    f = tmp_path / "mine.toml"
    f.write_text('base = "curse-of-memory"\nscale = "smoke"\n[lr_search]\nprotocol = "tpe"\ntrials = 3\n'
                 'pruner = "hyperband"\n')
    target = load_target(str(f))
    assert (target.spec.lr_search, target.spec.lr_search_pruner) == ("tpe", "hyperband")
    s = SweepSearcher(target.spec, "S", str(tmp_path), threads=1)
    assert type(s.studies[0].pruner).__name__ == "HyperbandPruner"
    assert all(not m.get("pruning") for m in SweepSearcher(spec(lr_search_pruner="none"), "S", str(tmp_path), 1)
               .suggest("t")["trial"]["members"])
