"""Measured step rates per cell at each named sweep's `paper` shapes, and the paper scale's projected wall time
on N CPU cores (and on M GPUs where this machine has CUDA).

Every distinct training shape of a sweep's paper grid (task, cell, depth, T, hidden, batch, LayerNorm, block)
runs as a real trial through ``trainers.train.run_trial`` for a few steps (probes off) into a temporary results
directory; its step time is the median difference of the ``wall_s`` column of its ``steps`` rows, read back with
DuckDB. A sweep's cost is then the sum over its trials (Optuna search trials, then seed trials) of steps x step
time, and its wall time on N workers (one trial per core or per GPU, Ray's default here) is, stage by stage,
max(stage total / N, the stage's longest trial). Not included: probes (``bench/probes.py`` prices them in training
steps), evaluation, analysis trials, and trials that stop early (exploding-gradients stops a run at its first
solved check: its figure is an upper bound). Trials with ``steps = 0`` (signal-propagation) are timed whole.

    python bench/project.py [--sweeps curse-of-memory deep-rnn ...] [--steps 6] [--cores 2 16 64 256]
                            [--gpus 1 8 32] [--threads 1] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import tempfile
import time

import torch

from analysis.db import query_arrow
from orchestrator.sweeps import SWEEPS, resolve
from orchestrator.tune import trial_config
from trainers.config import TrialConfig
from trainers.train import run_trial

SHAPE = ("task", "cell", "depth", "seq_len", "layer_norm")  # the grid axes that change a step's cost


def trials_of(spec) -> list[tuple[str, dict, int]]:
    """(stage, group, steps) for every training trial of the spec's paper grid."""
    out = []
    for g in spec.grid():
        out += [("lr_search", g, spec.steps)] * spec.lr_search_trials
        out += [("seed", g, spec.steps)] * spec.seeds
    return out


def step_time(spec, group: dict, steps: int, device: str, results: str) -> float:
    """Seconds per training step of this group's trial (or seconds per trial when the spec trains 0 steps)."""
    train = steps > 0
    fields = dict(stage="seed", seed=0, lr=spec.lr, trial_id=f"t{time.monotonic_ns()}", checkpoint_every=0,
                  solve_every=0, eval_every=0, device=device)
    cfg = TrialConfig.from_dict(trial_config(spec, "bench", results, group, **fields))
    cfg = dataclasses.replace(cfg, steps=steps, probes=() if train else cfg.probes,
                              eval_batch=min(cfg.eval_batch, cfg.batch))
    summary = run_trial(cfg)
    if summary["status"] not in ("completed", "diverged"):
        raise RuntimeError(f"{cfg.trial_id} {group}: {summary}")
    if not train:
        return summary["wall_s"]
    walls = query_arrow(results, f"SELECT wall_s FROM steps WHERE trial_id = '{cfg.trial_id}' ORDER BY step")
    walls = walls.column("wall_s").to_pylist()
    return statistics.median(b - a for a, b in zip(walls[1:], walls[2:]))  # the first step warms up


def hours(s: float) -> str:
    return f"{s / 3600:.3g} h" if s >= 3600 else f"{s / 60:.3g} min" if s >= 60 else f"{s:.2g} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweeps", nargs="*", default=sorted(SWEEPS))
    ap.add_argument("--steps", type=int, default=6, help="steps timed per shape (the first is dropped)")
    ap.add_argument("--cores", type=int, nargs="*", default=[2, 16, 64, 256])
    ap.add_argument("--gpus", type=int, nargs="*", default=[1, 8, 32])
    ap.add_argument("--threads", type=int, default=1, help="torch threads per trial (Ray's trials use 1)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = tempfile.mkdtemp(prefix="project-")
    unit = "GPU" if args.device == "cuda" else "core"
    workers = args.gpus if args.device == "cuda" else args.cores
    print(f"device {args.device}, {args.threads} thread(s), load average {os.getloadavg()[0]:.1f}\n")
    rows, measured = [], {}
    for name in args.sweeps:
        spec = resolve(name, "paper")
        t0 = time.perf_counter()
        for g in spec.grid():
            key = (name,) + tuple(g[a] for a in SHAPE)
            if key not in measured:
                measured[key] = step_time(spec, g, args.steps + 1 if spec.steps else 0, args.device, results)
        trials = trials_of(spec) or [("seed", g, 0) for g in spec.grid() for _ in range(spec.seeds)]
        stages: dict[str, list[float]] = {}
        for stage, g, steps in trials:
            cost = measured[(name,) + tuple(g[a] for a in SHAPE)] * max(steps, 1)
            stages.setdefault(stage, []).append(cost)
        total = sum(sum(c) for c in stages.values())
        walls = [sum(max(sum(c) / n, max(c)) for c in stages.values()) for n in workers]
        rows.append((name, spec, len(trials), total, walls, time.perf_counter() - t0))

    print("## Measured step time per shape (paper scale)\n")
    print("| sweep | task | cell | depth | T | LayerNorm | hidden | batch | s / step | steps / s |")
    print("| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for (name, task, cell, depth, T, ln), s in measured.items():
        spec = next(r[1] for r in rows if r[0] == name)
        per = "s / trial" if spec.steps == 0 else ""
        print(f"| {name} | {task} | {cell} | {depth} | {T} | {'on' if ln else 'off'} | {spec.hidden} | "
              f"{spec.batch} | {s:.3g}{per} | {'—' if per else f'{1 / s:.3g}'} |")
    print(f"\n## Projected wall time of each sweep's paper scale ({args.device}, one trial per {unit})\n")
    print(f"| sweep | trials | steps per trial | {unit}-hours | "
          + " | ".join(f"{n} {unit}s" for n in workers) + " | measuring took |")
    print("| --- | ---: | ---: | ---: |" + " ---: |" * len(workers) + " ---: |")
    for name, spec, n, total, walls, took in rows:
        upto = "up to " if spec.solve_every else ""
        print(f"| {name} | {n} | {upto}{spec.steps:,} | {total / 3600:.3g} | "
              + " | ".join(hours(w) for w in walls) + f" | {took:.0f} s |")
    if args.device == "cpu":
        print("\nGPU columns need a CUDA machine: run this script there (`--device cuda`).")
    return 0 if all(math.isfinite(r[3]) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
