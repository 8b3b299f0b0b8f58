"""The attractors sweep's paper settings (Ribeiro et al. 2020; repo antonior92/attractors-and-smoothness-RNN):
the authors' step decay per task, against hand-computed rates in a real trial's ``steps`` rows, and each task's
own orbit settings in the attractor probe."""
from __future__ import annotations

import pytest
import torch

from analysis.db import query_arrow
from orchestrator.spec import SpecError
from orchestrator.sweeps import resolve
from orchestrator.trial_configs import trial_config
from trainers.config import TrialConfig
from trainers.probes import build_probe
from trainers.probes.base import ProbeContext
from trainers.stack import Stack
from trainers.tasks.sine import Sine
from trainers.tasks.symbols import Symbols
from trainers.train import run_trial


def test_step_schedule_rates_in_a_real_trial(tmp_path, one_thread):
    """lr 0.01, x 0.25 after steps 3 and 5: steps 1-3 at 0.01, 4-5 at 0.0025, 6-8 at 0.000625 (by hand)."""
    cfg = TrialConfig(sweep="t", sweep_id="sd", trial_id="x", results=str(tmp_path), task="sine", cell="lstm",
                      hidden=4, seq_len=20, batch=4, steps=8, optimizer="adam", schedule="step", lr=0.01,
                      lr_gamma=0.25, lr_milestones=(3, 5), eval_batch=8, checkpoint_every=0, device="cpu")
    out = run_trial(cfg)
    assert out["status"] == "completed", out
    rows = query_arrow(str(tmp_path), "SELECT step, lr FROM steps ORDER BY step").to_pylist()
    expected = [0.01] * 3 + [0.0025] * 2 + [0.000625] * 3
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert [r["lr"] for r in rows] == pytest.approx(expected, rel=1e-6)  # the steps table stores float32


def test_paper_scale_decays_each_task_as_its_authors_script():
    spec = resolve("attractors", "paper")
    assert spec.schedule == "step"
    seen = {}
    for group in spec.grid():
        cfg = TrialConfig.from_dict(trial_config(spec, "s", "/tmp/unused", group, seed=0, lr=1e-3, trial_id="t"))
        seen.setdefault(group["task"], set()).add((cfg.schedule, cfg.lr_gamma, cfg.lr_milestones))
    # epochs 500, 1000, 2000 at 10 batches an epoch; sine gamma 0.1, symbols 0.25 (their train.py defaults)
    assert seen == {"sine": {("step", 0.1, (5000, 10000, 20000))},
                    "symbols": {("step", 0.25, (5000, 10000, 20000))}}
    assert resolve("attractors", "quick").schedule == "cosine"


@pytest.mark.parametrize("sets, needle", [
    (["lr_decays=sine:0.1:500,symbols:2:500"], "invalid lr_decays='symbols:2:500'; valid: entries task:gamma:m1"),
    (["lr_decays=sine:0.1:500:400"], "invalid lr_decays='sine:0.1:500:400'"),
    (["lr_decays=sin:0.1:500"], "invalid lr_decays='sin:0.1:500'"),
    (["schedule=step", "lr_decays=sine:0.1:500"], "valid: an entry task:gamma:m1:... for task symbols"),
    (["schedule=steps"], "invalid schedule='steps'; valid: cosine, constant, step"),
])
def test_bad_decays_are_one_line_errors(sets, needle):
    with pytest.raises(SpecError) as e:
        resolve("attractors", "smoke", sets)
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


@pytest.mark.parametrize("task, explicit, n_inputs", [
    (Sine(seq_len=20), "burn_in=1200:keep=400:n_inits=4", 10),  # sine-generator/train.py
    (Symbols(seq_len=50), "burn_in=400:keep=400:n_inits=10", 6),  # sequence-classification/train.py
])
def test_orbit_task_takes_each_tasks_own_settings(task, explicit, n_inputs, one_thread):
    torch.manual_seed(0)
    model = Stack("lstm", task.d_in, 4, task.d_out)
    ctx = ProbeContext(model=model, task=task, x=None, y=None, step=0, lr=0.0, device=torch.device("cpu"), seed=0)
    common = "attractors:inputs=task:project=output:lyapunov_burn_in=3:lyapunov_steps=5"
    by_task = build_probe(f"{common}:orbit=task")(ctx)
    by_hand = build_probe(f"{common}:{explicit}")(ctx)
    n_inits, keep = (4, 400) if n_inputs == 10 else (10, 400)
    assert len(by_task["attractors"]["x"]) == n_inputs * n_inits * keep
    assert max(by_task["attractors"]["init_id"]) == n_inits - 1
    assert by_task == by_hand
    with pytest.raises(ValueError, match="orbit='ghost'"):
        build_probe("attractors:orbit=ghost")
