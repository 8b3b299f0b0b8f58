"""Seed bundles against separate trials: 10 seeds of one quick-shaped trial trained as one bundle
(``trainers.bundle.run_bundle``) and as 10 solo runs (``run_trial`` one after another), both writing their rows
to Parquet, in the same process on the same thread count. Prints a Markdown table of seed-steps per second and
the ratio (target: >= 4x on CPU, >= 10x on a GPU). Repeats and keeps each side's best time; the load average
is printed because the cores are shared.

    python bench/bundle.py [--cells lru rnn gru] [--seeds 10] [--steps 100] [--repeats 2] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import torch

from trainers.bundle import run_bundle
from trainers.config import TrialConfig
from trainers.train import run_trial

# the curse-of-memory quick trial (batch 64, T = 300, hidden 64) for the LTI cells; a shorter T for the
# nonlinear ones, whose forward loops over time (attractors/deep-rnn quick: T 50-100)
SHAPES = {"lru": dict(seq_len=300, nu=0.92), "rnn": dict(seq_len=300, nu=0.92), "gru": dict(seq_len=50, nu=0.92)}


def configs(root: str, cell: str, seeds: int, steps: int, prefix: str) -> list[TrialConfig]:
    shape = SHAPES.get(cell, dict(seq_len=100, nu=0.92))
    return [TrialConfig(sweep="bench", sweep_id="bench", trial_id=f"{prefix}{s}", results=root, cell=cell, seed=s,
                        steps=steps, batch=64, hidden=64, eval_batch=512, lr=1e-3, grad_norm_every=10,
                        checkpoint_every=steps // 2, **shape)
            for s in range(seeds)]


def timed(fn) -> float:
    root = tempfile.mkdtemp(prefix="bench-bundle-")
    try:
        t = time.perf_counter()
        fn(root)
        return time.perf_counter() - t
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="+", default=["lru", "rnn", "gru"])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"load average {os.getloadavg()[0]:.2f} at start; device {device}, {args.threads} thread(s), "
          f"{args.seeds} seeds x {args.steps} steps, best of {args.repeats}\n")
    print("| cell | T | solo seed-steps/s | bundled seed-steps/s | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for cell in args.cells:
        def solo(root: str) -> None:
            for c in configs(root, cell, args.seeds, args.steps, "solo"):
                run_trial(c)

        def bundled(root: str) -> None:
            run_bundle("bundle", configs(root, cell, args.seeds, args.steps, "b"))

        best = {"solo": float("inf"), "bundled": float("inf")}
        for _ in range(args.repeats):
            for name, fn in (("solo", solo), ("bundled", bundled)):
                best[name] = min(best[name], timed(fn))
        n = args.seeds * args.steps
        print(f"| {cell} | {SHAPES.get(cell, {}).get('seq_len', 100)} | {n / best['solo']:.0f} | "
              f"{n / best['bundled']:.0f} | {best['solo'] / best['bundled']:.1f}x |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
