"""Seed bundles against separate trials: S seeds of one quick-shaped trial trained as one bundle
(``trainers.bundle.run_bundle``) and as S solo runs (``run_trial`` one after another), both writing their rows
to Parquet, in the same process on the same thread count (no Ray: its per-trial cost is in ``bench/overhead.py``
and in the end-to-end figures of bench/README.md).

Two tables. (1) Whole trials: seed-steps per second of S seeds, setup, evaluation and Parquet included, and the
ratio (target: >= 4x on CPU, >= 10x on a GPU). (2) Per step: each side's time per step with the per-trial setup
taken out (the difference of a long and a short run), the bundle's at several bundle sizes, and the straight-line
fit bundle_ms(S) = fixed + S * per_seed: ``fixed`` is the per-step cost bundling shares (Python, dispatch,
per-call overhead), ``per_seed`` the compute it does not shrink. solo / per_seed bounds the per-step ratio of any
bundle size. Each timing is the best of ``--repeats``; the load average is printed because the cores are shared.
Table 1 gives wall time and this process's CPU time (``time.process_time``: on a busy shared machine the wall time
counts the other processes' turns too, the CPU time does not); table 2 is CPU time.

    python bench/bundle.py [--cells lru rnn gru] [--seeds 10] [--steps 100] [--repeats 2] [--threads 1]
                           [--sizes 1 3 10]
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
SHORT = 10  # steps of the short run whose time is subtracted (table 2)


def configs(root: str, cell: str, seeds: int, steps: int, prefix: str) -> list[TrialConfig]:
    shape = SHAPES.get(cell, dict(seq_len=100, nu=0.92))
    return [TrialConfig(sweep="bench", sweep_id="bench", trial_id=f"{prefix}{s}", results=root, cell=cell, seed=s,
                        steps=steps, batch=64, hidden=64, eval_batch=512, lr=1e-3, grad_norm_every=10,
                        checkpoint_every=steps // 2, **shape)
            for s in range(seeds)]


def timed(fn) -> tuple[float, float]:
    """(wall s, CPU s of this process) of ``fn(root)`` on a fresh results folder."""
    root = tempfile.mkdtemp(prefix="bench-bundle-")
    try:
        t, c = time.perf_counter(), time.process_time()
        fn(root)
        return time.perf_counter() - t, time.process_time() - c
    finally:
        shutil.rmtree(root, ignore_errors=True)


def solo(cell: str, seeds: int, steps: int):
    return lambda root: [run_trial(c) for c in configs(root, cell, seeds, steps, "solo")]


def bundled(cell: str, seeds: int, steps: int):
    return lambda root: run_bundle("bundle", configs(root, cell, seeds, steps, "b"))


def best(fn, repeats: int) -> tuple[float, float]:
    """The least wall and the least CPU time of ``repeats`` runs."""
    runs = [timed(fn) for _ in range(repeats)]
    return min(w for w, _ in runs), min(c for _, c in runs)


def per_step_ms(make, cell: str, seeds: int, steps: int, repeats: int) -> float:
    """CPU ms per step of ``seeds`` seeds, per-trial setup excluded: (long run - short run) / (steps - SHORT)."""
    return (best(make(cell, seeds, steps), repeats)[1] - best(make(cell, seeds, SHORT), repeats)[1]) / (
        steps - SHORT) * 1e3


def fit(xs: list[int], ys: list[float]) -> tuple[float, float]:
    """Least-squares line y = a + b x."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="+", default=["lru", "rnn", "gru"])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", nargs="+", type=int, default=[1, 3, 10], help="bundle sizes of table 2")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"load average {os.getloadavg()[0]:.2f} at start; device {device}, {args.threads} thread(s), "
          f"{args.seeds} seeds x {args.steps} steps, best of {args.repeats}\n")
    bundled(args.cells[0], 2, 2)(tempfile.mkdtemp(prefix="bench-bundle-warm-"))  # torch.func's lazy imports
    print("(1) whole trials (setup, evaluation, Parquet included)\n")
    print("| cell | T | solo seed-steps/s (wall) | bundled seed-steps/s (wall) | ratio (wall) | ratio (CPU time) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for cell in args.cells:
        t_solo, c_solo = best(solo(cell, args.seeds, args.steps), args.repeats)
        t_bundle, c_bundle = best(bundled(cell, args.seeds, args.steps), args.repeats)
        n = args.seeds * args.steps
        print(f"| {cell} | {SHAPES.get(cell, {}).get('seq_len', 100)} | {n / t_solo:.0f} | {n / t_bundle:.0f} | "
              f"{t_solo / t_bundle:.1f}x | {c_solo / c_bundle:.1f}x |", flush=True)
    sizes = sorted(set(args.sizes))
    print(f"\n(2) CPU ms per step, setup excluded ({args.steps} - {SHORT} steps); bundle at S = "
          f"{', '.join(map(str, sizes))}\n")
    print("| cell | solo ms/step | bundle ms/step | fixed ms | per-seed ms | per-step ratio at S = "
          f"{sizes[-1]} | bound solo / per-seed |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for cell in args.cells:
        s = per_step_ms(solo, cell, 1, args.steps, args.repeats)
        bs = [per_step_ms(bundled, cell, S, args.steps, args.repeats) for S in sizes]
        a, b = fit(sizes, bs)
        print(f"| {cell} | {s:.2f} | {' / '.join(f'{x:.2f}' for x in bs)} | {a:.2f} | {b:.2f} | "
              f"{s * sizes[-1] / bs[-1]:.1f}x | {s / b:.1f}x |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
