"""Per-cell inits and per-task step decays are typed records (orchestrator/spec_records.py): the --set text
parses once, round-trips through sweep.json, a sweep.json with the old text reads as the same spec, and the
trial gets the values (init, lr_gamma, lr_milestones) the records hold."""
from __future__ import annotations

import dataclasses
import json

import pytest

from orchestrator.plan import plan
from orchestrator.spec import SpecError, SweepSpec
from orchestrator.spec_records import CellInit, LrDecay
from orchestrator.sweeps import resolve
from orchestrator.trial_configs import planned_config


@pytest.mark.parametrize("record_type, text, record", [
    (CellInit, "vrnn:orthogonal", CellInit("vrnn", "orthogonal")),
    (CellInit, "star", CellInit("star", "")),  # parses; the validation names the valid entries
    (LrDecay, "sine:0.1:5000:10000", LrDecay("sine", 0.1, (5000, 10000))),
    (LrDecay, "symbols:2:500", LrDecay("symbols", 2.0, (500,))),
    (LrDecay, "sine:0.25", LrDecay("sine", 0.25, ())),
])
def test_text_record_json_record(record_type, text, record):
    assert record_type.parse(text) == record and record.text() == text
    back = json.loads(json.dumps(dataclasses.asdict(record)))
    assert record_type.from_native(back) == record and record_type.from_native(text) == record


@pytest.mark.parametrize("record_type, bad", [(CellInit, ":orthogonal"), (CellInit, 3), (CellInit, {"cell": "rnn"}),
                                              (LrDecay, "sine"), (LrDecay, "sine:x:5"), (LrDecay, "sine:0.1:5.5"),
                                              (LrDecay, {"task": "sine", "gamma": 0.1, "milestones": ["5"]})])
def test_not_a_record(record_type, bad):
    with pytest.raises((TypeError, ValueError)):
        record_type.from_native(bad)


def test_records_reach_the_trial_and_sweep_json_reads_old_text():
    spec = resolve("attractors", "paper", ["lr_decays=sine:0.5:100:200,symbols:0.25:300", "tasks=sine",
                                           "cells=lstm", "cell_inits=lstm:chrono", "init=default"])
    assert spec.lr_decays == (LrDecay("sine", 0.5, (100, 200)), LrDecay("symbols", 0.25, (300,)))
    assert spec.cell_inits == (CellInit("lstm", "chrono"),)
    cfg = planned_config(spec, "sid", "/r", next(t for t in plan(spec) if t.stage == "seed"), lr=0.01)
    assert (cfg["init"], cfg["lr_gamma"], cfg["lr_milestones"]) == ("chrono", 0.5, [100, 200])
    stored = json.loads(json.dumps(spec.to_dict()))
    assert stored["lr_decays"][0] == {"task": "sine", "gamma": 0.5, "milestones": [100, 200]}
    assert stored["cell_inits"] == [{"cell": "lstm", "init": "chrono"}]
    assert SweepSpec.from_dict(stored) == spec
    old = dict(stored, lr_decays=["sine:0.5:100:200", "symbols:0.25:300"], cell_inits=["lstm:chrono"])
    assert SweepSpec.from_dict(old) == spec


@pytest.mark.parametrize("sets, message", [
    (["lr_decays=sine:x:500"], "invalid --set lr_decays='sine:x:500': could not convert string to float: 'x'; "
                               "expected comma-separated task:gamma:m1:m2:... values"),
    (["cell_inits=:chrono"], "invalid --set cell_inits=':chrono': expected cell:init, got ':chrono'"),
])
def test_unreadable_entries_fail_at_the_set(sets, message):
    with pytest.raises(SpecError) as e:
        resolve("attractors", "smoke", sets)
    assert str(e.value) == message or str(e.value).startswith(message)
