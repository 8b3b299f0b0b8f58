"""Measured step rates per cell at each named sweep's `paper` shapes, and the paper scale's projected wall time
on N CPU cores (and on M GPUs where this machine has CUDA). ``--write`` merges the measured rates into
``orchestrator/step_rates.json``, which ``sweep show`` estimates any sweep's cost from (``orchestrator/cost.py``).

Every distinct training shape of a sweep's paper grid (task, cell, depth, T, hidden, batch, LayerNorm, block)
runs as a real trial through ``trainers.train.run_trial`` for a few steps (probes off) into a temporary results
directory; its step time is the median difference of the ``wall_s`` column of its ``steps`` rows, read back with
DuckDB. A sweep's cost is then the sum over its trials (Optuna search trials, then seed trials) of steps x step
time, and its wall time on N workers (one trial per core or per GPU, Ray's default here) is max(total / N,
the longest search trial plus the longest seed trial): one Tuner runs the sweep (``orchestrator.cost``). Not
included in these tables: probes (``bench/probes.py`` prices them in training steps), evaluation, analysis
trials, and trials that stop early (exploding-gradients stops a run at its first solved check: its figure is an
upper bound). ``--write`` also records each shape's fixed seconds per trial beyond its steps (build, the final
evaluation) as ``start_s``. Trials with ``steps = 0`` (signal-propagation) are timed whole.

    python bench/project.py [--sweeps curse-of-memory deep-rnn ...] [--scale paper] [--steps 6]
                            [--cores 2 16 64 256] [--gpus 1 8 32] [--threads 1] [--device cpu|cuda] [--write]
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
from orchestrator.cost import RATES_FILE, hours, shape_of, trials_of, wall_time, write_rates
from orchestrator.sweeps import SWEEPS, resolve
from orchestrator.trial_configs import trial_config
from trainers.config import TrialConfig
from trainers.train import run_trial

SHAPE = ("task", "cell", "depth", "seq_len", "layer_norm")  # the grid axes that change a step's cost


def step_time(spec, group: dict, steps: int, device: str, results: str) -> tuple[float, float | None]:
    """Seconds per training step of this group's trial (or seconds per trial when the spec trains 0 steps), and
    the trial's fixed seconds beyond its steps (build, data, the first step's warm-up, the final evaluation on
    the spec's ``eval_batch``); None for 0-step trials."""
    train = steps > 0
    fields = dict(stage="seed", seed=0, lr=spec.lr, trial_id=f"t{time.monotonic_ns()}", checkpoint_every=0,
                  solve_every=0, eval_every=0, device=device)
    cfg = TrialConfig.from_dict(trial_config(spec, "bench", results, group, **fields))
    cfg = dataclasses.replace(cfg, steps=steps, probes=() if train else cfg.probes)
    summary = run_trial(cfg)
    if summary["status"] not in ("completed", "diverged"):
        raise RuntimeError(f"{cfg.trial_id} {group}: {summary}")
    if not train:
        return summary["wall_s"], None
    walls = query_arrow(results, f"SELECT wall_s FROM steps WHERE trial_id = '{cfg.trial_id}' ORDER BY step")
    walls = walls.column("wall_s").to_pylist()
    per_step = statistics.median(b - a for a, b in zip(walls[1:], walls[2:]))  # the first step warms up
    return per_step, max(0.0, summary["wall_s"] - summary["steps_done"] * per_step)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweeps", nargs="*", default=sorted(SWEEPS))
    ap.add_argument("--scale", default="paper", help="the sweeps' preset whose shapes are measured")
    ap.add_argument("--steps", type=int, default=6, help="steps timed per shape (the first is dropped)")
    ap.add_argument("--cores", type=int, nargs="*", default=[2, 16, 64, 256])
    ap.add_argument("--gpus", type=int, nargs="*", default=[1, 8, 32])
    ap.add_argument("--threads", type=int, default=1, help="torch threads per trial (Ray's trials use 1)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--write", action="store_true", help=f"merge the measured rates into {RATES_FILE.name}")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = tempfile.mkdtemp(prefix="project-")
    unit = "GPU" if args.device == "cuda" else "core"
    workers = args.gpus if args.device == "cuda" else args.cores
    load = os.getloadavg()[0]
    print(f"device {args.device}, {args.threads} thread(s), load average {load:.1f}\n")
    rows, measured, entries = [], {}, []
    first = resolve(args.sweeps[0], args.scale)  # warm up: a process's first trial pays one-off costs
    step_time(first, first.grid()[0], min(first.steps, 3), args.device, results)
    for name in args.sweeps:
        spec = resolve(name, args.scale)
        t0 = time.perf_counter()
        for g in spec.grid():
            key = (name,) + tuple(g[a] for a in SHAPE)
            if key not in measured:
                measured[key], start = step_time(spec, g, args.steps + 1 if spec.steps else 0, args.device, results)
                entries.append({**shape_of(spec, g), "per": "step" if spec.steps else "trial", "device": args.device,
                                "seconds": float(f"{measured[key]:.4g}"),
                                **({"start_s": float(f"{start:.3g}")} if start is not None else {})})
        trials = trials_of(spec)
        stages: dict[str, list[float]] = {}
        for stage, g, steps in trials:
            cost = measured[(name,) + tuple(g[a] for a in SHAPE)] * max(steps, 1)
            stages.setdefault(stage, []).append(cost)
        total = sum(sum(c) for c in stages.values())
        walls = [wall_time(stages, n) for n in workers]
        rows.append((name, spec, len(trials), total, walls, time.perf_counter() - t0))

    print(f"## Measured step time per shape ({args.scale} scale)\n")
    print("| sweep | task | cell | depth | T | LayerNorm | hidden | batch | s / step | steps / s |")
    print("| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for (name, task, cell, depth, T, ln), s in measured.items():
        spec = next(r[1] for r in rows if r[0] == name)
        per = "s / trial" if spec.steps == 0 else ""
        print(f"| {name} | {task} | {cell} | {depth} | {T} | {'on' if ln else 'off'} | {spec.hidden} | "
              f"{spec.batch} | {s:.3g}{per} | {'—' if per else f'{1 / s:.3g}'} |")
    print(f"\n## Projected wall time of each sweep's {args.scale} scale ({args.device}, one trial per {unit})\n")
    print(f"| sweep | trials | steps per trial | {unit}-hours | "
          + " | ".join(f"{n} {unit}s" for n in workers) + " | measuring took |")
    print("| --- | ---: | ---: | ---: |" + " ---: |" * len(workers) + " ---: |")
    for name, spec, n, total, walls, took in rows:
        upto = "up to " if spec.solve_every else ""
        print(f"| {name} | {n} | {upto}{spec.steps:,} | {total / 3600:.3g} | "
              + " | ".join(hours(w) for w in walls) + f" | {took:.0f} s |")
    if args.write:
        write_rates(entries, {"by": f"bench/project.py --scale {args.scale} --steps {args.steps}",
                              "device": args.device, "threads": args.threads, "cores": os.cpu_count(),
                              "load": round(load, 1)})
        print(f"\nwrote {len(entries)} rates into {RATES_FILE}")
    if args.device == "cpu":
        print("\nGPU columns need a CUDA machine: run this script there (`--device cuda`).")
    return 0 if all(math.isfinite(r[3]) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
