"""The grid learning-rate protocol: every rate x every seed, the lowest mean over seeds chosen (``selected``,
``lr_landscape``: analysis.selection), and a group's rates x seeds as one bundle (real Ray, Parquet, DuckDB)."""
from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from analysis.db import connect, run_arrow
from orchestrator.cli import app
from orchestrator.lr_grid import LrGrid, parse, rates_for
from orchestrator.spec import SpecError, SweepSpec, apply_overrides
from orchestrator.sweeps import resolve
from trainers.bundle import run_bundle
from trainers.config import TrialConfig
from trainers.record import TrialWriter
from trainers.train import run_trial
from trainers.trial import trial_row

LANDSCAPE = "SELECT group_key, lr, mean, seeds, diverged, selected FROM lr_landscape ORDER BY group_key, lr"


def write_rows(root, sweep_id: str, outcomes: dict[str, dict[float, list]]) -> None:
    """Final ``trials`` rows, written by the trainer's own writer: {group: {lr: [final loss, status, or (status,
    final loss)]}}."""
    for group, rates in outcomes.items():
        for lr, seeds in rates.items():
            for s, out in enumerate(seeds):
                tid = f"{group}-lr{lr:g}-s{s}"
                cfg = TrialConfig(sweep="t", sweep_id=sweep_id, trial_id=tid, results=str(root), lr=lr, seed=s,
                                  group_key=group)
                status, loss = ("completed", out) if isinstance(out, float) else out if isinstance(out, tuple) else (
                    out, None)
                TrialWriter(str(root), sweep_id, tid).write_trial(trial_row(cfg, status=status, final_loss=loss,
                                                                            steps_done=10))


def chosen(root) -> dict[str, float]:
    rows = run_arrow(connect(str(root)), LANDSCAPE).to_pylist()
    out = {}
    for r in rows:
        if r["selected"]:
            assert r["group_key"] not in out  # exactly one rate per group
            out[r["group_key"]] = r["lr"]
    assert set(out) == {r["group_key"] for r in rows}  # and at least one
    return out


def test_selected_is_the_lowest_mean_and_a_diverged_seed_loses(tmp_path):
    write_rows(tmp_path, "s1", {
        # the lowest single loss (0.001) is at 0.1, but its mean (0.5005) loses to 0.01's (0.2)
        "plain": {0.1: [0.001, 1.0], 0.01: [0.2, 0.2], 0.001: [0.3, 0.4]},
        # 0.1 has the lowest mean over its finite seeds, but one seed diverged: +inf
        "one-diverged": {0.1: [0.01, "diverged"], 0.01: [0.5, 0.6]},
        # a failed seed, or a NaN final loss, counts as diverged too
        "failed-and-nan": {0.1: [0.01, "failed"], 0.032: [0.02, math.nan], 0.01: [0.9, 0.9]},
        # every rate has a diverged seed: the fewest diverged, then the lowest mean
        "all-diverged": {0.1: ["diverged", "diverged"], 0.032: [0.7, "diverged"], 0.01: [0.3, "diverged"]},
        # a rate the tpe pruner stopped (its loss is at the step it stopped: not comparable) ranks after every
        # other rate, a diverged one included, however low its loss
        "pruned": {0.1: [("pruned", 0.001), ("pruned", 0.002)], 0.01: [0.5, 0.6], 0.001: [0.3, "diverged"]},
        "pruned-or-diverged": {0.1: [("pruned", 0.001), ("pruned", 0.002)], 0.01: [0.3, "diverged"]},
    })
    assert chosen(tmp_path) == {"plain": 0.01, "one-diverged": 0.01, "failed-and-nan": 0.01, "all-diverged": 0.01,
                                "pruned": 0.01, "pruned-or-diverged": 0.01}
    con = connect(str(tmp_path))
    land = {(r["group_key"], r["lr"]): r for r in run_arrow(con, LANDSCAPE).to_pylist()}
    assert land[("plain", 0.1)]["mean"] == pytest.approx(0.5005) and land[("plain", 0.01)]["seeds"] == 2
    assert land[("failed-and-nan", 0.032)]["diverged"] == 1 and land[("all-diverged", 0.1)]["mean"] is None
    assert land[("pruned", 0.1)]["mean"] is None and land[("pruned", 0.1)]["diverged"] == 0
    assert run_arrow(con, "SELECT lr, pruned FROM lr_landscape WHERE group_key = 'pruned' ORDER BY lr").to_pylist() \
        == [{"lr": 0.001, "pruned": 0}, {"lr": 0.01, "pruned": 0}, {"lr": 0.1, "pruned": 2}]
    # ``selected`` on the trials rows themselves: the chosen rate's seeds, every one of them
    sel = run_arrow(con, "SELECT group_key, lr, count(*) AS n FROM trials WHERE selected GROUP BY ALL").to_pylist()
    assert sorted((r["group_key"], r["lr"], r["n"]) for r in sel) == [
        ("all-diverged", 0.01, 2), ("failed-and-nan", 0.01, 2), ("one-diverged", 0.01, 2), ("plain", 0.01, 2),
        ("pruned", 0.01, 2), ("pruned-or-diverged", 0.01, 2)]


def test_lr_grids_are_typed_and_checked():
    assert parse("sine/*:1e-3") == LrGrid(cell="*", task="sine", rates=(1e-3,))
    grids = (LrGrid("rnn", (1e-3, 3e-4)), LrGrid(task="sine", rates=(1e-2,)), LrGrid("rnn", (5e-3,), task="sine"))
    assert rates_for(grids, dict(cell="rnn", task="symbols")) == (1e-3, 3e-4)
    assert rates_for(grids, dict(cell="lru", task="sine")) == (1e-2,)
    assert rates_for(grids, dict(cell="rnn", task="sine")) == (5e-3,)  # task and cell beats either alone
    assert rates_for(grids, dict(cell="lru", task="symbols")) is None
    spec = apply_overrides(resolve("curse-of-memory", "smoke", []), ["lr_grids=rnn:1e-3/1e-4,lru:0.1"])
    assert spec.rates(dict(cell="rnn", task="teacher_student")) == (1e-3, 1e-4)
    assert spec.stage_trials()["seed"] == (2 + 1) * len(spec.nus) * spec.seeds
    assert SweepSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec  # sweep.json round trip
    old = {k: v for k, v in spec.to_dict().items() if k not in ("lr_search", "lr_grids")}
    assert SweepSpec.from_dict(dict(old, lr_search_trials=2)).lr_search == "tpe"  # a sweep from before protocols
    assert SweepSpec.from_dict(dict(old, lr_search_trials=0)).lr_search == "none"
    for bad, word in (("lr_grids=xlstm:1e-3", "unknown cell 'xlstm'"), ("lr_grids=rnn:-1", "positive rates"),
                      ("lr_search=random", "valid: grid, tpe, none")):
        with pytest.raises(SpecError, match=word):
            apply_overrides(resolve("curse-of-memory", "smoke", []), [bad]).validate()


def test_rates_by_seeds_bundle_equals_its_solo_runs_at_stable_rates(tmp_path, one_thread):
    """At stable rates (far from the edge where round-off is amplified) each member of one bundle of 2 rates x
    2 seeds gives its solo run's numbers: its own rate, schedule and optimiser state."""
    base = dict(sweep="t", sweep_id="s1", results=str(tmp_path), cell="lru", nu=0.9, steps=30, batch=8,
                seq_len=30, eval_batch=32, grad_norm_every=10, group_key="g")
    runs = [(lr, s) for lr in (0.01, 0.002) for s in (0, 1)]
    out = run_bundle("g-seeds", [TrialConfig(trial_id=f"b{lr:g}-{s}", lr=lr, seed=s, **base) for lr, s in runs])
    finals = []
    for (lr, s), got in zip(runs, out):
        ref = run_trial(TrialConfig(trial_id=f"r{lr:g}-{s}", lr=lr, seed=s, **base))
        assert got["status"] == ref["status"] == "completed"
        assert got["final_loss"] == pytest.approx(ref["final_loss"], rel=1e-4)
        finals.append(got["final_loss"])
    con = connect(str(tmp_path))
    steps = run_arrow(con, "SELECT trial_id, step, loss, lr FROM steps ORDER BY ALL").to_pylist()
    by = {}
    for r in steps:
        by.setdefault(r["trial_id"], []).append(r)
    for lr, s in runs:
        b, r = by[f"b{lr:g}-{s}"], by[f"r{lr:g}-{s}"]
        assert [x["lr"] for x in b] == [x["lr"] for x in r] and b[0]["lr"] == pytest.approx(lr)  # solo's floats
        assert all(x["loss"] == pytest.approx(y["loss"], rel=1e-4) for x, y in zip(b, r))
    assert finals[0] != pytest.approx(finals[2], rel=1e-3)  # the two rates really trained differently


@pytest.mark.slow
def test_grid_sweep_trains_every_rate_and_seed_and_picks_the_best_mean(ray_session, tmp_path):
    results = tmp_path / "results"
    r = CliRunner().invoke(app, [
        "launch", "curse-of-memory", "--scale", "smoke", "--results", str(results), "--set", "cells=lru,lstm",
        "--set", "nus=0.9", "--set", "lr_grids=lru:1e3/0.01/0.001,lstm:0.01/0.001", "--set", "steps=20",
        "--set", "seeds=2", "--set", "checkpoint_every=10"])
    assert r.exit_code == 0, r.output
    con = connect(str(results))
    rows = run_arrow(con, "SELECT group_key, lr, seed, status, final_loss, selected FROM trials "
                          "WHERE stage = 'seed'").to_pylist()
    assert sorted((x["group_key"], x["lr"], x["seed"]) for x in rows) == sorted(
        [("lru-d1-nu0.9", lr, s) for lr in (1e3, 0.01, 0.001) for s in (0, 1)]
        + [("lstm-d1-nu0.9", lr, s) for lr in (0.01, 0.001) for s in (0, 1)])  # every rate x seed, once
    assert run_arrow(con, "SELECT count(*) AS n FROM trials WHERE stage <> 'seed' AND stage <> 'analysis'"
                     ).column("n")[0].as_py() == 0  # nothing searched or re-run
    assert {x["status"] for x in rows if x["lr"] == 1e3} == {"diverged"}
    for group in ("lru-d1-nu0.9", "lstm-d1-nu0.9"):
        means = {}
        for x in rows:
            if x["group_key"] == group and x["status"] == "completed":
                means.setdefault(x["lr"], []).append(x["final_loss"])
        best = min((sum(v) / len(v), lr) for lr, v in means.items() if len(v) == 2)[1]
        assert {x["lr"] for x in rows if x["group_key"] == group and x["selected"]} == {best}
        assert sum(x["selected"] for x in rows if x["group_key"] == group) == 2  # both seeds of that one rate
    r = CliRunner().invoke(app, ["report", "curse-of-memory", "--results", str(results)])
    assert r.exit_code == 0 and "lr_landscape.png" in r.output, r.output


@pytest.mark.slow
def test_tpe_sweep_trains_every_seed_per_optuna_trial_and_selects_the_lowest_mean(ray_session, tmp_path):
    """lr_search=tpe: each Optuna trial is every seed at one suggested rate (one bundle), the study is told their
    mean, and ``selected`` marks the rate of the lowest mean over seeds; nothing is searched apart or re-run."""
    results = tmp_path / "results"
    r = CliRunner().invoke(app, [
        "launch", "curse-of-memory", "--scale", "smoke", "--results", str(results), "--set", "cells=lru",
        "--set", "nus=0.9", "--set", "lr_search=tpe", "--set", "lr_search_trials=4", "--set", "seeds=3",
        "--set", "steps=20", "--set", "checkpoint_every=10", "--set", "lr_ranges=lru:1e-3:1"])
    assert r.exit_code == 0, r.output
    con = connect(str(results))
    rows = run_arrow(con, "SELECT trial_id, stage, group_key, lr, seed, status, final_loss, selected "
                          "FROM trials").to_pylist()
    assert {x["stage"] for x in rows} == {"seed"} and {x["group_key"] for x in rows} == {"lru-d1-nu0.9"}
    assert sorted(x["trial_id"] for x in rows) == sorted(f"lru-d1-nu0.9-tpe{k}-s{s}" for k in range(4)
                                                         for s in range(3))  # every seed of every trial, once
    by_trial: dict[int, list[dict]] = {}
    for x in rows:
        by_trial.setdefault(int(x["trial_id"].split("-tpe")[1].split("-")[0]), []).append(x)
    lrs = {k: {x["lr"] for x in v} for k, v in by_trial.items()}
    assert all(len(v) == 1 for v in lrs.values()) and len({next(iter(v)) for v in lrs.values()}) == 4
    assert all(1e-3 <= x["lr"] <= 1 for x in rows)  # within the range given
    means = {next(iter(lrs[k])): sum(x["final_loss"] for x in v) / 3 for k, v in by_trial.items()
             if all(x["status"] == "completed" and math.isfinite(x["final_loss"]) for x in v)}
    assert means, "no rate trained all three seeds"
    best = min(means, key=means.get)
    assert {x["lr"] for x in rows if x["selected"]} == {best}
    assert sum(x["selected"] for x in rows) == 3  # all three seeds of that one rate
