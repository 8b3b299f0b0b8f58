"""Probes are typed records (trainers/probe_spec.py) from the spec to the trial: the --set text parses once, the
record round-trips through JSON (sweep.json, trial configs, checkpoints), configs stored with the old
``name:key=value`` text still read as the same spec and the same trial, and bad input fails as before."""
from __future__ import annotations

import dataclasses
import json

import pytest

from orchestrator import probe_cost
from orchestrator.spec import SpecError, SweepSpec, apply_overrides
from orchestrator.sweeps import resolve
from orchestrator.plan import plan
from orchestrator.trial_configs import planned_config
from trainers.config import TrialConfig
from trainers.probe_spec import ProbeSpec
from trainers.probes import build_probe
from trainers.probes.hessian import HessianOptions
from trainers.relocate import same_config


@pytest.mark.parametrize("text, record", [
    ("signal", ProbeSpec("signal")),
    ("hessian:every=100:k_top=3", ProbeSpec("hessian", (("every", "100"), ("k_top", "3")))),
    ("attractors:inputs=task:orbit=task", ProbeSpec("attractors", (("inputs", "task"), ("orbit", "task")))),
    ("hessian:every", ProbeSpec("hessian", (("every", None),))),  # kept, for the probe's own check to name
])
def test_text_record_json_record(text, record):
    assert ProbeSpec.parse(text) == record and record.text() == text
    back = json.loads(json.dumps(dataclasses.asdict(record)))
    assert back["name"] == record.name and ProbeSpec.from_native(back) == record
    assert ProbeSpec.from_native(text) == record and ProbeSpec.from_native(record) is record
    assert ProbeSpec.from_native({"name": record.name, "options": dict(record.options)}) == record


@pytest.mark.parametrize("bad", [":every=3", "", 3, ["hessian"], {"name": "hessian", "every": 3},
                                 {"name": "hessian", "options": [["every"]]}])
def test_not_a_probe(bad):
    with pytest.raises((TypeError, ValueError)):
        ProbeSpec.from_native(bad)


def test_set_parses_to_records_that_reach_the_trial():
    spec = resolve("curse-of-memory", "smoke", ["probes=hessian:every=5:k_top=2,signal", "lr_search=none"])
    assert spec.probes == (ProbeSpec("hessian", (("every", "5"), ("k_top", "2"))), ProbeSpec("signal"))
    seed = next(t for t in plan(spec) if t.stage == "seed")
    cfg = TrialConfig.from_dict(planned_config(spec, "sid", "/r", seed, lr=0.01))
    assert cfg.probes == spec.probes
    probe = build_probe(cfg.probes[0])
    assert isinstance(probe.options, HessianOptions) and (probe.options.every, probe.options.k_top) == (5, 2)
    assert probe_cost.calls(cfg.probes[0], 10) == 3  # steps 0, 5, 10


def test_sweep_json_round_trips_and_old_text_reads():
    spec = apply_overrides(resolve("attractors", "smoke"), ["probes=hessian:every=100:k_top=3,signal"])
    stored = json.loads(json.dumps(spec.to_dict()))
    assert stored["probes"][0] == {"name": "hessian", "options": [["every", "100"], ["k_top", "3"]]}
    assert SweepSpec.from_dict(stored) == spec
    old = dict(stored, probes=["hessian:every=100:k_top=3", "signal"])  # a sweep.json from before the records
    assert SweepSpec.from_dict(old) == spec


def test_an_old_checkpoint_config_is_the_same_trial():
    cfg = TrialConfig(sweep="s", sweep_id="i", trial_id="t", results="/r", probes=(ProbeSpec.parse("hessian:every=5"),
                                                                                     ProbeSpec("signal")))
    new = json.loads(cfg.to_json())
    assert new["probes"] == [{"name": "hessian", "options": [["every", "5"]]}, {"name": "signal", "options": []}]
    old = dict(new, probes=["hessian:every=5", "signal"], results="/elsewhere")  # config_json before the records
    assert TrialConfig.from_dict(old) == dataclasses.replace(cfg, results="/elsewhere")
    assert same_config(json.dumps(old), cfg)
    assert not same_config(json.dumps(dict(old, probes=["hessian:every=6", "signal"])), cfg)


@pytest.mark.parametrize("value, message", [
    ("hessian:bogus=1", "invalid probes entry 'hessian:bogus=1': unknown option 'bogus' of probe 'hessian'; valid: "
                        "every, at_init, at_end, k_top"),
    ("hessian:every", "invalid probes entry 'hessian:every': unknown option 'every' of probe 'hessian'"),
    ("hessian:k_top=x", "invalid probes entry 'hessian:k_top=x': invalid hessian:k_top='x'; expected int"),
    ("ghost", "invalid probes entry 'ghost': unknown probe 'ghost'"),
    (":every=3", "invalid --set probes=':every=3': expected name[:key=value...], got ':every=3'"),
])
def test_bad_probes_name_the_value_and_the_valid_ones(value, message):
    with pytest.raises(SpecError) as e:
        resolve("curse-of-memory", "smoke", [f"probes={value}"]).validate()
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
