"""A full results location (a 700 KB tmpfs; root only): one line from the driver, the sweep stays resumable, and
`sweep resume` after space is freed finishes every trial with exact rows (issue 14, item 3)."""
from __future__ import annotations

import os
import subprocess

import pytest

from conftest import sweep_cli
from sweepcheck import assert_exact
from test_faults import SMALL

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")]


@pytest.fixture
def small_disk(tmp_path):
    d = tmp_path / "disk"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", str(d)], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)


def test_full_disk_one_line_then_resume_finishes(small_disk):
    results, steps = small_disk / "results", 600
    r = sweep_cli("launch", "curse-of-memory", *SMALL, "--set", f"steps={steps}", "--set", "checkpoint_every=100",
                  "--set", "max_failures=1", "--results", str(results), timeout=900)
    assert r.returncode == 2, (r.stdout, r.stderr)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [f"error: no space left on {results}; free some space, then `sweep resume` retries every "
                      "trial that did not complete"], r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    sweep_id = r.stdout.split()[1]
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)  # space freed
    r = sweep_cli("resume", sweep_id, "--results", str(results), timeout=900)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert_exact(str(results), sweep_id, n_trials=2 * 2 * 3, steps=steps)  # 2 cells x 2 smoke grid rates x 3 seeds
