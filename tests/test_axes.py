"""Any per-trial field as a grid axis (orchestrator/axes.py, SweepSpec.vary): from --set and from spec files, in
the group key, the trial configs, `sweep show`, the cost estimate, and, on a real sweep, the trials table. And
`--scale smoke` on a spec file: the file's grid with its budget capped."""
from __future__ import annotations

import json
import pathlib

import pytest
from typer.testing import CliRunner

from analysis.db import query_arrow
from orchestrator.cli import app
from orchestrator.cost import estimate, read_rates
from orchestrator.plan import plan, ray_trials
from orchestrator.spec import SpecError, SweepSpec
from orchestrator.specfile import SMOKE_CAPS, load_file
from orchestrator.sweeps import resolve
from orchestrator.trial_configs import ray_trial_config

runner = CliRunner()


def test_set_with_several_values_makes_an_axis():
    s = resolve("curse-of-memory", "smoke", ["hidden=32,64", "batch=16,32"])
    assert s.vary == ("hidden=32,64", "batch=16,32") and s.extra_axes() == [("hidden", (32, 64)), ("batch", (16, 32))]
    groups = s.grid()
    assert len(groups) == 2 * 2 * 2 * 2  # cells x nus x hidden x batch
    keys = [s.group_key(g) for g in groups]
    assert len(set(keys)) == 16 and keys[:2] == ["rnn-d1-nu0.68-hidden32-batch16", "rnn-d1-nu0.68-hidden32-batch32"]
    seed_stage = ray_trials([t for t in plan(s) if t.stage == "seed" and t.group_key == keys[3]])
    cfg = ray_trial_config(s, "sid", "/r", seed_stage[0])["members"][1]  # a bundle's second seed
    assert (cfg["hidden"], cfg["batch"], cfg["trial_id"]) == (64, 32, "rnn-d1-nu0.68-hidden64-batch32-lr0.001-s1")
    # one value again: the field, no longer an axis; JSON round trip keeps the axes
    assert resolve("curse-of-memory", "smoke", ["hidden=32,64", "hidden=16"]).vary == ()
    assert SweepSpec.from_dict(json.loads(json.dumps(s.to_dict()))).grid() == groups
    # the cost estimate prices each group's own shape: hidden 64 costs more than hidden 32
    e = estimate(s, 2, read_rates())
    one = estimate(resolve("curse-of-memory", "smoke", ["hidden=32", "batch=16"]), 2, read_rates())
    assert e.core_s > 4 * one.core_s


@pytest.mark.parametrize("sets, message", [
    (["hidden=32,0"], "invalid hidden=0; valid: an integer >= 1"),
    (["batch=16,x"], "invalid --set batch='x': invalid literal for int() with base 10: 'x'; expected int"),
    (["optimizer=adam,rmsprop"], "invalid optimizer='rmsprop'; valid: adam, sgd"),
    (["seeds=1,2"], "invalid --set seeds='1,2': seeds takes one value; fields that take several, as a grid axis: "
                    "hidden, d_model, "),
    (["vary=seeds=1"], "invalid vary='seeds=1'; valid: one entry field=v1,v2 per field, field one of hidden, "),
])
def test_bad_axis_values_are_one_line_errors(sets, message):
    with pytest.raises(SpecError) as e:
        resolve("curse-of-memory", "smoke", sets)
    assert str(e.value).startswith(message)


def test_spec_file_lists_make_axes_and_show_prints_them(tmp_path):
    f = tmp_path / "ax.toml"
    f.write_text('base = "curse-of-memory"\n[grid]\ncells = ["rnn"]\nnus = [0.9]\nhidden = [8, 16]\n'
                 '[train]\nbatch = [4, 8]\noptimizer = ["adam", "sgd"]\nsteps = 5\n')
    spec = load_file(str(f)).spec
    assert spec.extra_axes() == [("hidden", (8, 16)), ("batch", (4, 8)), ("optimizer", ("adam", "sgd"))]
    assert len(spec.grid()) == 8
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "curse-of-memory"\n[train]\nbatch = [4, "x"]\n')
    with pytest.raises(SpecError, match=r"bad.toml:3: train.batch: 'x' is not valid; expected an integer"):
        load_file(str(bad))
    r = runner.invoke(app, ["show", str(f)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[1].endswith("x hidden 8, 16 x batch 4, 8 x optimizer adam, sgd")
    assert lines[1].startswith("grid: 8 groups")
    settings = {t.split("=")[0] for t in lines[2].split(": ", 1)[1].split()}
    assert "steps" in settings and not settings & {"hidden", "batch", "optimizer"}  # axes, not settings


def test_scale_smoke_on_a_spec_file_caps_its_budget_and_keeps_its_grid():
    quick = load_file("examples/my_sweep.toml").spec
    smoke = load_file("examples/my_sweep.toml", "smoke").spec
    assert quick.steps == 300 and quick.batch == 32 and quick.eval_batch == 512
    assert (smoke.steps, smoke.seeds, smoke.lr_search_trials, smoke.batch, smoke.eval_batch,
            smoke.checkpoint_every) == (30, 2, 2, 16, 64, 10) == tuple(SMOKE_CAPS.values())
    assert smoke.grid() == quick.grid() and smoke.probes == quick.probes and smoke.lr_ranges == quick.lr_ranges
    assert smoke.scale == "smoke" and load_file("examples/my_sweep.yaml", "smoke").spec == smoke
    assert load_file("examples/my_sweep.toml", "smoke", ["steps=50"]).spec.steps == 50  # --set still wins
    es, eq = estimate(smoke, 2, read_rates()), estimate(quick, 2, read_rates())
    assert es.core_s - es.probe_s < (eq.core_s - eq.probe_s) / 5 and es.probe_s < eq.probe_s  # training, probes


@pytest.mark.slow
def test_a_sweep_over_hidden_and_batch_writes_each_combination(ray_session, tmp_path):
    results = tmp_path / "results"
    r = runner.invoke(app, ["launch", "curse-of-memory", "--scale", "smoke", "--results", str(results),
                            "--set", "cells=rnn", "--set", "nus=0.9", "--set", "seeds=1", "--set",
                            "lr_search=none", "--set", "steps=5", "--set", "hidden=8,16", "--set", "batch=4,8"])
    assert r.exit_code == 0, r.output
    sid = r.output.split()[1]
    rows = query_arrow(str(results), f"SELECT trial_id, hidden, batch, json_extract(config_json, '$.batch')::INT AS b,"
                                     f" status FROM trials WHERE sweep_id = '{sid}' ORDER BY ALL").to_pylist()
    assert [(x["trial_id"], x["hidden"], x["batch"], x["b"], x["status"]) for x in rows] == [
        (f"rnn-d1-nu0.9-hidden{h}-batch{b}-s0", h, b, b, "completed") for h in (16, 8) for b in (4, 8)]
    # the figures: once per combination of the extra axes, each from that combination's trials only
    from analysis.report import report

    done = report(str(results), sid)
    pngs = sorted(pathlib.Path(p).relative_to(results / sid / "report").as_posix() for p in done.paths
                  if p.endswith(".png"))
    assert pngs == [f"hidden{h}-batch{b}/{f}" for h in (16, 8) for b in (4, 8)
                    for f in ("fig3a.png", "fig3b.png", "lr_landscape.png")]
    for h in (16, 8):
        for b in (4, 8):
            table = (results / sid / "report" / f"hidden{h}-batch{b}" / "curse-of-memory.md").read_text()
            loss = next(x["final_loss"] for x in query_arrow(str(results), f"SELECT final_loss FROM trials WHERE "
                        f"sweep_id = '{sid}' AND hidden = {h} AND batch = {b}").to_pylist())
            assert f"{loss:.4g}" in table  # this combination's own seed, not a mean over all four
