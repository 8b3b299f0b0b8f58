"""Damaged and moved files, for real (issue 14): a truncated checkpoint, a stray file in a table folder, a copy
of a part under a new number, a moved sweep folder, a trial Tune gave up on. Real trials (``run_trial``), real
Parquet, real DuckDB; every check is an exact row count (0 lost, 0 duplicated)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from analysis.db import query_arrow
from orchestrator.cli import app
from orchestrator.gave_up import GAVE_UP, mark_failed, reopen
from trainers.config import TrialConfig
from trainers.relocate import relocate, same_config
from trainers.train import run_trial

runner = CliRunner()
STEPS, EVERY = 60, 20


class Killed(BaseException):
    """Stands for a SIGKILL of the trial's process: nothing after it runs (run_trial catches only Exception)."""


def cfg(results: Path, trial_id: str = "t0", **kw) -> TrialConfig:
    return TrialConfig(sweep="dmg", sweep_id="S", trial_id=trial_id, results=str(results), cell="rnn", hidden=8,
                       seq_len=10, batch=8, eval_batch=16, steps=STEPS, checkpoint_every=EVERY, flush_s=0,
                       grad_norm_every=5, **kw)


def kill_at(step: int):
    def on_progress(p: dict) -> None:
        if p["step"] >= step:
            raise Killed()
    return on_progress


def interrupted(results: Path, trial_id: str = "t0", at: int = 45) -> TrialConfig:
    """A trial killed at step ``at`` (checkpoints at 20 and 40 on disk, rows up to ``at`` flushed or not)."""
    c = cfg(results, trial_id)
    with pytest.raises(Killed):
        run_trial(c, on_progress=kill_at(at))
    assert (results / "S" / "_checkpoints" / f"{trial_id}.pt").exists()
    return c


def exact(results: Path, trials: int = 1) -> dict:
    one = query_arrow(str(results), "SELECT count(*) AS rows, count(DISTINCT (trial_id, step)) AS uniq, "
                                    "max(step) AS last FROM steps").to_pylist()[0]
    t = query_arrow(str(results), "SELECT status, steps_done FROM trials").to_pylist()
    assert one["rows"] == one["uniq"] == trials * STEPS and one["last"] == STEPS, one
    assert [r["status"] for r in t] == ["completed"] * trials and {r["steps_done"] for r in t} == {STEPS}, t
    return one


def test_truncated_checkpoint_restarts_from_step_0_with_exact_rows(tmp_path, one_thread, caplog):
    c = interrupted(tmp_path)
    ckpt = tmp_path / "S" / "_checkpoints" / "t0.pt"
    with open(ckpt, "r+b") as f:
        f.truncate(1000)
    with caplog.at_level("WARNING", logger="trainers"):
        summary = run_trial(c)
    assert summary["status"] == "completed" and summary["steps_done"] == STEPS
    assert f"{ckpt}: damaged checkpoint" in caplog.text
    exact(tmp_path)
    assert not ckpt.exists()


def test_junk_checkpoint_restarts_too(tmp_path, one_thread):
    c = interrupted(tmp_path)
    (tmp_path / "S" / "_checkpoints" / "t0.pt").write_bytes(b"not a checkpoint at all")
    assert run_trial(c)["status"] == "completed"
    exact(tmp_path)


def test_stray_file_in_a_table_folder_is_skipped_and_named(tmp_path, one_thread, caplog):
    c = interrupted(tmp_path)
    stray = tmp_path / "S" / "steps" / "trial_id=t0" / "part-abc.parquet"
    stray.write_bytes(b"junk")
    assert run_trial(c)["status"] == "completed"  # restore no longer parses its number: int('abc.p')
    assert stray.exists()  # not ours to delete
    with caplog.at_level("WARNING", logger="analysis"):
        exact(tmp_path)
    assert str(stray) in caplog.text


def test_copied_part_never_reaches_a_query_or_a_compaction(tmp_path, one_thread, caplog):
    run_trial(cfg(tmp_path, flush_rows=16))
    d = tmp_path / "S" / "steps" / "trial_id=t0"
    parts = sorted(d.glob("part-*.parquet"))
    assert len(parts) >= 3
    copy = d / "part-00077.parquet"
    shutil.copy2(parts[1], copy)
    with caplog.at_level("WARNING"):
        exact(tmp_path)  # 60 rows, not 60 + 16
    assert f"skipping {copy}: a copy of {parts[1]}" in caplog.text
    r = runner.invoke(app, ["compact", "S", "--results", str(tmp_path)])
    assert r.exit_code == 2 and r.output.startswith(f"error: {copy}: a copy of another part"), r.output
    assert "Traceback" not in r.output and not (tmp_path / "S" / "steps" / "compacted").exists()
    exact(tmp_path)
    copy.unlink()
    r = runner.invoke(app, ["compact", "S", "--results", str(tmp_path)])
    assert r.exit_code == 0, r.output
    exact(tmp_path)  # the merged file holds the real parts only
    merged = list((tmp_path / "S" / "steps" / "compacted").glob("merged-*.parquet"))
    assert len(merged) == 1 and pq.read_metadata(merged[0]).num_rows == STEPS
    assert not parts[1].exists()
    r = runner.invoke(app, ["query", "SELECT count(*) AS n FROM steps", "--results", str(tmp_path),
                            "--format", "csv"])
    assert r.output.split() == ["n", str(STEPS)], r.output


def test_a_moved_sweep_resumes_in_its_new_folder_only(tmp_path, one_thread):
    old, new = tmp_path / "old", tmp_path / "new"
    c = interrupted(old)
    shutil.move(old, new)
    moved = TrialConfig.from_dict(relocate(json.loads(c.to_json()), str(new)))
    assert same_config(c.to_json(), moved)
    summary = run_trial(moved)
    assert summary["steps_done"] == STEPS and not old.exists()  # nothing written back to the old folder
    exact(new)
    first = query_arrow(str(new), "SELECT min(step) AS s FROM steps WHERE wall_s IS NOT NULL").to_pylist()
    assert first == [{"s": 1}]


def test_a_copied_sweep_resumes_without_touching_the_original(tmp_path, one_thread):
    old, new = tmp_path / "old", tmp_path / "copy"
    c = interrupted(old)
    shutil.copytree(old, new)
    before = {p: p.stat().st_mtime_ns for p in old.rglob("*")}
    run_trial(TrialConfig.from_dict(relocate(json.loads(c.to_json()), str(new))))
    exact(new)
    assert {p: p.stat().st_mtime_ns for p in old.rglob("*")} == before


def test_a_finished_trial_counts_as_finished_after_a_move(tmp_path, one_thread):
    old, new = tmp_path / "old", tmp_path / "new"
    c = cfg(old)
    run_trial(c)
    ended = query_arrow(str(old), "SELECT ended_at FROM trials").to_pylist()
    shutil.move(old, new)
    run_trial(TrialConfig.from_dict(relocate(json.loads(c.to_json()), str(new))))  # not trained again
    assert query_arrow(str(new), "SELECT ended_at FROM trials").to_pylist() == ended
    exact(new)


def test_a_trial_tune_gave_up_on_reads_failed_then_resumes(tmp_path, one_thread):
    c = interrupted(tmp_path)
    mark_failed(json.loads(c.to_json()), "RayActorError: the actor died unexpectedly")
    row = query_arrow(str(tmp_path), "SELECT status, error FROM trials").to_pylist()[0]
    assert row == {"status": "failed", "error": f"{GAVE_UP}: RayActorError: the actor died unexpectedly"}
    r = runner.invoke(app, ["status", "S", "--results", str(tmp_path)])
    assert "RayActorError: the actor died unexpectedly" in r.output, r.output
    reopen(json.loads(c.to_json()))
    assert query_arrow(str(tmp_path), "SELECT status FROM trials").to_pylist() == [{"status": "running"}]
    assert run_trial(c)["status"] == "completed"
    exact(tmp_path)
