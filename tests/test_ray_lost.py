"""Ray's own faults (issue 14, item 8): the only node's raylet killed under a running sweep ends the driver with
one line, and `sweep resume` then finishes the sweep with exact rows."""
from __future__ import annotations

import json
import os
import signal

import pytest
import ray  # noqa: F401 - Ray's bundled psutil
import psutil  # noqa: E402

from conftest import start_cli, sweep_cli
from sweepcheck import assert_exact
from test_faults import SMALL, finished_trials, session_ended, wait_for


N_TRIALS = 2 * 2 * 3  # (2 cells x 1 nu) x (2 smoke grid rates x 3 seeds): the grid protocol, 2 bundles


@pytest.mark.slow
def test_killed_raylet_ends_the_driver_in_one_line_then_resume_finishes(tmp_path):
    results, steps = tmp_path / "results", 2000
    proc = start_cli("launch", "curse-of-memory", *SMALL, "--set", f"steps={steps}", "--set", "checkpoint_every=200",
                     "--results", str(results))
    try:
        # mid-run: a checkpoint is written (the two bundles run side by side, so the first one to finish would
        # be close to the end of the sweep; a kill after it could land on a finished sweep)
        wait_for(lambda: list(results.glob("*/_checkpoints/*.pt")), 300, "a checkpoint")
        assert len(finished_trials(results)) < N_TRIALS
        raylets = [p for p in psutil.Process(proc.pid).children(recursive=True) if "raylet" in " ".join(p.cmdline())]
        assert raylets
        for p in raylets:
            p.kill()
        out, _ = proc.communicate(timeout=120)  # not a hang: the driver notices within seconds
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    errors = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "the Ray cluster was lost" in errors[0], out
    wait_for(lambda: session_ended(proc.pid), 120, "the lost cluster's trial workers to end")  # before resuming
    sweep_id = json.loads(next(results.glob("*/sweep.json")).read_text())["sweep_id"]
    r = sweep_cli("resume", sweep_id, "--results", str(results), timeout=900)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert_exact(str(results), sweep_id, n_trials=N_TRIALS, steps=steps)
