"""Each probe's cost as a multiple of one training step of the same trial, at the probe's default options.

A quick-scale curse-of-memory trial (teacher-student, nu0 = 0.99, T = 300, hidden 64, batch 64, probe batch 64)
for a diagonal cell (lru; add gated ones with --cells, but their Hessian probe runs the stepwise loop with
double backward and takes minutes per call at T = 300), at depth 1 and depth 4 (the deep-stack probes,
lattice and signal, only mean something with depth). One training step = forward + loss + backward + Adam,
median of 5 after a warm-up; one probe call = one call after a warm-up call. The ratio says how many training steps a
probe call costs: a cadence of `every` steps costs about ratio / every of the training time.

    python bench/probes.py [--threads 1] [--cells lru vrnn] [--depths 1 4] [--write]

``--write`` merges the ratios into orchestrator/probe_rates.json, which `sweep show` prices probes with
(``orchestrator.probe_cost``).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from trainers.config import TrialConfig
from trainers.probes import PROBES, ProbeContext, build_probe
from trainers.stack import Stack
from trainers.tasks import task_class


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cells", nargs="+", default=["lru"])
    ap.add_argument("--depths", nargs="+", type=int, default=[1, 4])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--write", action="store_true", help="merge the ratios into orchestrator/probe_rates.json")
    args = ap.parse_args()
    measured = []
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, load average {os.getloadavg()[0]:.1f}\n")
    print("| cell | depth | training step | probe | probe call | probe / step |")
    print("| --- | ---: | ---: | --- | ---: | ---: |")
    for cell in args.cells:
        for depth in args.depths:
            cfg = TrialConfig(sweep="bench", sweep_id="bench", trial_id="bench", results="/tmp", cell=cell,
                              depth=depth, nu=0.99, batch=args.batch, block="glu" if depth > 1 else "linear")
            task = task_class(cfg.task).from_config(cfg)
            torch.manual_seed(0)
            model = Stack(cell, 1, cfg.hidden, 1, depth=depth, d_model=cfg.d_model, r_min=cfg.nu, block=cfg.block)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            gen = torch.Generator().manual_seed(0)
            x, y = task.sample(args.batch, gen)

            def train_step():
                loss = task.loss(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()

            step_s = median_time(train_step, 5)
            px, py = task.sample(cfg.probe_batch, torch.Generator().manual_seed(1))
            ctx = ProbeContext(model=model, task=task, x=px, y=py, step=0, lr=1e-3, device=torch.device("cpu"),
                               seed=0)
            for name in sorted(PROBES):
                probe = build_probe(name)
                probe_s = median_time(lambda: probe(ctx), 1)
                print(f"| {cell} | {depth} | {step_s * 1e3:.1f} ms | {name} | {probe_s:.2f} s | "
                      f"{probe_s / step_s:.0f}x |", flush=True)
                measured.append({"probe": name, "cell": cell, "depth": depth, "ratio": round(probe_s / step_s, 2)})
    if args.write:
        from orchestrator.probe_cost import write

        write(measured, {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "threads": args.threads,
                         "batch": args.batch, "load": round(os.getloadavg()[0], 1), "entries": len(measured)})
        print("wrote orchestrator/probe_rates.json")


if __name__ == "__main__":
    main()
