"""`sweep launch curse-of-memory --scale smoke` through the CLI on a real local Ray, then SQL over the Parquet."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from sweepcheck import cli_rows as q
from orchestrator.sweeps import resolve

runner = CliRunner()



@pytest.fixture(scope="module")
def smoke(com_smoke):
    """The session's curse-of-memory smoke sweep (tests/conftest.py): (results, sweep_id, launch output)."""
    return com_smoke


@pytest.mark.slow
def test_launch_prints_id_results_and_a_query(smoke):
    results, sweep_id, out = smoke
    assert out.startswith(f"sweep {sweep_id}")
    assert f"results: {results / sweep_id}" in out and "sweep query" in out and "sweep report" in out
    meta = json.loads((results / sweep_id / "sweep.json").read_text())
    assert meta["status"] == "completed" and meta["name"] == "curse-of-memory" and meta["scale"] == "smoke"


@pytest.mark.slow
def test_one_trials_row_per_trial_and_steps_per_trial(smoke):
    results, sweep_id, _ = smoke
    spec = resolve("curse-of-memory", "smoke")
    groups = len(spec.grid())
    n_seed = spec.stage_trials()["seed"]  # every rate of each group's grid x every seed; nothing searched
    assert n_seed == groups * 2 * spec.seeds
    rows = q(results, f"SELECT stage, count(*) n, count(DISTINCT trial_id) d FROM trials "
                      f"WHERE sweep_id='{sweep_id}' GROUP BY stage ORDER BY stage")
    assert [(r["stage"], int(r["n"]), int(r["d"])) for r in rows] == [("seed", n_seed, n_seed)]
    # steps rows = trials x steps (a diverged trial stops early: its steps_done says where)
    (tot,) = q(results, f"SELECT (SELECT count(*) FROM steps WHERE sweep_id='{sweep_id}') AS rows, "
                        f"(SELECT sum(steps_done) FROM trials WHERE sweep_id='{sweep_id}') AS done, "
                        f"(SELECT count(*) FROM trials WHERE sweep_id='{sweep_id}' AND status='completed') "
                        f"AS completed")
    assert int(tot["rows"]) == int(tot["done"])
    completed = q(results, f"SELECT trial_id, steps_done FROM trials "
                           f"WHERE sweep_id='{sweep_id}' AND status='completed'")
    assert len(completed) == int(tot["completed"]) >= n_seed  # nothing in the smoke grid should diverge
    assert all(int(r["steps_done"]) == spec.steps for r in completed)
    (dups,) = q(results, "SELECT count(*) c FROM (SELECT trial_id, step FROM steps GROUP BY ALL HAVING count(*) > 1)")
    assert dups["c"] == "0"


@pytest.mark.slow
def test_seed_stage_runs_every_rate_and_selects_the_best_mean(smoke):
    results, sweep_id, _ = smoke
    spec = resolve("curse-of-memory", "smoke")
    rows = q(results, f"SELECT group_key, cell, nu, lr, avg(final_loss) mean, count(*) n, bool_and(selected)::INT s, "
                      f"bool_or(selected)::INT any_s FROM trials WHERE sweep_id='{sweep_id}' AND stage='seed' "
                      f"GROUP BY ALL")
    for g in spec.grid():
        mine = [r for r in rows if r["group_key"] == spec.group_key(g)]
        assert sorted(float(r["lr"]) for r in mine) == sorted(spec.rates(g))  # every rate of the grid
        assert all(int(r["n"]) == spec.seeds for r in mine)  # every seed at each
        chosen = [r for r in mine if r["any_s"] == "1"]
        assert len(chosen) == 1 and chosen[0]["s"] == "1"  # one rate, all of its seeds
        assert float(chosen[0]["mean"]) == min(float(r["mean"]) for r in mine)  # nothing diverges in smoke


@pytest.mark.slow
def test_grad_norm_rows_at_the_cadence(smoke):
    results, sweep_id, _ = smoke
    spec = resolve("curse-of-memory", "smoke")
    rows = q(results, f"SELECT trial_id, count(DISTINCT step) s, count(DISTINCT \"group\") g, count(*) n "
                      f"FROM grad_norms WHERE sweep_id='{sweep_id}' GROUP BY ALL")
    assert rows and all(int(r["s"]) == spec.steps // spec.grad_norm_every and int(r["n"]) == int(r["s"]) * int(r["g"])
                        for r in rows)


@pytest.mark.slow
def test_ls_status_and_report(smoke):
    results, sweep_id, _ = smoke
    r = runner.invoke(app, ["ls", "--results", str(results)])
    assert r.exit_code == 0 and sweep_id in r.output and "completed=16" in r.output
    r = runner.invoke(app, ["status", sweep_id, "--results", str(results)])
    assert r.exit_code == 0 and "seed" in r.output and "16" in r.output
    r = runner.invoke(app, ["report", "curse-of-memory", "--results", str(results)])
    assert r.exit_code == 0, r.output
    written = r.output.split()
    assert any(p.endswith("fig3a.png") for p in written) and any(p.endswith(".md") for p in written)
    png = next(p for p in written if p.endswith("fig3a.png"))
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_relative_results_land_in_the_working_directory(ray_session, tmp_path, monkeypatch):
    # Ray Tune runs each trial in its own working folder: a relative --results must still mean ./results here
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["launch", "curse-of-memory", "--scale", "smoke", "--results", "results",
                            "--set", "cells=lru", "--set", "nus=0.9", "--set", "lr_search=none",
                            "--set", "steps=5", "--set", "seeds=2"])
    assert r.exit_code == 0, r.output
    sweep_id = r.output.split()[1]
    assert sorted(p.name for p in (tmp_path / "results" / sweep_id / "trials").iterdir()) == [
        "trial_id=lru-d1-nu0.9-s0", "trial_id=lru-d1-nu0.9-s1"]
    rows = q("results", f"SELECT count(*) AS n FROM steps WHERE sweep_id = '{sweep_id}'")
    assert rows == [{"n": "10"}]
