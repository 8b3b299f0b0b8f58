"""Issue 14, items 5-8: damaged files named in one line by every command that reads them, validation gaps
closed before anything is written, bounded work on hostile input. Real Parquet, real DuckDB, the real CLI."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from trainers.config import TrialConfig
from trainers.train import run_trial

runner = CliRunner()


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """A finished sweep S of two small trials (parts of 8 rows) with a real sweep.json."""
    from orchestrator.sweeps import resolve

    r = tmp_path_factory.mktemp("clean")
    spec = resolve("curse-of-memory", "smoke").to_dict()
    (r / "S").mkdir()
    (r / "S" / "sweep.json").write_text(json.dumps({
        "sweep_id": "S", "name": spec["name"], "status": "completed", "created_at": "2026-01-01T00:00:00+00:00",
        "spec": spec, "scale": "smoke"}))
    for t in ("a", "b"):
        run_trial(TrialConfig(sweep="curse-of-memory", sweep_id="S", trial_id=t, results=str(r), cell="rnn",
                              hidden=8, seq_len=10, batch=8, eval_batch=16, steps=30, flush_rows=8, flush_s=0))
    return r


@pytest.fixture
def results(clean, tmp_path) -> Path:
    shutil.copytree(clean, tmp_path / "r")
    return tmp_path / "r"


def one_line_error(r, *starts: str) -> str:
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert r.output.startswith(starts), r.output
    return r.output


@pytest.mark.parametrize("cmd", [["ls"], ["status", "S"], ["report", "S"], ["compact", "S"]])
def test_truncated_trials_part_is_named_by_every_command(results, cmd):
    part = results / "S" / "trials" / "trial_id=a" / "trial.parquet"
    part.write_bytes(part.read_bytes()[:100])
    one_line_error(runner.invoke(app, [*cmd, "--results", str(results)]), f"error: {part}: ")


@pytest.mark.parametrize("junk", [lambda b: b[:200], lambda b: b"junk junk junk"])
def test_truncated_or_junk_steps_part_in_compact(results, junk):
    part = results / "S" / "steps" / "trial_id=b" / "part-00001.parquet"
    part.write_bytes(junk(part.read_bytes()))
    one_line_error(runner.invoke(app, ["compact", "S", "--results", str(results)]),
                   f"error: {part}: not a readable Parquet file")
    assert not (results / "S" / "steps" / "compacted").exists() or not list(
        (results / "S" / "steps" / "compacted").glob("merged-*"))


def test_invalid_sweep_json_in_resume_while_ls_and_status_show_question_marks(results):
    (results / "S" / "sweep.json").write_text("{bad")
    one_line_error(runner.invoke(app, ["resume", "S", "--results", str(results)]),
                   f"error: {results / 'S' / 'sweep.json'}: not valid JSON")
    r = runner.invoke(app, ["ls", "--results", str(results)])
    assert r.exit_code == 0 and "S" in r.output and "?" in r.output, r.output
    r = runner.invoke(app, ["status", "S", "--results", str(results)])
    assert r.exit_code == 0 and "?" in r.output, r.output


def test_out_into_a_missing_folder_or_onto_a_directory(results, tmp_path):
    one_line_error(runner.invoke(app, ["query", "SELECT 1", "--out", str(tmp_path / "nope" / "x.csv"),
                                       "--results", str(results)]), "error: --out ")
    one_line_error(runner.invoke(app, ["query", "SELECT 1", "--out", str(tmp_path), "--results", str(results)]),
                   f"error: --out {tmp_path}: is a directory")
    assert not (tmp_path / "nope").exists()


def test_unreachable_s3_endpoint_says_so(tmp_path):
    uri = "s3://b/x?endpoint_override=127.0.0.1:9&scheme=http"
    r = runner.invoke(app, ["ls", "--results", uri])
    out = one_line_error(r, "error: cannot read results location")
    assert "no sweeps under" not in out


def test_results_location_that_is_a_file_says_so(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    one_line_error(runner.invoke(app, ["ls", "--results", str(f)]), "error: cannot read results location")


def test_several_statements_are_refused(results):
    one_line_error(runner.invoke(app, ["query", "SELECT 1; SELECT 2", "--results", str(results)]),
                   "error: several SQL statements")


def test_duckdb_has_no_temp_directory_under_the_working_folder(results, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "secret.csv").write_text("a\n1\n")
    for sql in ["SELECT * FROM read_csv('.tmp/secret.csv')", f"SELECT * FROM read_csv('{tmp_path}/.tmp/secret.csv')",
                f"COPY (SELECT 1) TO '{tmp_path}/.tmp/out.csv'"]:
        r = runner.invoke(app, ["query", sql, "--results", str(results)])
        assert r.exit_code == 2 and "Traceback" not in r.output, (sql, r.output)
    assert sorted(p.name for p in (tmp_path / ".tmp").iterdir()) == ["secret.csv"]


@pytest.mark.parametrize("sets, field", [
    (["lr=inf"], "lr"), (["lr_range=1e-4,inf"], "lr_range"), (["lr_min=-5"], "lr_min"),
    (["device=cuda:banana"], "device"), (["lr_ranges=rnn:1e-4:inf"], "lr_ranges")])
def test_validation_gaps_are_closed_before_anything_is_written(tmp_path, sets, field):
    args = ["launch", "curse-of-memory", "--scale", "smoke", "--results", str(tmp_path / "r")]
    for s in sets:
        args += ["--set", s]
    out = one_line_error(runner.invoke(app, args), "error: ")
    assert field in out
    assert not (tmp_path / "r").exists()


def test_cpus_per_trial_inf_is_refused(tmp_path):
    out = one_line_error(runner.invoke(app, ["launch", "curse-of-memory", "--scale", "smoke", "--cpus-per-trial",
                                             "inf", "--results", str(tmp_path / "r")]), "error: ")
    assert "cpus_per_trial" in out and not (tmp_path / "r").exists()


@pytest.mark.slow
def test_gpus_per_trial_on_a_cluster_without_gpus(ray_session, tmp_path):
    out = one_line_error(runner.invoke(app, ["launch", "curse-of-memory", "--scale", "smoke", "--gpus-per-trial",
                                             "1", "--results", str(tmp_path / "r")]), "error: ")
    assert "no node of the Ray cluster has a GPU" in out and not (tmp_path / "r").exists()


def test_resume_never_reads_outside_results(tmp_path):
    elsewhere = tmp_path / "elsewhere" / "S"
    elsewhere.mkdir(parents=True)
    (elsewhere / "sweep.json").write_text("{}")
    (tmp_path / "r").mkdir()
    out = one_line_error(runner.invoke(app, ["resume", "../elsewhere/S", "--results", str(tmp_path / "r")]),
                         "error: invalid sweep id")
    assert "'../elsewhere/S'" in out


def test_yaml_alias_bomb_is_refused_at_once(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i, (p, q) in enumerate(zip("abcdefgh", "bcdefghi")):
        lines.append(f"{q}: &{q} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]")
    bomb.write_text("\n".join(lines) + "\n")
    out = one_line_error(runner.invoke(app, ["show", str(bomb)]), f"error: {bomb}:")
    assert "aliases" in out


def test_counts_are_capped_with_a_clear_error(tmp_path):
    out = one_line_error(runner.invoke(app, ["show", "curse-of-memory", "--seeds", "10000000"]), "error: ")
    assert "seeds=10000000" in out and "at most 100000 trials" in out


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_query_output_is_streamed_batch_by_batch_and_whole(results, tmp_path, fmt):
    from analysis import stream
    from analysis.db import query

    sql = "SELECT range AS i, range * 0.5 AS x FROM range(150000)"  # 3 batches of BATCH_ROWS
    pieces = list(stream.render(str(results), sql, fmt))
    assert len(pieces) >= 3
    text = "".join(pieces)
    if fmt != "table":
        assert text == query(str(results), sql, fmt)  # byte for byte the whole rendering
    else:
        assert text.endswith("(150000 rows)\n") and len(text.splitlines()) == 150000 + 3
    out = tmp_path / f"out.{fmt}"
    r = runner.invoke(app, ["query", sql, "--format", fmt, "--out", str(out), "--results", str(results)])
    assert r.exit_code == 0 and out.read_text() == text, r.output
