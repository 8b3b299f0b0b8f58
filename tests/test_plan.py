"""The plan of a sweep (orchestrator/plan.py): one list of planned trials that the searcher, `sweep show`, the
cost model, `sweep status` and ``SweepSpec.stage_trials`` all read; trial configs from the spec by shared
field names (orchestrator/trial_configs.py)."""
from __future__ import annotations

import dataclasses
import itertools
import json

import pytest

from orchestrator.cost import trials_of
from orchestrator.plan import plan, ray_trials, stage_counts
from orchestrator.show import counts
from orchestrator.spec import SweepSpec
from orchestrator.status import status_plan
from orchestrator.sweeps import resolve
from orchestrator.trial_configs import SHARED, planned_config, ray_trial_config
from trainers.config import TrialConfig
from trainers.probe_spec import ProbeSpec
from trainers.relocate import same_config


def test_grid_protocol_plans_every_rate_times_every_seed_in_one_bundle_per_group():
    spec = resolve("curse-of-memory", "smoke", ["cells=rnn,lstm", "nus=0.9", "seeds=2", "analyses=hessian_opt:lru",
                                                "lr_grids=rnn:1e-3/1e-2,lstm:3e-3/3e-2"])
    trials = plan(spec)
    # written out by hand: rnn bundles (batchable), lstm does not; every rate x every seed; the analysis last
    expected = [("seed", f"{c}-d1-nu0.9-lr{lr:g}-s{s}", s, lr, "rnn-d1-nu0.9-seeds" if c == "rnn" else None)
                for c, rates in (("rnn", (1e-3, 1e-2)), ("lstm", (3e-3, 3e-2))) for lr in rates for s in (0, 1)]
    expected.append(("analysis", "hessian_opt-lru", 0, spec.lr, None))
    assert [(t.stage, t.trial_id, t.seed, t.lr, t.bundle) for t in trials] == expected
    assert trials[-1].analysis == "hessian_opt" and trials[-1].group["cell"] == "lru" and trials[-1].train_steps == 0
    # the Ray trials: one bundle of 4 for rnn, 4 solo lstm trials, the analysis
    assert [len(r) for r in ray_trials(trials)] == [4, 1, 1, 1, 1, 1]
    assert stage_counts(trials) == spec.stage_trials() == {"lr_search": 0, "seed": 8, "analysis": 1}
    c = counts(spec)
    assert (c.groups, c.seed, c.seed_ray, c.analysis, c.rows, c.ray) == (2, 8, 5, 1, 9, 6)
    assert len(trials_of(spec)) == 8  # the cost model prices the training trials of the same plan
    assert [(p.stage, p.trials) for p in status_plan(spec)] == [("seed", 4), ("seed", 4), ("analysis", 1)]
    # no bundles asked: the same rows, none bundled; bundle_seeds=false: every seed its own Ray trial
    assert [t.trial_id for t in plan(spec, bundles=False)] == [t.trial_id for t in trials]
    solo = plan(dataclasses.replace(spec, bundle_seeds=False))
    assert all(t.bundle is None for t in solo) and counts(dataclasses.replace(spec, bundle_seeds=False)).seed_ray == 8


def test_tpe_plans_every_seed_of_each_optuna_trial_as_one_bundle_at_a_rate_the_study_picks():
    spec = resolve("curse-of-memory", "smoke", ["lr_search=tpe", "lr_search_trials=3", "cells=rnn", "nus=0.9,0.99"])
    trials = plan(spec)
    g = "rnn-d1-nu0.9"
    assert [(t.stage, t.trial_id, t.seed, t.tpe, t.bundle) for t in trials[:4]] == [
        ("seed", f"{g}-tpe0-s0", 0, 0, f"{g}-tpe0-seeds"), ("seed", f"{g}-tpe0-s1", 1, 0, f"{g}-tpe0-seeds"),
        ("seed", f"{g}-tpe1-s0", 0, 1, f"{g}-tpe1-seeds"), ("seed", f"{g}-tpe1-s1", 1, 1, f"{g}-tpe1-seeds")]
    assert all(t.lr is None for t in trials)  # every rate is the study's to pick
    assert spec.stage_trials() == {"lr_search": 0, "seed": 2 * 3 * spec.seeds, "analysis": 0}  # nothing re-run
    assert len(ray_trials(trials)) == 2 * 3  # one bundle per Optuna trial
    bundle = ray_trial_config(spec, "sid", "/r", ray_trials(trials)[1], lr=0.02)  # the first group's 2nd trial
    assert bundle["trial_id"] == f"{g}-tpe1-seeds"
    assert [(m["trial_id"], m["stage"], m["lr"], m["group_key"]) for m in bundle["members"]] == [
        (f"{g}-tpe1-s{s}", "seed", 0.02, g) for s in range(spec.seeds)]
    solo = plan(dataclasses.replace(spec, bundle_seeds=False))  # no bundle: each seed a Ray trial of its own
    assert all(t.bundle is None for t in solo) and len(ray_trials(solo)) == len(solo) == 2 * 3 * spec.seeds


def test_trial_configs_take_every_shared_field_from_the_spec_by_name():
    assert {"hidden", "steps", "optimizer", "probes", "checkpoint_every", "grad_norm_every", "device"} <= set(SHARED)
    spec = resolve("curse-of-memory", "smoke", ["cells=rnn", "nus=0.9", "lr_search=none"])
    odd = {"hidden": 7, "steps": 13, "batch": 5, "eval_batch": 9, "d_model": 3, "teacher_hidden": 4, "lr": 0.123,
           "lr_min": 1e-9, "solve_every": 11, "grad_norm_every": 3, "checkpoint_every": 17, "probe_batch": 6,
           "optimizer": "sgd", "schedule": "constant", "block": "glu", "device": "cpu", "data_dir": "/d",
           "probes": ("hessian:every=5",), "init": "orthogonal"}
    assert set(odd) == set(SHARED), "a new shared field: give it a value here"
    spec = dataclasses.replace(spec, **odd)
    cfg = planned_config(spec, "sid", "/r", plan(spec)[0])
    read = TrialConfig.from_dict(cfg)  # the probes travel as records (JSON objects), the rest as they are
    assert {k: getattr(read, k) for k in SHARED} == {**odd, "probes": (ProbeSpec("hessian", (("every", "5"),)),)}


def test_shared_fields_have_one_default():
    """The spec's default of a field it shares with TrialConfig is TrialConfig's (checkpoint_every once read 500
    in one and 0 in the other)."""
    trial = {f.name: f.default for f in dataclasses.fields(TrialConfig)}
    spec = {f.name: f.default for f in dataclasses.fields(SweepSpec)}
    assert {n: (spec[n], trial[n]) for n in SHARED if spec[n] != trial[n]} == {}
    assert TrialConfig.checkpoint_every == 500


def test_every_named_sweep_plans_as_many_rows_as_its_groups_say():
    """An independent count from the spec's own numbers, for every named sweep at every scale."""
    from orchestrator.sweeps import SWEEPS

    for name, scale in itertools.product(sorted(SWEEPS), ("smoke", "quick", "paper")):
        spec = resolve(name, scale)
        groups = spec.grid()
        rates = spec.lr_search_trials if spec.lr_search == "tpe" else 0  # tpe: one rate per Optuna trial
        seed = sum(rates or len(spec.rates(g)) for g in groups) * spec.seeds
        trials = plan(spec, bundles=False)
        assert len(trials) == seed + len(spec.analyses), (name, scale)
        assert len({t.trial_id for t in trials}) == len(trials), (name, scale)  # ids unique within the sweep


def test_lr_ranges_and_analyses_are_typed_records_from_set_file_and_sweep_json(tmp_path):
    """Parsed once at the spec's boundary (--set text, a spec file's table, sweep.json: today's tables and the
    strings older sweep.json files hold), carried typed to the plan and the trial, shown in the --set syntax."""
    import json

    from orchestrator.show import changed
    from orchestrator.spec_records import Analysis, LrRange
    from orchestrator.specfile import load_file

    spec = resolve("curse-of-memory", "smoke", ["lr_ranges=rnn:1e-4:1e-2", "analyses=hessian_opt:lru,hessian_opt",
                                                "lr_search=tpe", "lr_search_trials=1"])
    assert spec.lr_ranges == (LrRange("rnn", 1e-4, 1e-2),) and spec.lr_range_for("rnn") == (1e-4, 1e-2)
    assert spec.analyses == (Analysis("hessian_opt", "lru"), Analysis("hessian_opt"))
    assert "lr_ranges=rnn:0.0001:0.01" in changed(spec) and "analyses=hessian_opt:lru,hessian_opt" in changed(spec)
    saved = json.loads(json.dumps(spec.to_dict()))
    assert saved["lr_ranges"] == [{"cell": "rnn", "low": 1e-4, "high": 1e-2}]
    assert SweepSpec.from_dict(saved) == spec
    old = dict(saved, lr_ranges=["rnn:0.0001:0.01"], analyses=["hessian_opt:lru", "hessian_opt"])  # before records
    assert SweepSpec.from_dict(old) == spec
    analyses = [t for t in plan(spec) if t.stage == "analysis"]
    assert [(t.trial_id, t.analysis, t.group["cell"]) for t in analyses] == [
        ("hessian_opt-lru", "hessian_opt", "lru"), ("hessian_opt", "hessian_opt", "hessian_opt")]
    cfg = planned_config(spec, "sid", str(tmp_path), analyses[0])
    assert (cfg["analysis"], cfg["stage"], cfg["cell"], cfg["probes"], cfg["group_key"]) == (
        "hessian_opt", "analysis", "lru", [], "")
    f = tmp_path / "s.toml"
    f.write_text('base = "curse-of-memory"\n[lr_search]\ntrials = 1\nranges = {rnn = [1e-4, 1e-2]}\n'
                 '[train]\nanalyses = ["hessian_opt:lru"]\n')
    t = load_file(str(f), "smoke")
    assert t.spec.lr_ranges == (LrRange("rnn", 1e-4, 1e-2),) and t.spec.analyses == (Analysis("hessian_opt", "lru"),)


def test_an_analysis_trial_and_only_it_names_its_analysis_and_old_configs_still_read(tmp_path):
    """``stage`` says whether a trial trains; ``analysis`` which analysis an analysis trial computes. A config
    stored before (``kind``: train or the analysis) reads as the same trial, checkpoints included."""
    base = dict(sweep="s", sweep_id="sid", trial_id="hessian_opt-lru", results=str(tmp_path), cell="lru")
    for bad in (dict(stage="analysis"), dict(stage="seed", analysis="hessian_opt")):
        with pytest.raises(ValueError, match="names its analysis"):
            TrialConfig(**base, **bad)
    now = TrialConfig(**base, stage="analysis", analysis="hessian_opt")
    old = {k: v for k, v in json.loads(now.to_json()).items() if k != "analysis"}
    assert TrialConfig.from_dict(dict(old, kind="hessian_opt")) == now
    assert TrialConfig.from_dict(dict(old, stage="seed", kind="train")) == TrialConfig(**base)
    assert same_config(json.dumps(dict(old, kind="hessian_opt")), now)
    assert not same_config(json.dumps(dict(old, kind="hessian_opt", steps=7)), now)
