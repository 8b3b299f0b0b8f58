"""A group's rates x seeds as one bundle against the same runs solo, on a device (the grid protocol's cost).

R rates x S seeds of one quick-shaped curse-of-memory trial train as one bundle (``trainers.bundle.run_bundle``,
each member its own rate and optimiser state) and as R x S solo runs (``run_trial`` one after another), in the
same process. Prints, per cell: wall seconds each way, the ratio solo / bundle, and the largest relative
difference of a member's final loss from its solo run's (at the stable rates used here it is round-off; near the
edge of stability round-off is amplified, README "Bundles").

    python bench/rate_bundle.py [--device cpu|cuda] [--cells lru rnn] [--rates 0.01 0.0032 0.001] [--seeds 3]
                                [--steps 100]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch

from trainers.bundle import run_bundle
from trainers.config import TrialConfig
from trainers.train import run_trial


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--cells", nargs="+", default=["lru", "rnn"])
    ap.add_argument("--rates", nargs="+", type=float, default=[0.0032, 0.001, 3.2e-4])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"device {args.device}; {len(args.rates)} rates x {args.seeds} seeds, {args.steps} steps, T 300, "
          "hidden 64, batch 64")
    print(f"{'cell':8s} {'bundle s':>9s} {'solo s':>9s} {'solo/bundle':>12s} {'max rel diff':>13s}")
    for cell in args.cells:
        with tempfile.TemporaryDirectory() as root:
            base = dict(sweep="bench", sweep_id="b", results=root, cell=cell, nu=0.9, steps=args.steps, batch=64,
                        seq_len=300, eval_batch=512, grad_norm_every=0, device=args.device, group_key="g")
            runs = [(lr, s) for lr in args.rates for s in range(args.seeds)]
            t0 = time.perf_counter()
            out = run_bundle("g", [TrialConfig(trial_id=f"b{k}", lr=lr, seed=s, **base)
                                   for k, (lr, s) in enumerate(runs)])
            t_bundle = time.perf_counter() - t0
            t0 = time.perf_counter()
            ref = [run_trial(TrialConfig(trial_id=f"r{k}", lr=lr, seed=s, **base)) for k, (lr, s) in enumerate(runs)]
            t_solo = time.perf_counter() - t0
            diff = max(abs(a["final_loss"] - b["final_loss"]) / abs(b["final_loss"]) for a, b in zip(out, ref))
            print(f"{cell:8s} {t_bundle:9.1f} {t_solo:9.1f} {t_solo / t_bundle:12.2f} {diff:13.2e}")


if __name__ == "__main__":
    main()
