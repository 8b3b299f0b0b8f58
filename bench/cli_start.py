"""Start-up time of the `sweep` commands a researcher types most, against `python -c "import duckdb"`.

Each command runs in a fresh interpreter (as a user runs it) over a small results location made here by
the real writer (one sweep.json and one trials row: the commands' fixed cost, not a data set's), best of
``--repeats`` runs each; the table gives seconds, the ratio to the duckdb baseline, whether torch, ray or pandas
was imported (``-X importtime``; pandas comes with ``pyarrow.dataset``, which only `query`'s views need) and the
target (< 0.5 s).

    python bench/cli_start.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from trainers.record import TrialWriter

TARGET_S = 0.5
SWEEP = "bench-20260101-000000-0000"
OLD_SWEEP = "bench-20260101-000000-0001"


def make_results(root: str) -> None:
    """One tiny sweep: a sweep.json (a valid smoke spec) and one finished trial row; and the same sweep.json
    as written before sweeps recorded ``bundled_cells`` (its `show` builds the cells: torch)."""
    spec = {"name": "bench", "scale": "smoke", "tasks": ["teacher_student"], "cells": ["lru"], "depths": [1],
            "nus": [0.9], "seq_lens": [20], "seeds": 3}
    for sweep, more in ((SWEEP, {"bundled_cells": ["lru"]}), (OLD_SWEEP, {})):
        os.makedirs(f"{root}/{sweep}")
        with open(f"{root}/{sweep}/sweep.json", "w") as f:
            json.dump({"sweep_id": sweep, "name": "bench", "scale": "smoke", "status": "completed", "spec": spec,
                       "created_at": "2026-01-01T00:00:00+00:00", **more}, f)
    TrialWriter(root, SWEEP, "lru-s0").write_trial(dict(
        sweep="bench", stage="seed", task="teacher_student", cell="lru", depth=1, nu=0.9, status="completed",
        steps_done=10, wall_s=1.0, final_loss=0.1, config_json=json.dumps({"steps": 10})))


HEAVY = ("torch", "ray", "pandas")


def run(args: list[str], repeats: int) -> tuple:
    """(best wall seconds, then whether each of HEAVY was imported) of ``python args``."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True)
        best = min(best, time.perf_counter() - t)
    imp = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True).stderr
    names = {line.rsplit("|", 1)[-1].strip() for line in imp.splitlines() if "|" in line}
    return (best, *(m in names for m in HEAVY))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as root:
        make_results(root)
        # what the `sweep` console script runs (`python -m orchestrator.cli` would execute cli.py twice: as
        # __main__, then again as orchestrator.cli when its command modules import it)
        cli = ["-c", "import sys; from orchestrator.cli import main; sys.argv[0] = 'sweep'; sys.exit(main())"]
        cases = [("python -c 'import duckdb' (baseline)", ["-c", "import duckdb"]),
                 ("sweep --help", [*cli, "--help"]),
                 ("sweep ls", [*cli, "ls", "--results", root]),
                 ("sweep query", [*cli, "query", "SELECT count(*) FROM trials", "--results", root]),
                 ("sweep status", [*cli, "status", SWEEP, "--results", root]),
                 ("sweep show <sweep_id>", [*cli, "show", SWEEP, "--results", root]),
                 ("sweep show <sweep_id> (no bundled_cells)", [*cli, "show", OLD_SWEEP, "--results", root]),
                 ("sweep show curse-of-memory", [*cli, "show", "curse-of-memory"])]
        load = os.getloadavg()[0]
        rows = [(name, *run(args, a.repeats)) for name, args in cases]
    base = rows[0][1]
    print(f"load average at start: {load:.2f}; best of {a.repeats}\n")
    print(f"| command | seconds | x duckdb import | {' | '.join(HEAVY)} | < 0.5 s |")
    print(f"|---|---:|---:|{'---|' * len(HEAVY)}---|")
    for name, s, *heavy in rows:
        print(f"| {name} | {s:.3f} | {s / base:.2f} | {' | '.join('yes' if h else 'no' for h in heavy)} | "
              f"{'yes' if s < TARGET_S else 'NO'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
