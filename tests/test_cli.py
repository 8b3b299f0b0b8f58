"""The CLI surface: every command has help; bad input is one line, a non-zero exit, no traceback, nothing written."""
from __future__ import annotations


import pytest
import typer
from typer.testing import CliRunner

from conftest import sweep_cli
from orchestrator.cli import app

runner = CliRunner()
COMMANDS = sorted(typer.main.get_command(app).commands)  # every command the app registers, as click sees them


def test_the_command_list_is_the_apps():
    assert {"launch", "resume", "stop", "ls", "status", "query", "report", "compact", "show"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    r = runner.invoke(app, [command, "--help"])
    assert r.exit_code == 0 and "Example:" in r.output


def run_cli(*args, cwd):
    return sweep_cli(*args, cwd=cwd, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("args, needle", [
    (["launch", "nope"], "unknown sweep 'nope'; valid: attractors, curse-of-memory, deep-rnn, exploding-gradients, "
                      "signal-propagation"),
    (["launch", "curse-of-memory", "--set", "cells=rnn,xlstm"], "unknown cell 'xlstm'; valid: blockdiag"),
    (["launch", "curse-of-memory", "--set", "colour=red"], "unknown --set key 'colour'; valid:"),
    (["launch", "curse-of-memory", "--set", "nus=0.5,1.2"], "invalid nus=1.2; valid: values in [0, 1)"),
    (["launch", "curse-of-memory", "--scale", "huge"], "unknown scale 'huge'; valid: smoke, quick, paper"),
])
def test_bad_launch_input(tmp_path, args, needle):
    results = tmp_path / "results"
    r = run_cli(*args, "--results", str(results), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: {r.stderr.strip()[7:]}"]  # exactly one line
    assert needle in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert not results.exists()  # nothing partial left behind


@pytest.mark.slow
def test_unwritable_results_location(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    r = run_cli("launch", "curse-of-memory", "--scale", "smoke", "--results", str(blocker / "results"), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: results location '{blocker / 'results'}' cannot be written")
    assert len(r.stderr.strip().splitlines()) == 1
    assert blocker.read_text() == "not a directory"


@pytest.mark.slow
def test_query_errors(tmp_path):
    empty = tmp_path / "empty"
    r = run_cli("query", "SELECT 1", "--results", str(empty), cwd=tmp_path)
    assert r.returncode == 2 and f"no sweeps under '{empty}'" in r.stderr and "Traceback" not in r.stderr
    # a results dir with a sweep in it, but malformed SQL
    from trainers.record import TrialWriter

    TrialWriter(str(tmp_path / "res"), "s1", "t1").write_trial({"status": "completed"})
    r = run_cli("query", "SELEC * FROM trials", "--results", str(tmp_path / "res"), cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: query failed: Parser Error")
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli("query", "SELECT * FROM trials", "--format", "xml", "--results", str(tmp_path / "res"), cwd=tmp_path)
    assert r.returncode == 2 and "table, csv, json" in r.stderr


def test_results_default_from_environment(tmp_path, monkeypatch):
    from trainers.record import TrialWriter

    TrialWriter(str(tmp_path / "envres"), "s9", "t9").write_trial({"status": "completed", "cell": "lru"})
    monkeypatch.setenv("SWEEP_RESULTS", str(tmp_path / "envres"))
    r = runner.invoke(app, ["query", "SELECT sweep_id, cell FROM trials", "--format", "csv"])
    assert r.exit_code == 0 and "s9,lru" in r.output
