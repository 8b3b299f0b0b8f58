"""Orchestration overhead of a sweep: its wall time against the time its trials spent in their own work.

Launches a named sweep (curse-of-memory, quick, by default) on a private local Ray, timing the driver from
before Ray starts to the end, then reads every trial's own ``wall_s`` (measured inside the trainer, from its
first line to its trials row; the seeds of a bundle share one run) back from the ``trials`` table. The whole
sweep is one Tuner, so with W workers (cores / cpus_per_trial) the best a scheduler can do is max(all trial
time / W, the critical path), where the critical path is the longest chain of trials that must run one after
another: a group's longest search trial then its longest seed run (seeds wait for their group's search), or
the longest analysis. The overhead is the rest: Ray's start, worker processes and imports, Tune's bookkeeping
and workers left idle.

    python bench/overhead.py [--name curse-of-memory] [--scale quick] [--set key=value ...]
                             [--cpus-per-trial 1]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import ray

from analysis.db import query_arrow
from orchestrator.sweeps import resolve
from orchestrator.launch import launch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="curse-of-memory")
    ap.add_argument("--scale", default="quick")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--cpus-per-trial", type=float, default=1.0)
    args = ap.parse_args()
    results = tempfile.mkdtemp(prefix="overhead-")
    load = os.getloadavg()[0]
    t0, t0_clock = time.perf_counter(), time.time()
    sid = launch(resolve(args.name, args.scale, args.sets), results, cpus_per_trial=args.cpus_per_trial)
    wall = time.perf_counter() - t0
    workers = max(1, int(ray.cluster_resources().get("CPU", 1) // args.cpus_per_trial))
    # the seeds of a bundle (trainers.bundle) share one run: its start and, at most, its wall time
    runs = f"""WITH runs AS (SELECT stage, task, cell, depth, nu, seq_len, clip, layer_norm, started_at, count(*) AS n,
                                max(wall_s) AS wall, max(ended_at) AS ended_at
                         FROM trials WHERE sweep_id = '{sid}' GROUP BY ALL)"""
    rows = query_arrow(results, f"""{runs}
        SELECT stage, sum(n) AS trials, count(*) AS runs, sum(wall) AS work, max(wall) AS longest,
               epoch(min(started_at) - (SELECT min(started_at) FROM runs)) AS first,
               epoch(max(ended_at) - (SELECT min(started_at) FROM runs)) AS last
        FROM runs GROUP BY stage ORDER BY min(started_at)""").to_pylist()
    (path,) = query_arrow(results, f"""{runs}, chains AS (
            SELECT max(wall) FILTER (stage = 'lr_search') AS search, max(wall) FILTER (stage = 'seed') AS seed
            FROM runs WHERE stage <> 'analysis' GROUP BY task, cell, depth, nu, seq_len, clip, layer_norm)
        SELECT greatest(coalesce((SELECT max(coalesce(search, 0) + coalesce(seed, 0)) FROM chains), 0),
                        coalesce((SELECT max(wall) FROM runs WHERE stage = 'analysis'), 0)) AS path""").to_pylist()
    (span,) = query_arrow(results, f"""{runs} SELECT epoch(min(started_at)) AS first, epoch(max(ended_at)) AS last
                                          FROM runs""").to_pylist()
    work = sum(r["work"] for r in rows)
    ideal = max(work / workers, path["path"])
    start, trials_span = span["first"] - t0_clock, span["last"] - span["first"]
    print(f"sweep {sid} ({args.name}, {args.scale}{', ' + ' '.join(args.sets) if args.sets else ''}); "
          f"{workers} workers; load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end\n")
    print("| stage | trials | Ray trials (bundles count once) | trial time (s) | longest (s) | first start (s) "
          "| last end (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['stage']} | {r['trials']} | {r['runs']} | {r['work']:.1f} | {r['longest']:.1f} | "
              f"{r['first']:.1f} | {r['last']:.1f} |")
    print(f"\n| sweep wall (s) | trial time / {workers} (s) | critical path (s) | ideal (s) | overhead | target |\n"
          f"| ---: | ---: | ---: | ---: | ---: | --- |\n"
          f"| {wall:.1f} | {work / workers:.1f} | {path['path']:.1f} | {ideal:.1f} | {100 * (wall / ideal - 1):.1f}% "
          f"| < 10% |")
    print(f"\nwhere the time outside the trials went: {start:.1f} s from the launch to the first trial's start (Ray, "
          f"Tune, the first actors and their imports), {wall - start - trials_span:.1f} s after the last trial's end; "
          f"between them {trials_span:.1f} s with on average {work / trials_span:.2f} of {workers} workers busy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
