"""The everyday workflow, for real (issue 15): Ctrl-C and `sweep stop` on a launch subprocess, then `sweep resume`
with exact rows; the provenance in sweep.json and its Reproduce line; scoped results (`query --sweep`,
`curve(sweep=)`, `SHOW TABLES`); tags and notes; the commands that must not import torch or ray."""
from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import analysis
from conftest import start_cli, sweep_cli
from orchestrator.cli import app
from orchestrator.provenance import PACKAGES
from orchestrator.spec import SweepSpec
from orchestrator.specfile import load_target
from sweepcheck import assert_exact
from trainers.record import TrialWriter
from test_faults import wait_for  # one polling helper for the subprocess tests

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
STEPS = 300  # long enough (about 10 s a seed on 2 cores, 4 bundles of 3 seeds) for a stop to land mid-sweep
ARGS = ["launch", "curse-of-memory", "--scale", "smoke", "--set", "cells=rnn,lru", "--set", "nus=0.9", "--seeds", "3",
        "--set", "batch=16", "--set", f"steps={STEPS}", "--set", "checkpoint_every=100",
        "--set", "lr_search=tpe", "--set", "lr_search_trials=2",  # 4 bundles, one at a time (a quiet box ran 2
        "--max-concurrent", "1",  # at once in 9 s: a stop after the first pair came too late): 3 to go at the stop
        "--set", "lr_search_pruner=none",  # every run trains its STEPS (pruning: tests/test_pruning.py)
        "--set", "lr_ranges=lru:1e-3:0.01,rnn:1e-4:1e-3"]  # stable rates: every seed completes
N_TRIALS = 2 * 2 * 3  # (2 cells x 1 nu) x 2 Optuna trials x 3 seeds


def finished(results: Path) -> int:
    try:
        return analysis.frame(str(results), "SELECT count(*) AS n FROM trials WHERE status <> 'running'")["n"][0]
    except analysis.AnalysisError:  # nothing written yet
        return 0


def sweep_of(results: Path) -> dict:
    return json.loads(next(results.glob("*/sweep.json")).read_text())


def resume_exactly(results: Path, sweep_id: str) -> None:
    r = runner.invoke(app, ["resume", sweep_id, "--results", str(results)])
    assert r.exit_code == 0, r.output
    assert_exact(str(results), sweep_id, n_trials=N_TRIALS, steps=STEPS)
    assert json.loads((results / sweep_id / "sweep.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_ctrl_c_exits_130_reads_interrupted_and_resume_finishes_exactly(ray_session, tmp_path):
    results = tmp_path / "results"
    proc = start_cli(*ARGS, "--tag", "ctrl-c", "--note", "a note", "--results", str(results))
    wait_for(lambda: finished(results) >= 2, 240, "2 finished trials")
    proc.send_signal(signal.SIGINT)  # the driver alone, as a terminal's Ctrl-C reaches it
    out, _ = proc.communicate(timeout=180)
    meta = sweep_of(results)
    sid = meta["sweep_id"]
    assert proc.returncode == 130, out
    assert f"interrupted: sweep resume {sid}" in out, out
    assert "Tuner.restore" not in out and "FileNotFoundError" not in out and "Token authentication" not in out, out
    assert meta["status"] == "interrupted"
    ls = runner.invoke(app, ["ls", "--results", str(results)])
    assert ls.exit_code == 0 and f"{sid}  curse-of-memory  smoke  interrupted" in ls.output, ls.output
    assert "tags=ctrl-c" in ls.output and "note='a note'" in ls.output
    st = runner.invoke(app, ["status", sid, "--results", str(results)])
    assert st.exit_code == 0 and "smoke, interrupted)" in st.output.splitlines()[0], st.output
    resume_exactly(results, sid)


@pytest.mark.slow
def test_stop_from_another_process_then_resume(ray_session, tmp_path):
    results = tmp_path / "results"
    proc = start_cli(*ARGS, "--results", str(results))
    wait_for(lambda: finished(results) >= 2, 240, "2 finished trials")
    sid = sweep_of(results)["sweep_id"]
    stop = sweep_cli("stop", sid, "--results", str(results), timeout=60)
    assert stop.returncode == 0 and "stop requested" in stop.stdout, stop.stdout + stop.stderr
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 130 and f"interrupted: sweep resume {sid}" in out, out
    assert sweep_of(results)["status"] == "interrupted"
    assert not (results / sid / "_stop").exists()  # the request is spent: resume is not stopped by it
    again = sweep_cli("stop", sid, "--results", str(results), timeout=60)
    assert again.returncode == 2 and "interrupted, not running" in again.stderr
    resume_exactly(results, sid)


@pytest.mark.slow
def test_launch_ends_with_a_summary_and_records_provenance(ray_session, tmp_path):
    """A spec file with --set and --seeds: sweep.json's provenance, the summary, and the Reproduce line
    resolving to the same grid."""
    spec_file = tmp_path / "mine.toml"
    spec_file.write_text('base = "curse-of-memory"\nscale = "smoke"\nname = "mine"\n[grid]\ncells = ["lru"]\n'
                         'nus = [0.5]\n')
    results = tmp_path / "results"
    args = ["launch", str(spec_file), "--set", "steps=20", "--set", "lr_search=tpe", "--set", "lr_search_trials=2",
            "--seeds", "2", "--results", str(results)]
    r = sweep_cli(*args, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    meta = sweep_of(results)
    assert meta["command"] == shlex.join(["sweep", *args])
    assert meta["spec_file"]["text"] == spec_file.read_text()
    import hashlib
    assert meta["spec_file_sha256"] == hashlib.sha256(spec_file.read_bytes()).hexdigest()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert meta["git"]["commit"] == head.strip() and isinstance(meta["git"]["dirty"], bool)
    assert set(PACKAGES) <= set(meta["versions"]) and all(meta["versions"][p] for p in PACKAGES)
    # the Reproduce line, parsed as a shell would, resolves to the same spec
    argv = shlex.split(meta["reproduce"])
    assert argv[:3] == ["sweep", "launch", str(spec_file)]
    scale = argv[argv.index("--scale") + 1]
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    assert load_target(argv[2], scale, sets).spec == SweepSpec.from_dict(meta["spec"])
    # the summary: one row per group, the chosen rate, the wall time, a scoped query
    out = r.stdout
    from analysis.db import query_arrow  # the chosen rate (tpe): the rows' ``selected``, as the summary reads it
    (lr,) = {x["lr"] for x in query_arrow(str(results), "SELECT lr FROM trials WHERE selected").to_pylist()}
    assert "lru-d1-nu0.5" in out and f"{lr:.2e}" in out, out
    assert "wall time " in out and f"results: {results / meta['sweep_id']}" in out
    assert f"sweep query --sweep {meta['sweep_id']} " in out
    assert "FileNotFoundError" not in r.stderr and "Token authentication" not in r.stderr, r.stderr
    # sweep show SWEEP_ID: the past sweep's resolved spec and provenance
    show = runner.invoke(app, ["show", meta["sweep_id"], "--results", str(results)])
    assert show.exit_code == 0, show.output
    assert f"reproduce: {meta['reproduce']}" in show.output and "grid: 1 groups" in show.output
    assert f"git: {head.strip()}" in show.output


def two_sweeps(results: Path) -> None:
    """Two sweeps of one name whose trial ids repeat (as every run of a sweep's do), through the real writer."""
    for k, (sid, loss) in enumerate((("hand-20260101-000000-aaaa", 1.0), ("hand-20260102-000000-bbbb", 2.0))):
        (results / sid).mkdir(parents=True)
        (results / sid / "sweep.json").write_text(json.dumps(
            {"sweep_id": sid, "name": "hand", "scale": "smoke", "status": "completed",
             "created_at": f"2026-01-0{k + 1}T00:00:00+00:00"}))
        w = TrialWriter(str(results), sid, "t0")
        w.extend("steps", {"step": [1, 2, 3], "loss": [loss, loss / 2, loss / 4], "wall_s": [0.1, 0.2, 0.3]})
        w.flush()
        w.write_trial(dict(sweep="hand", stage="seed", task="teacher_student", cell="lru", depth=1, nu=0.9,
                           status="completed", steps_done=3, wall_s=0.3, final_loss=loss / 4,
                           config_json=json.dumps({"steps": 3})))


def test_curve_unknown_and_ambiguous_trials_raise(tmp_path):
    two_sweeps(tmp_path)
    con = analysis.connect(str(tmp_path))
    with pytest.raises(analysis.AnalysisError, match="'t0' is in 2 sweeps .*hand-20260101-000000-aaaa"):
        analysis.curve(con, "t0")
    with pytest.raises(analysis.AnalysisError, match="unknown trial 'nope' in any sweep"):
        analysis.curve(con, "nope")
    with pytest.raises(analysis.AnalysisError, match="unknown trial 'nope' in sweep 'hand-20260102"):
        analysis.curve(con, "nope", sweep="hand")
    assert list(analysis.curve(con, "t0", sweep="hand-20260101-000000-aaaa")["loss"]) == [1.0, 0.5, 0.25]
    assert list(analysis.curve(con, "t0", sweep="hand")["loss"]) == [2.0, 1.0, 0.5]  # a name: its latest sweep


def test_query_scoped_to_a_sweep_and_show_tables_lists_the_views(tmp_path):
    two_sweeps(tmp_path)
    q = ["query", "SELECT sweep_id, count(*) AS n FROM steps GROUP BY ALL", "--format", "csv", "--results",
         str(tmp_path)]
    both = runner.invoke(app, q)
    assert both.exit_code == 0 and len(both.output.strip().splitlines()) == 3, both.output
    one = runner.invoke(app, [*q, "--sweep", "hand"])  # a name: its latest sweep
    assert one.exit_code == 0 and one.output.strip() == "sweep_id,n\nhand-20260102-000000-bbbb,3", one.output
    by_id = runner.invoke(app, [*q, "--sweep", "hand-20260101-000000-aaaa"])
    assert by_id.output.strip() == "sweep_id,n\nhand-20260101-000000-aaaa,3", by_id.output
    bad = runner.invoke(app, [*q, "--sweep", "nope"])
    assert bad.exit_code == 2 and "no sweep with id or name 'nope'" in bad.output
    tables = runner.invoke(app, ["query", "SHOW TABLES", "--format", "csv", "--results", str(tmp_path)])
    names = tables.output.split()[1:]
    assert "trials" in names and "steps" in names and not [n for n in names if n.startswith("_")], names


def test_tags_and_notes(tmp_path):
    two_sweeps(tmp_path)
    sid = "hand-20260101-000000-aaaa"
    r = runner.invoke(app, ["tag", sid, "baseline", "v1", "--note", "first try", "--results", str(tmp_path)])
    assert r.exit_code == 0 and "tags baseline,v1; note: first try" in r.output, r.output
    r = runner.invoke(app, ["tag", sid, "--remove", "v1", "--results", str(tmp_path)])
    assert r.exit_code == 0 and "tags baseline; note: first try" in r.output, r.output
    ls = runner.invoke(app, ["ls", "--results", str(tmp_path)])
    line = next(ln for ln in ls.output.splitlines() if ln.startswith(sid))
    assert "tags=baseline" in line and "note='first try'" in line
    by_id = {s["sweep_id"]: s for s in analysis.sweeps(str(tmp_path))}
    assert by_id[sid]["tags"] == ["baseline"] and by_id[sid]["note"] == "first try"
    assert by_id["hand-20260102-000000-bbbb"]["tags"] == []
    bad = runner.invoke(app, ["tag", sid, "no spaces", "--results", str(tmp_path)])
    assert bad.exit_code == 2 and "invalid tag 'no spaces'" in bad.output


FAST = [["--help"], ["--version"], ["ls"], ["query", "SELECT count(*) FROM trials"], ["status", "hand"],
        ["status", "hand-20260101-000000-aaaa"]]
HEAVY = ("torch", "ray", "pandas", "pyarrow.dataset")  # pandas: pyarrow.dataset imports it (analysis.db._relation)


@pytest.mark.slow
@pytest.mark.parametrize("args", FAST, ids=lambda a: "-".join(a)[:20])
def test_fast_commands_import_neither_torch_nor_ray(tmp_path, args):
    """Each command in a fresh interpreter, then which heavy packages it imported: none; `query` alone reads
    through pyarrow.dataset (the read-only views), so it alone may import that and pandas."""
    two_sweeps(tmp_path)
    argv = args + (["--results", str(tmp_path)] if args[0] in ("ls", "query", "status") else [])
    code = ("import sys\nfrom orchestrator.cli import app\ntry:\n    app(" + repr(argv) + ")\nexcept SystemExit as e:\n"
            f"    code = e.code\nprint('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
            "sys.exit(code)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    expected = "HEAVY ['pandas', 'pyarrow.dataset']" if args[0] == "query" else "HEAVY []"
    assert r.stdout.strip().splitlines()[-1] == expected, r.stdout
