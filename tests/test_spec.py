"""SweepSpec scales, --set parsing to declared types, and validation messages."""
from __future__ import annotations

import pytest

from orchestrator.spec import SpecError
from orchestrator.sweeps import SWEEPS, resolve
from orchestrator.sweeps.curse_of_memory import PAPER_NUS


def test_scales_of_curse_of_memory():
    smoke, quick, paper = (resolve("curse-of-memory", s) for s in ("smoke", "quick", "paper"))
    assert smoke.steps < quick.steps < paper.steps
    # the published grid: 7 nu0 values, 10 seeds, 10,000 steps, batch 128, T = 300, hidden 64
    assert paper.nus == PAPER_NUS and len(paper.nus) == 7
    assert (paper.seeds, paper.steps, paper.batch, paper.seq_lens, paper.hidden) == (10, 10_000, 128, (300,), 64)
    assert {"rnn", "lru", "blockdiag", "cdiag", "gru", "lstm"} <= set(paper.cells)
    assert quick.scale == "quick" and "rnn" in quick.cells and "lru" in quick.cells and 0.99 in quick.nus
    # 1 - nu0 halves at each step of the paper's grid
    gaps = [1 - n for n in PAPER_NUS]
    assert all(abs(a / b - 2) < 0.3 for a, b in zip(gaps, gaps[1:]))


def test_set_parses_to_field_types():
    s = resolve("curse-of-memory", "smoke", ["cells=rnn,lru,gru", "nus=0.5, 0.9", "depths=1,2", "clips=0,1.5",
                                              "layer_norms=yes", "lr_range=1e-3,1e-1", "seeds=4"])
    assert s.cells == ("rnn", "lru", "gru") and s.nus == (0.5, 0.9) and s.depths == (1, 2)
    assert s.clips == (0.0, 1.5) and s.layer_norms == (True,) and s.lr_range == (1e-3, 1e-1) and s.seeds == 4
    assert len(s.grid()) == 3 * 2 * 2 * 2
    keys = {s.group_key(g) for g in s.grid()}
    assert len(keys) == len(s.grid()) and "gru-d2-nu0.9-clip1.5" in keys  # axes that vary name the group


@pytest.mark.parametrize("sets, needle", [
    (["cells=rnn,nope"], "unknown cell 'nope'; valid: blockdiag, cdiag"),
    (["nus=0.5,1.0"], "invalid nus=1.0"),
    (["nus=0"], "invalid nus=0.0"),
    (["wat=1"], "unknown --set key 'wat'; valid: analyses, batch"),
    (["steps=ten"], "invalid --set steps='ten'"),
    (["layer_norms=maybe"], "expected true or false"),
    (["clips=-1"], "invalid clips=-1.0"),
    (["optimizer=rmsprop"], "invalid optimizer='rmsprop'; valid: adam, sgd"),
    (["analyses=hessian_opt:nope"], "invalid analyses='hessian_opt:nope'"),
    (["lr_range=1e-1,1e-3"], "invalid lr_range"),
    (["noequals"], "expected key=value"),
    (["depths=0"], "invalid depths=0"),
])
def test_bad_overrides_name_value_and_valid_choices(sets, needle):
    with pytest.raises(SpecError) as e:
        resolve("curse-of-memory", "smoke", sets)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_unknown_sweep_and_scale():
    with pytest.raises(SpecError, match="unknown sweep 'nope'; valid: " + ", ".join(sorted(SWEEPS))):
        resolve("nope")
    with pytest.raises(SpecError, match="unknown scale 'huge'; valid: smoke, quick, paper"):
        resolve("curse-of-memory", "huge")


def test_lr_range_per_cell():
    s = resolve("curse-of-memory", "paper")
    assert s.lr_range_for("rnn") == (3.2e-5, 3.2e-3)
    assert s.lr_range_for("lru") == (3.2e-3, 0.32)
    s2 = resolve("curse-of-memory", "paper", ["lr_ranges=rnn:1e-4:1e-2"])
    assert s2.lr_range_for("rnn") == (1e-4, 1e-2) and s2.lr_range_for("lru") == s2.lr_range
