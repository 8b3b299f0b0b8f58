"""The Ray worker entry (``orchestrator.worker``) imports only ``trainers`` (and Ray, torch): a trial process
never loads DuckDB, Optuna, the ``analysis`` package or the driver's modules (issue 13)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("duckdb", "optuna", "analysis")  # what a trial worker must not load


@pytest.mark.slow
def test_worker_module_loads_no_duckdb_optuna_or_analysis():
    code = ("import json, sys\nimport orchestrator.worker as w\nassert callable(w.trainable)\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('duckdb', 'optuna', 'analysis', 'orchestrator', 'trainers', 'ray'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert not [m for m in loaded if m.split(".")[0] in HEAVY], loaded
    # of the orchestrator, only the worker module (and its package) is loaded: no spec, searcher or CLI
    assert [m for m in loaded if m.startswith("orchestrator")] == ["orchestrator", "orchestrator.worker"]
    assert "trainers.train" in loaded and "trainers.bundle" in loaded and "ray" in loaded  # it did import its own


def test_with_step_adds_tunes_x_axis():
    from orchestrator.worker import with_step

    seen = []
    report = with_step(seen.append)
    report({"step": 7, "loss": 0.5})
    report({"final_loss": 0.25})
    assert seen == [{"step": 7, "loss": 0.5, "timesteps_total": 7}, {"final_loss": 0.25}]
