"""Every probe on in a smoke sweep through the CLI: their rows land in Parquet and `sweep query` returns them."""
from __future__ import annotations


import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from sweepcheck import cli_rows as q
from trainers.probes import PROBES

runner = CliRunner()
STEPS = 6
PROBE_SPECS = ["hessian:every=3:k_top=2:density_steps=8:trace_samples=4",
               "attractors:every=3:burn_in=20:keep=8:n_inputs=2:n_inits=2:lyapunov_steps=10:lyapunov_burn_in=5",
               "lattice:every=3", "signal"]



@pytest.fixture(scope="module")
def probed(smoke_sweep):
    return smoke_sweep("curse-of-memory", "cells=lru,gru", "nus=0.9", "lr_search=none", "seeds=1", f"steps={STEPS}",
                       "depths=2", "seq_lens=12", "probe_batch=4", "analyses=hessian_opt:rnn,hessian_opt:cdiag",
                       "probes=" + ",".join(PROBE_SPECS))[:2]


def test_every_registered_probe_is_exercised():
    assert {s.split(":")[0] for s in PROBE_SPECS} == set(PROBES)


@pytest.mark.slow
def test_probe_rows_at_their_cadence(probed):
    results, sweep_id = probed
    w = f"WHERE sweep_id = '{sweep_id}'"
    trials = q(results, f"SELECT trial_id, status, probe_s, wall_s FROM trials {w} AND stage = 'seed'")
    assert len(trials) == 2 and all(t["status"] == "completed" for t in trials)
    assert all(0 < float(t["probe_s"]) < float(t["wall_s"]) for t in trials)
    # hessian and attractors: at init, every 3 steps, at the end -> steps {0, 3, 6} for each trial
    for table in ("hessian", "attractors", "attractor_summary"):
        rows = q(results, f"SELECT trial_id, list(DISTINCT step ORDER BY step) AS steps FROM {table} {w} "
                          "AND trial_id NOT LIKE 'hessian_opt-%' GROUP BY ALL")
        assert len(rows) == 2 and all(r["steps"] == "[0, 3, 6]" for r in rows), (table, rows)
    stats = {r["stat"] for r in q(results, f"SELECT DISTINCT stat FROM hessian {w}")}
    assert {"top", "bottom", "trace", "density", "ipr", "k90", "sharpness_lr"} <= stats
    # attractors: n_inputs x n_inits x keep rows per snapshot
    (n,) = q(results, f"SELECT count(*) AS n FROM attractors {w} AND step = 0")
    assert int(n["n"]) == 2 * 2 * 2 * 8
    # lattice: at init and every 3 steps (no end call by default), depth x T cells per (loss, step)
    rows = q(results, f"SELECT trial_id, step, loss, count(*) AS n FROM lattice {w} AND wrt = 'hidden' GROUP BY ALL")
    assert {(r["step"], r["loss"]) for r in rows} == {(s, l) for s in ("0", "3", "6") for l in ("last", "all")}
    assert all(int(r["n"]) == 2 * 12 for r in rows)
    # signal: at init only, three quantities per layer, five for the lru (its lambda's magnitude and angle)
    rows = q(results, f"SELECT trial_id, list(DISTINCT step) AS steps, count(*) AS n FROM signal {w} GROUP BY ALL")
    assert all(r["steps"] == "[0]" and int(r["n"]) == 2 * (5 if r["trial_id"].startswith("lru") else 3)
               for r in rows), rows


def test_bad_probe_spec_is_a_one_line_error(tmp_path):
    r = runner.invoke(app, ["launch", "curse-of-memory", "--results", str(tmp_path / "r"),
                            "--set", "probes=hessian:k_top=x"])
    assert r.exit_code == 2 and "invalid probes entry 'hessian:k_top=x'" in r.output
    r = runner.invoke(app, ["launch", "curse-of-memory", "--results", str(tmp_path / "r"), "--set", "probes=ghost"])
    assert r.exit_code == 2 and "unknown probe 'ghost'; valid: attractors" in r.output
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_hessian_at_optimum_stage_and_fig4(probed):
    results, sweep_id = probed
    rows = q(results, f"SELECT t.cell, h.value FROM hessian h JOIN trials t USING (sweep_id, trial_id) "
                      f"WHERE h.sweep_id = '{sweep_id}' AND t.stage = 'analysis' AND h.stat = 'ipr' AND h.idx = 0")
    ipr = {r["cell"]: float(r["value"]) for r in rows}
    assert set(ipr) == {"rnn", "cdiag"} and ipr["cdiag"] > 2 * ipr["rnn"]  # Fig. 4: diagonal concentrates
    r = runner.invoke(app, ["report", sweep_id, "--results", str(results)])
    assert r.exit_code == 0, r.output
    fig4 = next(p for p in r.output.split() if p.endswith("fig4.png"))
    assert open(fig4, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
