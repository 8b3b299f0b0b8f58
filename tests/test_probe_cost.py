"""`sweep show` counts probe time (orchestrator/probe_cost.py): the calls per trial agree with the trainer's own
schedule (``Probe.due`` over every step), and the estimate adds exactly calls x ratio x seconds per step to each
seed trial (search trials run without probes; trials of 0 steps are timed whole)."""
from __future__ import annotations

import dataclasses

import pytest

from orchestrator import cost, probe_cost
from orchestrator.sweeps import resolve
from trainers.probes import build_probe


@pytest.mark.parametrize("entry", ["hessian", "hessian:every=100", "hessian:every=7:at_init=false",
                                   "signal:at_end=false:every=10", "attractors:every=30:at_end=false",
                                   "lattice:at_init=false:at_end=false"])
@pytest.mark.parametrize("steps", [0, 1, 30, 100, 101])
def test_calls_match_the_trainers_schedule(entry, steps):
    probe = build_probe(entry)
    assert probe_cost.calls(entry, steps) == sum(probe.due(s, steps) for s in range(steps + 1))


def test_estimate_adds_the_probes_of_seed_trials():
    spec = dataclasses.replace(resolve("curse-of-memory", "smoke"), probes=("hessian:every=10", "signal"))
    rates = cost.read_rates()
    ratios = {"measured": [], "ratios": [{"probe": "hessian", "cell": "rnn", "depth": 1, "ratio": 50.0},
                                         {"probe": "hessian", "cell": "lru", "depth": 1, "ratio": 20.0}]}
    bare = cost.estimate(spec, 2, rates, {"measured": [], "ratios": []})
    e = cost.estimate(spec, 2, rates, ratios)
    step_s = {c: cost.rate_for(rates["rates"], cost.shape_of(spec, g), "step")[0]
              for g in spec.grid() for c in [g["cell"]]}
    calls = probe_cost.calls("hessian:every=10", spec.steps)  # 30 steps: at 0, 10, 20, 30
    assert calls == 4
    expected = sum(calls * {"rnn": 50.0, "lru": 20.0}[g["cell"]] * step_s[g["cell"]] * spec.seeds
                   * len(spec.rates(g)) for g in spec.grid())  # every rate x seed run of the grid protocol probes
    assert e.probe_s == pytest.approx(expected) and e.core_s == pytest.approx(bare.core_s + expected)
    assert e.probe_guessed == ("signal:lru (never measured)", "signal:rnn (never measured)")
    # an unmeasured cell takes the probe's slowest measured cell
    assert probe_cost.ratio(ratios["ratios"], "hessian", "gru", 1) == (50.0, "other cell")
    assert probe_cost.ratio(ratios["ratios"], "hessian", "lru", 4) == (20.0, "other depth")


def test_show_says_what_the_probes_cost():
    from orchestrator.show import describe
    from orchestrator.spec import Resources
    from orchestrator.specfile import load_target

    target = load_target("examples/my_sweep.toml")  # hessian every 100 of 300 steps: 4 calls per seed trial
    e = cost.estimate(target.spec, 2)
    assert e.probe_s > 0 and e.probe_guessed == ()  # lru and rnn are measured
    line = next(x for x in describe(target, Resources()).splitlines() if x.startswith("  probes: "))
    assert line.startswith(f"  probes: {cost.hours(e.probe_s)} of the {cost.hours(e.core_s)} of training")
