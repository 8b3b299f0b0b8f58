"""Seed bundles: S seeds in one batched model give each seed the rows of its solo run (real Parquet, DuckDB, Ray)."""
from __future__ import annotations

import io
from pathlib import Path

import duckdb
import pytest
import torch
from typer.testing import CliRunner

from orchestrator.cli import app
from sweepcheck import assert_exact
from trainers.bundle import bundle_supported, run_bundle
from trainers.config import TrialConfig
from trainers.record import TrialWriter
from trainers.seedwise import SeedwiseAdam, SeedwiseSGD
from trainers.train import run_trial

SEEDS = (0, 1, 2)


def cfg(root, tid: str, seed: int, **kw) -> TrialConfig:
    base = dict(sweep="t", sweep_id="s1", trial_id=tid, results=str(root), cell="lru", nu=0.9, steps=40, batch=8,
                seq_len=30, eval_batch=32, lr=0.01, grad_norm_every=10, clip=0.5, seed=seed)
    return TrialConfig(**{**base, **kw})


def rows(root, table: str, tid: str, cols: str) -> list[tuple]:
    return duckdb.sql(f"SELECT {cols} FROM read_parquet('{root}/s1/{table}/trial_id={tid}/*.parquet') "
                      "ORDER BY ALL").fetchall()


def assert_same_rows(root, bundled: str, solo: str, rel: float) -> None:
    a, b = rows(root, "steps", bundled, "step, loss, grad_norm, clipped"), rows(root, "steps", solo,
                                                                               "step, loss, grad_norm, clipped")
    assert [r[0] for r in a] == [r[0] for r in b] and [r[3] for r in a] == [r[3] for r in b]
    for x, y in zip(a, b):
        assert x[1] == pytest.approx(y[1], rel=rel, nan_ok=True) and x[2] == pytest.approx(y[2], rel=rel, nan_ok=True)
    ga = rows(root, "grad_norms", bundled, 'step, "group", norm')
    gb = rows(root, "grad_norms", solo, 'step, "group", norm')
    assert [r[:2] for r in ga] == [r[:2] for r in gb]
    assert all(x[2] == pytest.approx(y[2], rel=rel, nan_ok=True) for x, y in zip(ga, gb))


@pytest.mark.parametrize("cell, kw", [("lru", {}), ("rnn", dict(optimizer="sgd", lr=1e-3)), ("gru", {})])
def test_bundle_rows_equal_solo_runs(tmp_path, one_thread, cell, kw):
    # clip 0.5: every lru/rnn step clips, about half of the gru's do (the flags must agree step by step)
    out = run_bundle("b", [cfg(tmp_path, f"b{s}", s, cell=cell, **kw) for s in SEEDS])
    for s in SEEDS:
        ref = run_trial(cfg(tmp_path, f"r{s}", s, cell=cell, **kw))
        assert out[s]["status"] == ref["status"] == "completed" and out[s]["steps_done"] == 40
        assert out[s]["final_loss"] == pytest.approx(ref["final_loss"], rel=1e-4)
        assert_same_rows(tmp_path, f"b{s}", f"r{s}", rel=1e-4)
    (n, clipped), = duckdb.sql(f"SELECT count(*), sum(clipped::INT) FROM read_parquet("
                               f"'{tmp_path}/s1/steps/*/*.parquet', hive_partitioning=true) "
                               "WHERE trial_id LIKE 'b%'").fetchall()
    assert n == 3 * 40 and 0 < clipped
    trials = duckdb.sql(f"SELECT trial_id, seed, status FROM read_parquet('{tmp_path}/s1/trials/*/*.parquet') "
                        "WHERE trial_id LIKE 'b%' ORDER BY 1").fetchall()
    assert trials == [(f"b{s}", s, "completed") for s in SEEDS]  # one trials row per seed, its own id


def test_seedwise_optimisers_match_torch_with_skipped_steps():
    """Per seed, Adam/SGD over stacked tensors equal torch's optimiser on that seed alone, where a masked
    (skipped) step is no step at all: Adam's count does not advance, so its bias correction is the solo one."""
    torch.manual_seed(0)
    w0 = torch.randn(3, 4, 5)
    for cls, ref in ((SeedwiseAdam, torch.optim.Adam), (SeedwiseSGD, torch.optim.SGD)):
        W = w0.clone().requires_grad_()
        solo = [w0[s].clone().requires_grad_() for s in range(3)]
        opt, opts = cls([W], lr=0.01), [ref([w], lr=0.01) for w in solo]
        for it in range(20):
            g = torch.randn(3, 4, 5)
            mask = torch.tensor([True, it % 3 != 0, it < 5])  # seed 2 stops after 5 steps, seed 1 skips every 3rd
            W.grad = g.clone()
            opt.step(mask)
            for s in range(3):
                if mask[s]:
                    solo[s].grad = g[s].clone()
                    opts[s].step()
        for s in range(3):
            torch.testing.assert_close(W[s], solo[s], rtol=1e-6, atol=1e-6)


def test_divergence_and_nan_skip_per_seed(tmp_path, one_thread):
    # Adam at lr 0.4 with clipping on: seeds 0 and 1 train to the end, seed 2 blows up at step 2 (its NaN
    # gradient is skipped, its rows end at its first non-finite loss), seed 3 trains on to a non-finite final
    # evaluation; each exactly as its solo run, while the others go on
    kw = dict(cell="rnn", lr=0.4, steps=200, nu=0.99, clip=1.0)
    seeds = (0, 1, 2, 3)
    out = run_bundle("b", [cfg(tmp_path, f"b{s}", s, **kw) for s in seeds])
    for s in seeds:
        ref = run_trial(cfg(tmp_path, f"r{s}", s, **kw))
        assert (out[s]["status"], out[s]["steps_done"]) == (ref["status"], ref["steps_done"])
        assert out[s]["error"] == ref["error"]
        assert_same_rows(tmp_path, f"b{s}", f"r{s}", rel=1e-3)
    assert [(o["status"], o["steps_done"]) for o in out] == [
        ("completed", 200), ("completed", 200), ("diverged", 2), ("diverged", 200)]


class Crash(BaseException):
    """Stands in for a killed process (not an Exception, so the bundle does not record it as failed)."""


def test_killed_bundle_resumes_with_rows_once(tmp_path, one_thread):
    kw = dict(steps=60, flush_rows=7, checkpoint_every=30, report_every=1)

    def crash(metrics):
        if metrics["step"] >= 45:  # rows past the step-30 checkpoint are on disk (flush_rows=7)
            raise Crash

    cfgs = [cfg(tmp_path, f"b{s}", s, **kw) for s in SEEDS]
    with pytest.raises(Crash):
        run_bundle("b", cfgs, on_progress=crash)
    assert max(r[0] for r in rows(tmp_path, "steps", "b0", "step")) > 30
    assert TrialWriter(str(tmp_path), "s1", "b").load_checkpoint() is not None
    # seed 1 finishes on its own meanwhile (as if a solo run had): the resumed bundle leaves it alone and
    # restores only seeds 0 and 2 from the bundle's checkpoint
    run_trial(cfgs[1])
    (ended,), = rows(tmp_path, "trials", "b1", "ended_at")
    out = run_bundle("b", cfgs)
    assert [o["status"] for o in out] == ["completed"] * 3 and rows(tmp_path, "trials", "b1", "ended_at") == [(ended,)]
    assert TrialWriter(str(tmp_path), "s1", "b").load_checkpoint() is None
    whole = run_bundle("w", [cfg(tmp_path, f"w{s}", s, **kw) for s in SEEDS])  # the same bundle, not killed
    for s in SEEDS:
        ref = run_trial(cfg(tmp_path, f"r{s}", s, **kw))
        assert out[s]["final_loss"] == pytest.approx(ref["final_loss"], rel=1e-3)
        assert rows(tmp_path, "steps", f"b{s}", "count(*), count(DISTINCT step), max(step)") == [(60, 60, 60)]
        assert_same_rows(tmp_path, f"b{s}", f"r{s}", rel=1e-3)  # 60 steps: float differences grow a little
        if s != 1:  # seeds 0 and 2 resumed from the bundle's checkpoint: step for step the uninterrupted bundle
            assert out[s]["final_loss"] == pytest.approx(whole[s]["final_loss"], rel=1e-6)
            assert_same_rows(tmp_path, f"b{s}", f"w{s}", rel=1e-6)
    again = run_bundle("b", cfgs)  # every seed final: nothing is retrained
    assert [o["final_loss"] for o in again] == [o["final_loss"] for o in out]


def test_finished_seeds_leave_the_stack_and_a_killed_bundle_resumes(tmp_path, one_thread):
    # the divergence case above with a checkpoint at step 100: seed 2's rows end at step 2 and it is finished at
    # the step-25 check, so from step 26 the stacked tensors (parameters, Adam's moments and counts) hold seeds
    # 0, 1 and 3 only, and the checkpoint names those three. Killed after it, the bundle resumes those seeds to
    # their solo rows; seed 2, already final, is left alone.
    kw = dict(cell="rnn", lr=0.4, steps=200, nu=0.99, clip=1.0, checkpoint_every=100, report_every=1, flush_rows=7)
    seeds, training = (0, 1, 2, 3), {}

    def crash(metrics):
        training[metrics["step"]] = metrics["seeds_training"]
        if metrics["step"] >= 150:
            raise Crash

    cfgs = [cfg(tmp_path, f"b{s}", s, **kw) for s in seeds]
    with pytest.raises(Crash):
        run_bundle("b", cfgs, on_progress=crash)
    assert training[25] == training[100] == 3
    state = torch.load(io.BytesIO(TrialWriter(str(tmp_path), "s1", "b").load_checkpoint()), weights_only=True)
    assert state["step"] == 100 and state["trial_ids"] == ["b0", "b1", "b3"]
    assert all(v.shape[0] == 3 for v in state["params"].values())
    assert all(v.shape[0] == 3 for st in state["opt"]["state"].values() for v in st.values())
    assert sorted(state["seeds"]) == ["b0", "b1", "b3"]
    out = run_bundle("b", cfgs)
    for s in seeds:
        ref = run_trial(cfg(tmp_path, f"r{s}", s, **kw))
        assert (out[s]["status"], out[s]["steps_done"], out[s]["error"]) == (
            ref["status"], ref["steps_done"], ref["error"])
        assert_same_rows(tmp_path, f"b{s}", f"r{s}", rel=1e-3)
    assert [(o["status"], o["steps_done"]) for o in out] == [
        ("completed", 200), ("completed", 200), ("diverged", 2), ("diverged", 200)]


def test_seeds_solve_at_their_solo_steps(tmp_path, one_thread):
    # temporal order (Pascanu et al.), checked every 20 steps on the evaluation batch: solo, seeds 4, 1 and 0
    # solve at steps 60, 80 and 120. In one bundle each stops at its own solved step with its solo rows, and
    # the others train on without it (seeds 4 and 1 leave the stack at steps 61 and 81)
    kw = dict(task="temporal_order", cell="vrnn", hidden=50, seq_len=10, init="smart_tanh", optimizer="sgd",
              schedule="constant", lr=0.1, clip=1.0, nu=0.99, steps=400, batch=20, eval_batch=500, solve_every=20,
              grad_norm_every=10, report_every=1)
    seeds, training = (4, 1, 0), {}
    out = run_bundle("b", [cfg(tmp_path, f"b{s}", s, **kw) for s in seeds],
                     on_progress=lambda m: training.setdefault(m["step"], m["seeds_training"]))
    for s, o in zip(seeds, out):
        ref = run_trial(cfg(tmp_path, f"r{s}", s, **kw))
        assert (o["status"], o["solved_step"], o["steps_done"], o["final_metric"]) == (
            ref["status"], ref["solved_step"], ref["steps_done"], ref["final_metric"])
        assert_same_rows(tmp_path, f"b{s}", f"r{s}", rel=1e-4)
    assert [o["solved_step"] for o in out] == [60, 80, 120]
    assert (training[50], training[75], training[100]) == (3, 2, 1)


def test_ornn_bundle_equals_solo_over_its_first_steps(tmp_path, one_thread):
    # ornn's W = B expm(A - A^T) under vmap is torch's float32 matrix_exp of a batch of seeds, which on CPU is ~10x
    # less exact than the solo call on one matrix (6e-7 against 5e-8 from float64 at |A|_1 ~ 0.2): a bundled seed
    # starts ~1e-6 off its solo run at step 2. Training amplifies any difference of that size (a 1e-7 relative
    # change of a solo run's initial weights grows to 1e-2 within 20-40 steps, as bundled-vs-solo does; measured
    # for issue 6), so the curves are compared over the first steps, before the amplification
    kw = dict(task="sine", cell="ornn", lr=3e-3, steps=6, grad_norm_every=2)  # the attractors sweep's rate
    out = run_bundle("b", [cfg(tmp_path, f"b{s}", s, **kw) for s in SEEDS])
    for s in SEEDS:
        ref = run_trial(cfg(tmp_path, f"r{s}", s, **kw))
        assert out[s]["status"] == ref["status"] == "completed" and out[s]["steps_done"] == 6
        assert_same_rows(tmp_path, f"b{s}", f"r{s}", rel=5e-5)


def test_supported_cells():
    assert bundle_supported("lru") and bundle_supported("rnn") and bundle_supported("gru")
    assert not bundle_supported("lstm") and not bundle_supported("slstm") and not bundle_supported("no-such-cell")


def tune_trial_dirs(results: Path, sweep_id: str) -> list[str]:
    return sorted(p.name.rsplit("_", 1)[0].rsplit("-", 1)[0] for p in (results / sweep_id / "_tune" / "sweep").iterdir()
                  if p.is_dir())


@pytest.mark.slow
@pytest.mark.parametrize("bundle", [True, False])
def test_sweep_bundles_seeds_where_the_cell_allows(ray_session, tmp_path, bundle):
    results = tmp_path / "results"
    r = CliRunner().invoke(app, [
        "launch", "curse-of-memory", "--scale", "smoke", "--results", str(results), "--set", "cells=lru,lstm",
        "--set", "nus=0.9", "--set", "lr_search=none", "--set", "steps=20", "--set", "seeds=3",
        "--set", "checkpoint_every=10", "--set", f"bundle_seeds={str(bundle).lower()}"])
    assert r.exit_code == 0, r.output
    sweep_id = r.output.split()[1]
    assert_exact(str(results), sweep_id, n_trials=6, steps=20)  # one trials row and 20 steps rows per seed
    lru = ["lru-d1-nu0.9-seeds"] if bundle else [f"lru-d1-nu0.9-s{s}" for s in SEEDS]
    assert tune_trial_dirs(results, sweep_id) == sorted(lru + [f"lstm-d1-nu0.9-s{s}" for s in SEEDS])  # lstm: solo
    r = CliRunner().invoke(app, ["status", sweep_id, "--results", str(results)])
    assert r.exit_code == 0 and "6" in r.output
