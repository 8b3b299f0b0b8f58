"""The quick curse-of-memory sweep under the grid protocol (today's default) and under the old one, side by side
in one run on a private local Ray, and the wall-time ratio (target: grid / old <= 1 on a 2-core CPU box).

- grid: ``sweep launch curse-of-memory`` as it is (every rate of the quick grids x 3 seeds, one bundle per group).
- old: the protocol it replaced, the same sweep as it was: 5 cells (no cdiag_exp), 4 Optuna TPE trials per group on
  a search seed, then the 3 seeds at the best rate (``--set lr_search=tpe --set lr_search_trials=4``).

Each runs once, old first then grid (``--order`` flips it); the load average is printed because cores are shared.

    python bench/protocols.py [--order old,grid] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from orchestrator.sweeps import resolve
from orchestrator.launch import init_ray, launch

OLD = ["lr_search=tpe", "lr_search_trials=4", "cells=rnn,blockdiag,cdiag,cdiag_norm,lru"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--order", default="old,grid")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="key=value for both sweeps")
    args = ap.parse_args()
    init_ray(None)
    walls = {}
    for name in args.order.split(","):
        sets = (OLD if name == "old" else []) + args.sets
        with tempfile.TemporaryDirectory() as results:
            t0 = time.perf_counter()
            launch(resolve("curse-of-memory", "quick", sets).validate(), results, out=open(os.devnull, "w"))
            walls[name] = time.perf_counter() - t0
        print(f"{name:5s} {walls[name]:7.1f} s wall (load average {os.getloadavg()[0]:.1f})", flush=True)
    if {"old", "grid"} <= set(walls):
        print(f"grid / old = {walls['grid'] / walls['old']:.2f}")


if __name__ == "__main__":
    main()
