"""Spec files (TOML, YAML), `sweep show`, and the registry listings: real files on tmp_path, a real Ray run of the
README's example, the CLI in its own process for the errors a user sees."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import sweep_cli
from orchestrator import cost
from orchestrator.cli import app
from orchestrator.show import counts, describe
from orchestrator.spec import Resources, SpecError, SweepSpec
from orchestrator.spec_records import LrRange
from orchestrator.specfile import SpecFileError, load_file, load_target
from orchestrator.sweeps import resolve
from sweepcheck import cli_rows as q

ROOT = Path(__file__).resolve().parents[1]
TOML, YAML = ROOT / "examples" / "my_sweep.toml", ROOT / "examples" / "my_sweep.yaml"
runner = CliRunner()


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_toml_and_yaml_give_the_same_spec():
    t, y = load_file(str(TOML)), load_file(str(YAML))
    assert t.spec == y.spec and t.resources == y.resources and t.base == y.base == "curse-of-memory"
    assert (t.source["format"], y.source["format"]) == ("toml", "yaml")
    assert t.source["text"] == TOML.read_text()


def test_file_fields_land_on_the_base_spec():
    t = load_file(str(TOML))
    base = resolve("curse-of-memory", "quick")
    expected = dataclasses.replace(
        base, name="my-memory-sweep", cells=("lru", "rnn"), depths=(1, 4), nus=(0.9, 0.99, 0.999), seeds=2,
        steps=300, batch=32, analyses=(), lr_search="tpe", lr_search_trials=2,
        lr_ranges=(LrRange("rnn", 1e-4, 0.01), LrRange("lru", 1e-3, 0.1)),
        probes=("hessian:every=100:k_top=3",))
    assert t.spec == expected
    assert t.resources == Resources(cpus_per_trial=1.0, gpus_per_trial=0.0, max_concurrent=2)


def test_set_and_scale_override_the_file():
    t = load_file(str(TOML), "smoke", ["steps=7", "cells=cdiag", "probes="])
    assert (t.spec.steps, t.spec.cells, t.spec.probes, t.spec.scale) == (7, ("cdiag",), (), "smoke")
    assert t.spec.eval_batch == resolve("curse-of-memory", "smoke").eval_batch  # the base's smoke preset
    assert t.spec.depths == (1, 4)  # what --set leaves alone still comes from the file
    # and a named sweep still resolves as before through the same entry point
    assert load_target("curse-of-memory", "smoke", ["steps=3"]).spec == resolve("curse-of-memory", "smoke",
                                                                                 ["steps=3"])


def test_a_fixed_lr_turns_the_search_off(tmp_path):
    path = write(tmp_path, "fixed.toml", 'base = "curse-of-memory"\n[train]\nlr = 0.003\n')
    spec = load_file(path).spec
    assert (spec.lr, spec.lr_search_trials) == (0.003, 0)
    assert counts(spec).lr_search == 0


def test_a_spec_from_scratch(tmp_path):
    path = write(tmp_path, "scratch.yaml", """
grid:
  tasks: temporal_order
  cells: [vrnn]
  depths: [1]
  nus: [0.5]
  seq_lens: [20, 50]
train: {steps: 10, lr: 1e-2, optimizer: sgd, solve_every: 5}
probes: {}
""")
    t = load_file(path)
    assert t.base is None and t.spec.name == "scratch" and t.spec.scale == "quick"
    assert (t.spec.tasks, t.spec.seq_lens, t.spec.lr, t.spec.optimizer) == (("temporal_order",), (20, 50), 0.01,
                                                                           "sgd")
    assert t.spec.batch == SweepSpec.batch and t.spec.probes == ()  # defaults where the file says nothing


TOML_BASE = 'base = "curse-of-memory"\n'
# (file name, text, the whole expected message after the file name, or a regex of it)
ERRORS = [
    ("unknown_key.toml", TOML_BASE + "[train]\nseeds = 2\nstpes = 10\n",
     r":4: train\.stpes: unknown key 'stpes' in \[train\]; did you mean steps\? valid: seeds, bundle_seeds, steps"),
    ("wrong_section.toml", TOML_BASE + "[grid]\nseeds = 3\n", r":3: grid\.seeds: unknown key here; seeds belongs in "
                                                             r"\[train\]$"),
    ("bad_type.yaml", "base: curse-of-memory\ntrain:\n  steps: '2000'\n",
     r":3: train\.steps: '2000' is not valid; expected an integer$"),
    ("bad_value.toml", TOML_BASE + "[grid]\ncells = ['rnn']\nnus = [0.9,\n  1.5]\n",
     r":4: grid\.nus: 1\.5 is not valid; valid: values in \[0, 1\)$"),
    ("bad_value.yaml", "base: curse-of-memory\ngrid:\n  nus:\n    - 0.9\n    - 1.5\n",
     r":5: grid\.nus: 1\.5 is not valid; valid: values in \[0, 1\)$"),  # YAML: the item's own line
    ("unknown_cell.toml", TOML_BASE + "\n[grid]\ncells = ['lru', 'xlstm']\n",
     r":4: grid\.cells: 'xlstm' is not valid; valid: blockdiag, cdiag, cdiag_exp, cdiag_norm, gru, lru, lstm, "
     r"lstmf, ornn, rnn, slstm, star, vrnn$"),
    ("unknown_probe.toml", TOML_BASE + "[probes]\nhesian = true\n",
     r":3: probes\.hesian: unknown probe 'hesian'; valid: attractors, hessian, lattice, signal$"),
    ("probe_option.toml", TOML_BASE + "[probes]\nhessian = { every = 10, topk = 3 }\n",
     r":3: probes\.hessian: unknown option 'topk' of probe 'hessian'; valid: every, "),
    ("missing.toml", "[grid]\ncells = ['rnn']\n[train]\nsteps = 3\n",
     r": missing grid\.tasks, grid\.depths, grid\.nus, grid\.seq_lens: a spec without base = NAME must give them "
     r"\(or start from a named sweep: base = attractors \| curse-of-memory"),
    ("syntax.toml", TOML_BASE + "[grid\ncells = ['rnn']\n", r":2: TOML syntax error: "),
    ("syntax.yaml", "grid:\n  cells: [rnn\n  nus: 3\n", r":3: YAML syntax error: expected ',' or ']'"),
    ("bad_base.toml", 'base = "curse-of-mem"\n',
     r":1: base: 'curse-of-mem' is not valid; valid: attractors, curse-of-memory, deep-rnn, exploding-gradients, "
     r"signal-propagation$"),
    ("resources.toml", TOML_BASE + "[resources]\ncpus_per_trial = 0\n",
     r":3: resources\.cpus_per_trial: 0\.0 is not valid; valid: a finite number > 0$"),
    ("lr_both.toml", TOML_BASE + "[train]\nlr = 1e-3\n[lr_search]\ntrials = 3\n",
     r":3: train\.lr: 0\.001 is a fixed rate, but \[lr_search\] asks for trials = 3 \(line 5\); keep one$"),
    ("lr_range.toml", TOML_BASE + "[lr_search]\nranges = { rnn = [1e-2, 1e-4] }\n",
     r":3: lr_search\.ranges\.rnn: \[0\.01, 0\.0001\] is not valid; valid: entries cell:low:high"),
    ("suffix.json", "{}", r": not a spec file: '\.json'; valid: \.toml, \.yaml, \.yml$"),
]


@pytest.mark.parametrize("name, text, expected", ERRORS, ids=[e[0] for e in ERRORS])
def test_each_mistake_is_one_line_with_file_line_key_value_and_valid_options(tmp_path, name, text, expected):
    path = write(tmp_path, name, text)
    with pytest.raises(SpecFileError) as e:
        load_file(path)
    message = str(e.value)
    assert "\n" not in message and message.startswith(path)
    assert re.match(expected, message[len(path):]), message


def test_a_missing_file_and_a_set_error(tmp_path):
    with pytest.raises(SpecFileError, match=r"nope\.toml: no such file$"):
        load_file(str(tmp_path / "nope.toml"))
    with pytest.raises(SpecError, match=r"^invalid nus=1\.5; valid: values in \[0, 1\)$"):  # --set's own message
        load_file(str(TOML), None, ["nus=0.9,1.5"])


@pytest.mark.slow
@pytest.mark.parametrize("name, text, needle", [
    ("cell.toml", TOML_BASE + "[grid]\ncells = ['xlstm']\n", ":3: grid.cells: 'xlstm' is not valid; valid: blockdiag"),
    ("syntax.yaml", "grid:\n  cells: [rnn\n  nus: 3\n", ":3: YAML syntax error:"),
    ("absent.toml", None, ": no such file"),
], ids=["unknown-cell", "yaml-syntax", "missing-file"])
def test_cli_errors_exit_2_with_one_line_and_write_nothing(tmp_path, name, text, needle):
    path = write(tmp_path, name, text) if text is not None else str(tmp_path / name)
    results = tmp_path / "results"
    r = sweep_cli("launch", path, "--results", str(results), cwd=tmp_path, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {path}{r.stderr.strip()[7 + len(path):]}"]  # one line
    assert needle in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert not results.exists()


def test_show_counts_and_cost_match_the_rates_file():
    full = resolve("curse-of-memory", "quick")
    spec = dataclasses.replace(full, cells=tuple(c for c in full.cells if c != "cdiag_exp"))  # measured cells
    rates = cost.read_rates()
    # every (cell) shape of this spec is in the rates file: the cost is steps x seconds + start_s, trial by trial
    table = {(r["cell"], r["batch"]): r for r in rates["rates"]
             if r["task"] == "teacher_student" and r["per"] == "step" and r["device"] == "cpu" and r["depth"] == 1
             and r["seq_len"] == 300 and r["hidden"] == 64 and not r["layer_norm"]}
    per_trial = {c: table[(c, 64)]["seconds"] * 400 + table[(c, 64)].get("start_s", 0.0) for c in spec.cells}
    n_nus = len(spec.nus)  # 4 nus x (2 or 3 rates x 3 seeds) per cell; the grid protocol searches nothing
    n_rates = {"rnn": 2, "blockdiag": 2, "cdiag": 3, "cdiag_norm": 3, "lru": 3}
    seed = [per_trial[c] for c in spec.cells for _ in range(n_nus * n_rates[c] * 3)]
    e = cost.estimate(spec, 2, rates, {"measured": [], "ratios": []})  # probes priced apart: test_probe_cost.py
    assert e.core_s == pytest.approx(sum(seed), rel=1e-12) and e.core_s > 0
    # one Tuner: max(all trial time / 2 workers, the longest trial)
    assert e.wall_s == pytest.approx(max(sum(seed) / 2, max(seed)), rel=1e-12)
    assert (e.measured, e.scaled, e.other_cell) == (20, 0, ())
    text = describe(load_target("curse-of-memory"), Resources(), rates)
    e = cost.estimate(full, 2, rates)
    assert ("grid: 24 groups = tasks teacher_student x cells rnn, blockdiag, cdiag, cdiag_norm, cdiag_exp, lru x "
            "depths 1") in text
    assert ("trials: 0 lr_search (lr_search=grid: 2-3 rates per group x seeds, the lowest mean chosen) + 192 seed "
            "(24 groups x rates x 3 seeds, in 24 Ray trials as bundles) + 3 analysis = 195 trials rows, "
            "27 Ray trials") in text
    assert f"estimated cost: {e.core_s / 3600:.3g} core-hours of training" in text and "an estimate from" in text


def test_unmeasured_shapes_scale_linearly_in_depth_T_batch_hidden_squared():
    rates = {"measured": [], "rates": [
        dict(task="teacher_student", cell="rnn", depth=1, seq_len=100, layer_norm=False, hidden=8, batch=10,
             per="step", device="cpu", seconds=0.01, start_s=1.0),
        dict(task="teacher_student", cell="rnn", depth=8, seq_len=1000, layer_norm=False, hidden=64, batch=100,
             per="step", device="cpu", seconds=9.0),
        dict(task="sine", cell="lstm", depth=1, seq_len=50, layer_norm=False, hidden=200, batch=100,
             per="step", device="cpu", seconds=0.5)]}
    spec = SweepSpec(name="t", scale="quick", tasks=("teacher_student",), cells=("rnn", "lru"), depths=(2,),
                     nus=(0.9,), seq_lens=(200,), hidden=8, batch=10, steps=100, seeds=3, lr_search_trials=0)
    # work = depth x T x batch x hidden^2: the spec's 2*200*10*64 = 256,000; the first rnn entry's 1*100*10*64 =
    # 64,000 (4x less, the nearest); the second's 8*1000*100*4096 = 3.3e9. So rnn: 0.01 s x 4 = 0.04 s per step.
    # lru was never measured: the nearest shape of any cell, same task first -> the same first rnn entry.
    e = cost.estimate(spec, 3, rates)
    per_trial = 0.01 * 4 * 100 + 1.0  # 5 s: 100 steps at 0.04 s, plus the start
    assert e.core_s == pytest.approx(2 * 3 * per_trial) and e.wall_s == pytest.approx(2 * per_trial)
    assert (e.measured, e.scaled, e.other_cell) == (0, 1, ("lru",))


def test_show_through_the_cli_prints_the_file_grid():
    r = runner.invoke(app, ["show", str(TOML), "--set", "seeds=4", "--max-concurrent", "1"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"my-memory-sweep: from {TOML}, base curse-of-memory, scale quick\n")
    # 2 cells x 2 depths x 3 nus = 12 groups; 2 Optuna trials each, each 4 seeds in one bundle
    assert "trials: 0 lr_search (lr_search=tpe: 2 Optuna trials per group x seeds, the lowest mean chosen; " \
           "pruner halving, which the estimate below leaves out) + 96 " \
           "seed (12 groups x rates x 4 seeds, in 24 Ray trials as bundles) + 0 analysis = 96 trials rows, 24 Ray " \
           "trials" in r.output
    assert "(1 trial at once, 1 CPU each)" in r.output


@pytest.mark.parametrize("command, registry", [
    ("cells", "trainers.cells:CELLS"), ("tasks", "trainers.tasks:TASKS"), ("probes", "trainers.probes:PROBES"),
    ("analyses", "trainers.analyses:ANALYSES")])
def test_listings_name_every_registry_entry_with_a_one_liner(command, registry):
    import importlib

    module, attr = registry.split(":")
    entries = getattr(importlib.import_module(module), attr)
    r = runner.invoke(app, [command])
    assert r.exit_code == 0
    lines = r.output.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == sorted(entries)
    for ln in lines:
        name, text = ln.split(None, 1)
        assert 20 <= len(text) <= 100 and text.endswith(".")
        assert not text.startswith(("PyTorch-default", "The analysis"))


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Your own sweep"):]
    return re.search(r"```toml\n(.*?)```", section, re.S).group(1)


def test_readme_example_is_the_example_file():
    assert readme_example() == TOML.read_text()


@pytest.mark.slow
def test_readme_example_launches_at_smoke_scale(ray_session, tmp_path):
    results = tmp_path / "results"
    # the README's file, shrunk on the command line to one group of two seeds and a few steps
    r = runner.invoke(app, ["launch", str(TOML), "--scale", "smoke", "--results", str(results), "--set", "cells=lru",
                            "--set", "depths=1", "--set", "nus=0.9", "--set", "steps=4", "--set", "eval_batch=16"])
    assert r.exit_code == 0, r.output
    sweep_id = r.output.split()[1]
    assert sweep_id.startswith("my-memory-sweep-")
    meta = json.loads((results / sweep_id / "sweep.json").read_text())
    assert meta["status"] == "completed" and meta["name"] == "my-memory-sweep" and meta["base"] == "curse-of-memory"
    assert meta["spec_file"]["text"] == TOML.read_text() and meta["resources"]["max_concurrent"] == 2
    assert SweepSpec.from_dict(meta["spec"]) == load_file(str(TOML), "smoke", [
        "cells=lru", "depths=1", "nus=0.9", "steps=4", "eval_batch=16"]).spec
    rows = q(results, f"SELECT stage, count(*) n, min(steps_done) s FROM trials WHERE sweep_id='{sweep_id}' "
                      "GROUP BY stage ORDER BY stage")
    # tpe: 2 Optuna trials, each both seeds at its rate; nothing searched apart or re-run
    assert [(r["stage"], int(r["n"]), int(r["s"])) for r in rows] == [("seed", 4, 4)]
    (top,) = q(results, f"SELECT count(DISTINCT idx) k FROM hessian WHERE sweep_id='{sweep_id}' AND stat='top'")
    assert int(top["k"]) == 3  # the file's probe option k_top = 3 reached the probe
    r = runner.invoke(app, ["report", "my-memory-sweep", "--results", str(results)])
    assert r.exit_code == 0, r.output  # the base's figures draw a file sweep's results
    assert any(p.endswith("index.md") for p in r.output.split())


def test_write_rates_merges_by_shape(tmp_path):
    path = tmp_path / "rates.json"
    a = dict(task="sine", cell="lstm", depth=1, seq_len=50, layer_norm=False, hidden=8, batch=4, per="step",
             device="cpu", seconds=0.5)
    b = dict(a, cell="ornn", seconds=0.25)
    cost.write_rates([a, b], {"by": "first"}, path)
    cost.write_rates([dict(a, seconds=0.125, start_s=2.0)], {"by": "second", "load": 1.0}, path)
    data = cost.read_rates(path)
    assert [m["by"] for m in data["measured"]] == ["first", "second"]
    assert sorted((r["cell"], r["seconds"], r.get("start_s")) for r in data["rates"]) == [
        ("lstm", 0.125, 2.0), ("ornn", 0.25, None)]  # the same shape replaced, the other kept
    assert cost.rate_for(data["rates"], {k: a[k] for k in cost.SHAPE}, "step") == (0.125, 2.0, "measured")
