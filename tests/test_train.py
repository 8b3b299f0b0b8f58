"""One trial end to end on real Parquet: rows per step, cadence, clipping flags, divergence, failure."""
from __future__ import annotations

import math

import duckdb
import pytest
import torch

from trainers.config import TrialConfig
from trainers.record import TrialWriter
from trainers.train import run_trial


def cfg(tmp_path, **kw) -> TrialConfig:
    base = dict(sweep="t", sweep_id="s1", trial_id="t1", results=str(tmp_path), cell="lru", nu=0.9, steps=40,
                batch=8, seq_len=50, eval_batch=32, lr=0.01, grad_norm_every=10)
    base.update(kw)
    return TrialConfig(**base)


def sql(tmp_path, q):
    q = q.replace("STEPS", f"read_parquet('{tmp_path}/*/steps/*/*.parquet', hive_partitioning=false)")
    q = q.replace("GRADS", f"read_parquet('{tmp_path}/*/grad_norms/*/*.parquet', hive_partitioning=false)")
    q = q.replace("TRIALS", f"read_parquet('{tmp_path}/*/trials/*/*.parquet', hive_partitioning=false)")
    return duckdb.sql(q).fetchall()


def test_completed_trial_rows(tmp_path):
    out = run_trial(cfg(tmp_path))
    assert out["status"] == "completed" and out["steps_done"] == 40
    assert sql(tmp_path, "SELECT count(*), min(step), max(step), count(DISTINCT step) FROM STEPS") == [(40, 1, 40, 40)]
    # lru at depth 1 has three groups (recurrent, input, output); every 10th step -> 4 x 3 rows
    assert sql(tmp_path, "SELECT count(*), count(DISTINCT step) FROM GRADS") == [(12, 4)]
    assert {g for (g,) in sql(tmp_path, "SELECT DISTINCT \"group\" FROM GRADS")} == {
        "layer1.recurrent", "layer1.input", "layer1.output"}
    (status, final, best, steps_done, n), = sql(
        tmp_path, "SELECT status, final_loss, best_loss, steps_done, count(*) OVER () FROM TRIALS")
    assert (status, steps_done, n) == ("completed", 40, 1) and final == pytest.approx(out["final_loss"])
    # cosine decay: the first step uses the peak rate, the last is near the floor
    (lr1,), = sql(tmp_path, "SELECT lr FROM STEPS WHERE step = 1")
    (lr40,), = sql(tmp_path, "SELECT lr FROM STEPS WHERE step = 40")
    assert lr1 == pytest.approx(0.01) and lr40 < 0.01 * 0.01


def test_group_norms_combine_to_the_global_norm(tmp_path):
    run_trial(cfg(tmp_path, clip=None))
    # sqrt(sum over groups of norm^2) equals the recorded pre-clipping global norm at the same step
    rows = sql(tmp_path, "SELECT s.grad_norm, sqrt(sum(g.norm * g.norm)) FROM STEPS s JOIN GRADS g USING (step) "
                         "GROUP BY s.step, s.grad_norm")
    assert len(rows) == 4
    for global_norm, combined in rows:
        assert combined == pytest.approx(global_norm, rel=1e-4)


def test_clipping_flag_and_norm_before_clipping(tmp_path):
    run_trial(cfg(tmp_path, clip=1e-3))  # far below any real gradient norm: every step clips
    (n, clipped, min_norm), = sql(tmp_path, "SELECT count(*), sum(clipped::INT), min(grad_norm) FROM STEPS")
    assert n == clipped == 40 and min_norm > 1e-3  # the stored norm is the one before clipping


def test_diverged_trial_is_stopped_and_marked(tmp_path):
    out = run_trial(cfg(tmp_path, cell="rnn", lr=50.0, steps=200, nu=0.99))
    assert out["status"] == "diverged" and out["steps_done"] < 200
    (status, steps_done, err), = sql(tmp_path, "SELECT status, steps_done, error FROM TRIALS")
    assert status == "diverged" and "non-finite loss at step" in err
    (n, last, last_finite), = sql(tmp_path, "SELECT count(*), max(step), bool_and(isfinite(loss)) FROM STEPS "
                                            "WHERE step < (SELECT max(step) FROM STEPS)")
    assert n == steps_done - 1 and last_finite
    (last_loss,), = sql(tmp_path, "SELECT loss FROM STEPS ORDER BY step DESC LIMIT 1")
    assert not math.isfinite(last_loss)


def test_bad_config_is_a_failed_trial_not_a_crash(tmp_path):
    out = run_trial(cfg(tmp_path, cell="no-such-cell"))
    assert out["status"] == "failed" and "unknown cell 'no-such-cell'" in out["error"]
    (status, err, steps_done), = sql(tmp_path, "SELECT status, error, steps_done FROM TRIALS")
    assert status == "failed" and "no-such-cell" in err and steps_done == 0


def test_retry_from_scratch_writes_rows_once(tmp_path):
    c = cfg(tmp_path)
    run_trial(c)
    TrialWriter(c.results, c.sweep_id, c.trial_id).write_trial({"status": "running"})  # as if killed mid-way
    run_trial(c)  # a retry from scratch: the earlier rows are replaced, not duplicated
    assert sql(tmp_path, "SELECT count(*), count(DISTINCT step) FROM STEPS") == [(40, 40)]
    assert sql(tmp_path, "SELECT count(*) FROM TRIALS") == [(1,)]


def test_same_seed_same_curve_different_seed_different(tmp_path):
    a = run_trial(cfg(tmp_path / "a", seed=3))
    b = run_trial(cfg(tmp_path / "b", seed=3))
    c = run_trial(cfg(tmp_path / "c", seed=4))
    assert a["final_loss"] == b["final_loss"] != c["final_loss"]


def test_deep_stack_trains(tmp_path):
    out = run_trial(cfg(tmp_path, cell="gru", depth=2, layer_norm=True, steps=10, grad_norm_every=5))
    assert out["status"] == "completed"
    groups = {g for (g,) in sql(tmp_path, "SELECT DISTINCT \"group\" FROM GRADS")}
    assert {"layer1.recurrent", "layer2.recurrent", "encoder", "decoder", "norm"} <= groups


class Crash(BaseException):
    """Stands in for a killed process (not an Exception, so the trial does not record it as failed)."""


def test_resume_from_checkpoint_is_exact_and_writes_rows_once(tmp_path):
    import io

    ref = run_trial(cfg(tmp_path / "ref", steps=60, flush_rows=7))

    def crash(metrics):
        if metrics["step"] >= 45:  # after rows beyond the step-30 checkpoint reached disk (flush_rows=7)
            raise Crash

    c = cfg(tmp_path / "run", steps=60, flush_rows=7, checkpoint_every=30, report_every=1)
    with pytest.raises(Crash):
        run_trial(c, on_progress=crash)
    assert sql(tmp_path / "run", "SELECT max(step) FROM STEPS")[0][0] > 30  # rows past the checkpoint exist
    writer = TrialWriter(c.results, c.sweep_id, c.trial_id)
    state = torch.load(io.BytesIO(writer.load_checkpoint()), weights_only=True)  # plain data and tensors only
    assert state["step"] == 30
    out = run_trial(c)  # the restart finds the checkpoint beside the rows
    assert out["status"] == "completed" and out["steps_done"] == 60
    assert out["final_loss"] == pytest.approx(ref["final_loss"], rel=1e-6)  # the same run, step for step
    assert writer.load_checkpoint() is None  # a finished trial leaves no checkpoint behind
    assert sql(tmp_path / "run", "SELECT count(*), count(DISTINCT step), min(step), max(step) FROM STEPS") == [
        (60, 60, 1, 60)]
    assert sql(tmp_path / "run", "SELECT count(*), count(DISTINCT step) FROM GRADS") == [(18, 6)]
    a = sql(tmp_path / "ref", "SELECT step, loss, grad_norm FROM STEPS ORDER BY step")
    b = sql(tmp_path / "run", "SELECT step, loss, grad_norm FROM STEPS ORDER BY step")
    assert [r[0] for r in a] == [r[0] for r in b]
    assert all(x[1] == pytest.approx(y[1], rel=1e-5) and x[2] == pytest.approx(y[2], rel=1e-5) for x, y in zip(a, b))


def test_checkpoint_of_another_config_is_ignored(tmp_path):
    def crash(metrics):
        if metrics["step"] >= 20:
            raise Crash

    with pytest.raises(Crash):
        run_trial(cfg(tmp_path, checkpoint_every=10, report_every=1), on_progress=crash)
    out = run_trial(cfg(tmp_path, checkpoint_every=10, lr=0.02))  # same trial id, another config: from scratch
    fresh = run_trial(cfg(tmp_path / "fresh", checkpoint_every=10, lr=0.02))
    assert out["final_loss"] == fresh["final_loss"]
    assert sql(tmp_path, "SELECT count(*), count(DISTINCT step) FROM STEPS") == [(40, 40)]


def test_finished_trial_is_not_rerun(tmp_path):
    first = run_trial(cfg(tmp_path))
    (ended,), = sql(tmp_path, "SELECT ended_at FROM TRIALS")
    again = run_trial(cfg(tmp_path))
    assert again["final_loss"] == first["final_loss"]
    assert sql(tmp_path, "SELECT ended_at FROM TRIALS") == [(ended,)]  # the row was not rewritten
    changed = run_trial(cfg(tmp_path, lr=0.02))  # a different config under the same id does run
    assert changed["final_loss"] != first["final_loss"]
