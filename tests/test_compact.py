"""`sweep compact`: real Parquet written by ``TrialWriter`` on tmp_path, read by real DuckDB through the views.
Compaction merges the finished trials' part files and no query's answer changes, also across a simulated kill."""
from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import sweep_cli
from orchestrator.cli import app
from trainers.compact import compact
from orchestrator.sweep_store import read_trials
from trainers.config import TrialConfig
from layout.files import ROW_GROUP_ROWS
from layout.paths import COMPACTED_DIR
from layout.schemas import SCHEMAS
from trainers.record import CompactedTrialError, TrialWriter
from trainers.train import run_trial

runner = CliRunner()
FINISHED = {"c0": "completed", "c1": "completed", "d0": "diverged", "f0": "failed"}
# every view in full, plus the two queries the bench times
QUERIES = [f"SELECT * FROM {t}" for t in SCHEMAS] + [
    "SELECT t.cell, t.nu, avg(s.loss) AS final_loss FROM trials t JOIN "
    "(SELECT sweep_id, trial_id, arg_max(loss, step) AS loss FROM steps GROUP BY ALL) s USING (sweep_id, trial_id) "
    "GROUP BY ALL",
    "SELECT step, loss FROM steps WHERE sweep_id = 'S' AND trial_id = 'c1'",
]


def write_trial(results: pathlib.Path, sweep_id: str, trial_id: str, status: str, n: int, cell: str = "rnn",
                checkpoint: bool = False) -> None:
    """``n`` steps rows appended one by one, grad_norms and hessian rows as columns, flushed every 4 rows."""
    w = TrialWriter(str(results), sweep_id, trial_id, flush_rows=4)
    for s in range(1, n + 1):
        w.append("steps", {"step": s, "loss": 1.0 / s, "lr": 1e-3, "grad_norm": 0.5 * s, "clipped": s % 3 == 0,
                           "wall_s": 0.1 * s})
    steps = np.arange(1, n + 1)
    w.extend("grad_norms", {"step": steps, "group": ["layer1.recurrent"] * n, "norm": 2.0 / steps})
    w.extend("hessian", {"step": [0, 0], "stat": ["top", "trace"], "idx": [0, None], "value": [3.5, 7.25]})
    w.flush()
    if checkpoint:
        w.save_checkpoint(b"model and optimiser")
    w.write_trial({"sweep": "curse-of-memory", "stage": "seed", "cell": cell, "nu": 0.9 if n % 2 else 0.99,
                   "status": status, "final_loss": 1.0 / n, "steps_done": n})


@pytest.fixture
def results(tmp_path: pathlib.Path) -> pathlib.Path:
    """Sweep S: four finished trials, one running with a checkpoint, one completed whose checkpoint is not yet
    dropped (a trial killed in between: resumable); sweep B: one finished trial."""
    r = tmp_path / "results"
    for sid, name in (("S", "curse-of-memory"), ("B", "other")):
        (r / sid).mkdir(parents=True)
        (r / sid / "sweep.json").write_text(json.dumps({"sweep_id": sid, "name": name, "created_at": "2026-01-01"}))
    for i, (tid, status) in enumerate(FINISHED.items()):
        write_trial(r, "S", tid, status, n=9 + i, cell=("rnn", "lru")[i % 2])
    write_trial(r, "S", "r0", "running", n=10, checkpoint=True)
    write_trial(r, "S", "k0", "completed", n=6, checkpoint=True)
    write_trial(r, "B", "b0", "completed", n=5)
    return r


def answers(results: pathlib.Path) -> list[list[str]]:
    """Every query's rows through the views of one connection (a connection per query cost 6x the time)."""
    from analysis import connect

    con = connect(str(results))
    return [sorted(map(repr, con.sql(sql).to_arrow_table().to_pylist())) for sql in QUERIES]


def files(results: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(results)): p.read_bytes() for p in results.rglob("*.parquet")}


def part_dirs(results: pathlib.Path, trial: str) -> list[pathlib.Path]:
    """The trial's part directories in sweep S (``trials`` excepted: see ``trial_dir``)."""
    return sorted(d for d in results.glob(f"S/*/trial_id={trial}") if d.parent.name != "trials")


def trial_dir(results: pathlib.Path, trial: str) -> pathlib.Path:
    """The directory of the trial's own ``trials`` file in sweep S."""
    return results / "S" / "trials" / f"trial_id={trial}"


def view(table: str) -> int:
    """Index in QUERIES of ``SELECT * FROM table``."""
    return list(SCHEMAS).index(table)


def test_compact_merges_finished_trials_and_keeps_every_answer(results):
    before, files_before = answers(results), files(results)
    assert len(before[view("steps")]) == 9 + 10 + 11 + 12 + 10 + 6 + 5  # every row, once
    result = compact(str(results), "S")
    after = files(results)
    assert answers(results) == before
    assert result.merged_trials == 4 and result.skipped_trials == 2
    assert result.files_after < result.files_before and len(after) < len(files_before)
    # one merged file per table that had rows; the finished trials' part directories are gone
    merged = sorted(results.glob(f"S/*/{COMPACTED_DIR}/merged-*.parquet"))
    assert [p.parent.parent.name for p in merged] == ["grad_norms", "hessian", "steps", "trials"]
    assert pq.read_metadata(merged[2]).num_rows == 9 + 10 + 11 + 12
    assert pq.read_metadata(merged[2]).num_row_groups == 1  # < ROW_GROUP_ROWS rows: one row group
    assert pq.read_metadata(merged[3]).num_rows == len(FINISHED)
    assert all(not part_dirs(results, t) and not trial_dir(results, t).exists() for t in FINISHED)
    # the running and the resumable trial, their checkpoints and sweep B are byte for byte as they were
    for key, data in files_before.items():
        if not key.startswith("S/") or "trial_id=r0" in key or "trial_id=k0" in key:
            assert after[key] == data, key
    assert (results / "S" / "_checkpoints" / "r0.pt").exists() and (results / "S" / "_checkpoints" / "k0.pt").exists()


def test_compact_is_idempotent(results):
    compact(str(results), "S")
    once, answer = files(results), answers(results)
    again = compact(str(results), "S")
    assert files(results) == once and answers(results) == answer
    assert again.merged_trials == 0 and again.files_before == again.files_after


def test_a_trial_finishing_later_gets_its_own_merged_file(results):
    compact(str(results), "S")
    write_trial(results, "S", "r0", "completed", n=10)  # the running trial finishes (its parts rewritten)
    (results / "S" / "_checkpoints" / "r0.pt").unlink()
    before = answers(results)
    assert compact(str(results), "S").merged_trials == 1
    assert answers(results) == before
    assert len(list(results.glob(f"S/steps/{COMPACTED_DIR}/merged-*.parquet"))) == 2
    assert not part_dirs(results, "r0")


@pytest.mark.parametrize("restored", ["all", "half"])
def test_kill_after_the_merged_file_appears(results, tmp_path, restored):
    """A kill between the rename and the deletions: the merged file and all (or some) of its inputs exist."""
    before = answers(results)
    saved = tmp_path / "saved"
    shutil.copytree(results, saved)
    compact(str(results), "S")
    inputs = sorted(p for t in FINISHED for d in part_dirs(saved, t) + [trial_dir(saved, t)] for p in d.iterdir())
    for p in inputs[::2] if restored == "half" else inputs:  # put the deleted inputs back
        target = results / p.relative_to(saved)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, target)
    assert answers(results) == before  # superseded parts are not read: no row twice
    result = compact(str(results), "S")  # the re-run completes the deletions and merges nothing new
    assert result.merged_trials == 0 and result.files_after < result.files_before
    assert answers(results) == before and all(not part_dirs(results, t) for t in FINISHED)
    assert not any(trial_dir(results, t).exists() for t in FINISHED)
    assert len(list(results.glob(f"S/steps/{COMPACTED_DIR}/*"))) == 1


def test_kill_while_the_merged_file_is_written(results):
    """A kill before the rename leaves a (truncated) temporary: never read, removed by the next run."""
    before = answers(results)
    tmp = results / "S" / "steps" / COMPACTED_DIR / f".merged-{'0' * 32}.parquet.tmp"
    tmp.parent.mkdir(parents=True)
    tmp.write_bytes(b"PAR1 half a file")
    assert answers(results) == before
    compact(str(results), "S")
    assert not tmp.exists() and answers(results) == before


def test_large_merges_write_full_row_groups(tmp_path):
    r = tmp_path / "results"
    n = ROW_GROUP_ROWS // 2 + 7  # three trials: 1.5 row groups of rows, parts of ~ROW_GROUP_ROWS / 8 rows
    for i in range(3):
        w = TrialWriter(str(r), "S", f"t{i}", flush_rows=ROW_GROUP_ROWS // 8)
        w.extend("steps", {"step": np.arange(n, dtype=np.int32), "loss": np.full(n, float(i), np.float32)})
        w.flush()
        w.write_trial({"status": "completed"})
    before = answers(r)
    compact(str(r), "S")
    [merged] = r.glob(f"S/steps/{COMPACTED_DIR}/merged-*.parquet")
    meta = pq.read_metadata(merged)
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [ROW_GROUP_ROWS, 3 * n - ROW_GROUP_ROWS]
    assert answers(r) == before


def test_writer_keeps_the_order_of_appends_and_extends(tmp_path):
    w = TrialWriter(str(tmp_path), "S", "t0", flush_rows=5)
    w.append("steps", {"step": 1, "loss": 0.5})
    w.extend("steps", {"step": np.array([2, 3]), "loss": np.array([0.25, 0.125])})  # float64 -> float32 column
    w.append("steps", {"step": 4, "loss": 0.0625})
    assert w.pending("steps") == 4 and w.last_value("steps", "loss") == 0.0625
    w.extend("steps", {"step": [5, 6], "loss": [1.0, 2.0]})  # 6 >= flush_rows: one part file
    assert w.pending("steps") == 0 and w.last_value("steps", "loss") == 2.0  # the last row, flushed or not
    table = pq.read_table(tmp_path / "S" / "steps" / "trial_id=t0" / "part-00000.parquet")
    assert table.schema == SCHEMAS["steps"]
    assert table.column("step").to_pylist() == [1, 2, 3, 4, 5, 6]
    assert table.column("loss").to_pylist() == [0.5, 0.25, 0.125, 0.0625, 1.0, 2.0]
    assert table.column("trial_id").to_pylist() == ["t0"] * 6 and table.column("metric").null_count == 6


def test_cli_compact_prints_one_line(results):
    r = runner.invoke(app, ["compact", "curse-of-memory", "--results", str(results)])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("compacted S: ") and "4 finished trials merged" in r.output
    assert len(r.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_compact_unknown_sweep(results, tmp_path):
    before = files(results)
    r = sweep_cli("compact", "nope", "--results", str(results), cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout
    assert r.stderr.strip() == "error: no sweep with id or name 'nope'; available: B (other), S (curse-of-memory)"
    assert files(results) == before


def test_a_compacted_trial_reads_its_row_and_refuses_a_restart(results, tmp_path):
    """``read_trial`` and ``read_trials`` find merged rows (each once, also with a superseded own file left
    by a kill); ``restore`` refuses a compacted trial, also one killed between its steps and its trials merge."""
    rows = {t: TrialWriter(str(results), "S", t).read_trial() for t in FINISHED}
    listed = sorted(map(repr, read_trials(str(results), "S")))
    saved = tmp_path / "saved"
    shutil.copytree(results, saved)
    compact(str(results), "S")
    shutil.copytree(trial_dir(saved, "c0"), trial_dir(results, "c0"))  # a kill left c0's own file behind
    assert {t: TrialWriter(str(results), "S", t).read_trial() for t in FINISHED} == rows
    assert sorted(map(repr, read_trials(str(results), "S"))) == listed
    assert TrialWriter(str(results), "S", "nope").read_trial() is None
    # a kill after the steps were merged and before the trials row was: the own row is read, restarts refused
    [merged_trials] = results.glob(f"S/trials/{COMPACTED_DIR}/merged-*.parquet")
    merged_trials.unlink()
    shutil.copytree(trial_dir(saved, "c1"), trial_dir(results, "c1"))
    before, on_disk = answers(results), files(results)
    for t in ("c0", "c1"):
        assert TrialWriter(str(results), "S", t).read_trial() == rows[t]
        with pytest.raises(CompactedTrialError, match=f"trial {t} of sweep S was compacted"):
            TrialWriter(str(results), "S", t).restore(None)
    assert files(results) == on_disk and answers(results) == before  # the refusal changed nothing
    TrialWriter(str(results), "S", "r0").restore(None)  # an unmerged trial restarts as before


def test_run_trial_skips_a_compacted_trial_and_refuses_a_changed_config(tmp_path):
    c = TrialConfig(sweep="t", sweep_id="s1", trial_id="t1", results=str(tmp_path), cell="lru", nu=0.9, steps=12,
                    batch=4, seq_len=10, eval_batch=8, lr=0.01, grad_norm_every=5, checkpoint_every=5)
    first = run_trial(c)
    assert compact(str(tmp_path), "s1").merged_trials == 1
    before, on_disk = answers(tmp_path), files(tmp_path)
    assert run_trial(c) == first  # finished for this config: the merged row answers, nothing is trained
    changed = dataclasses.replace(c, lr=0.02)
    with pytest.raises(CompactedTrialError, match="run the changed config as a new sweep"):
        run_trial(changed)
    assert files(tmp_path) == on_disk and answers(tmp_path) == before
