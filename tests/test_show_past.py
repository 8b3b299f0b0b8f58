"""`sweep show SWEEP_ID` without torch: a sweep.json records the cells whose seeds trained as bundles
(``bundled_cells``), so the past sweep's counts need no cell built; the text is the one computed from the cells."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.past import past
from orchestrator.spec import Resources
from orchestrator.specfile import Target
from orchestrator.show import describe
from orchestrator.sweeps import resolve
from orchestrator.launch import new_meta

ROOT = Path(__file__).resolve().parents[1]
SID = "curse-of-memory-20260101-000000-abcd"


def write_sweep(results: Path, sets: list[str]) -> dict:
    """A sweep.json as a launch writes it (``tune.new_meta``), for the smoke sweep with ``sets``."""
    spec = resolve("curse-of-memory", "smoke", sets)
    meta = new_meta(spec, SID, {"cpus_per_trial": 1.0, "gpus_per_trial": 0.0, "max_concurrent": None},
                    {"base": "curse-of-memory"}, status="completed")
    (results / SID).mkdir(parents=True)
    (results / SID / "sweep.json").write_text(json.dumps(meta))
    return meta


# smoke grids: rnn 2 rates, lstm 1 rate; 3 seeds each. rnn bundles its 6 runs into 1 Ray trial; lstm is not
# BATCHABLE, so its 3 seeds are 3 Ray trials
@pytest.mark.parametrize("cells,bundled,rows,ray", [("rnn,lstm", ["rnn"], 9, 4), ("lstm", [], 3, 3)])
def test_a_sweep_records_its_bundled_cells_and_show_gives_the_same_counts(tmp_path, cells, bundled, rows, ray):
    sets = [f"cells={cells}", "nus=0.9", "seeds=3"]
    meta = write_sweep(tmp_path, sets)
    assert meta["bundled_cells"] == bundled
    spec = resolve("curse-of-memory", "smoke", sets)
    live = describe(Target(spec, Resources(), "curse-of-memory", None), Resources())  # from the cells (torch)
    assert f"= {rows} trials rows, {ray} Ray trials" in live.splitlines()[3], live
    text = past(str(tmp_path), SID)  # from the record
    assert text.endswith(live), text


@pytest.mark.slow
def test_show_of_a_past_sweep_imports_neither_torch_nor_ray(tmp_path):
    """`sweep show SWEEP_ID` in a fresh interpreter, then which heavy packages it imported (pandas neither)."""
    write_sweep(tmp_path, ["cells=rnn,lru", "nus=0.9"])
    argv = ["show", SID, "--results", str(tmp_path)]
    code = ("import sys\nfrom orchestrator.cli import app\ntry:\n    app(" + repr(argv) + ")\nexcept SystemExit as e:\n"
            "    code = e.code\nprint('HEAVY', sorted(m for m in ('torch', 'ray', 'pandas') if m in sys.modules))\n"
            "sys.exit(code)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"sweep {SID} (completed)" in r.stdout and "in 2 Ray trials as bundles" in r.stdout, r.stdout
    assert r.stdout.strip().splitlines()[-1] == "HEAVY []", r.stdout
