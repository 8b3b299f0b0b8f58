"""The quick curse-of-memory sweep under each learning-rate protocol, side by side in one run on a private local
Ray, with wall-time ratios against the protocol the grid replaced (target: grid / old <= 1 on a 2-core CPU box).

- grid: ``sweep launch curse-of-memory`` as it is (every rate of the quick grids x 3 seeds, one bundle per group).
- old: the protocol grid replaced, on the cells it had (no cdiag_exp): 4 Optuna TPE trials per group on one search
  seed, then the 3 seeds at the chosen rate. That code is gone; its two stages run here as two sweeps, summed:
  ``tpe`` with 1 seed and 4 trials, unpruned (the search), then ``none`` with 3 seeds (the seed stage; at the fixed
  rate, which costs the same per step).
- tpe: today's tpe protocol, 4 Optuna trials per group, each every seed (3, one bundle), with its default pruner
  (halving) and without one (``tpe-nopr``): what pruning saves.

Each runs once, in the order given (``--order``), after an untimed smoke sweep (the first sweep of a process pays
~6 s of start-up that would fall on whichever ran first); the load average is printed because cores are shared.

    python bench/protocols.py [--order old,grid,tpe,tpe-nopr] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from orchestrator.sweeps import resolve
from orchestrator.launch import init_ray, launch

OLD_CELLS = "cells=rnn,blockdiag,cdiag,cdiag_norm,lru"
TPE = ["lr_search=tpe", "lr_search_trials=4"]
RUNS = {  # name -> the sweeps it runs (their walls summed), each as --set overrides of the quick preset
    "grid": [[]],
    "old": [[*TPE, "seeds=1", "lr_search_pruner=none", OLD_CELLS], ["lr_search=none", "seeds=3", OLD_CELLS]],
    "tpe": [[*TPE, "lr_search_pruner=halving"]],
    "tpe-nopr": [[*TPE, "lr_search_pruner=none"]],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--order", default="old,grid,tpe,tpe-nopr")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="key=value for every sweep")
    args = ap.parse_args()
    init_ray(None)
    with tempfile.TemporaryDirectory() as results:  # warm-up, untimed
        launch(resolve("curse-of-memory", "smoke", ["cells=lru,rnn", "nus=0.9"]).validate(), results,
               out=open(os.devnull, "w"))
    walls = {}
    for name in args.order.split(","):
        walls[name] = 0.0
        for sets in RUNS[name]:
            with tempfile.TemporaryDirectory() as results:
                t0 = time.perf_counter()
                launch(resolve("curse-of-memory", "quick", sets + args.sets).validate(), results,
                       out=open(os.devnull, "w"))
                walls[name] += time.perf_counter() - t0
        print(f"{name:8s} {walls[name]:7.1f} s wall (load average {os.getloadavg()[0]:.1f})", flush=True)
    for name in walls:
        if name != "old" and "old" in walls:
            print(f"{name} / old = {walls[name] / walls['old']:.2f}")
    if {"tpe", "tpe-nopr"} <= set(walls):
        print(f"tpe with pruning / without = {walls['tpe'] / walls['tpe-nopr']:.2f}")


if __name__ == "__main__":
    main()
