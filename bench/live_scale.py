"""The live view at scale, and what the writer's flush by time costs.

(a) `sweep status`'s read (``analysis.live.live_state``) of a sweep of --trials finished trials (generated as
``bench/results_scale.py`` does, --rows steps rows in all) plus --running running trials (each with --parts part
files of 1,000 steps rows), first and on a redraw (``--watch`` keeps the final rows read), against what `sweep
status` ran before (``resolve_sweep`` and a group-by over the ``trials`` view: each builds the DuckDB views over
every sweep). Best of 3 (the machine is shared).
(b) ``TrialWriter.append`` rows/s (one dict per row, as the training loop drains) with ``flush_s`` = 0 (by size
only), 30 (the default) and 0.05 (a part file every 50 ms: far more often than anyone needs), and a real solo
trial's wall time (lru, 300 steps) at the same settings, interleaved rounds, best of 3: the flush by time must
not slow training.

    python bench/live_scale.py [--trials 2000 --rows 1000000 --running 50 --parts 20]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from analysis.db import query, resolve_sweep
from analysis.live import Planned, live_state
from bench.results_scale import best_time, generate, steps_columns
from trainers.config import TrialConfig
from trainers.record import TrialWriter
from trainers.train import run_trial


def add_running(results: str, n: int, parts: int) -> None:
    for i in range(n):
        w = TrialWriter(results, "S", f"run{i:04d}", flush_rows=1000)
        w.write_trial({"sweep": "bench", "stage": "seed", "cell": "lru", "nu": 0.9, "status": "running",
                       "steps_done": 0, "config_json": '{"steps": 100000}'})
        cols = steps_columns(1000 * parts, i)
        w.extend("steps", cols)
        w.flush()


def append_rate(tmp: str, flush_s: float, n: int = 100_000) -> float:
    cols = steps_columns(n, 0)
    rows = [dict(zip(cols, vals)) for vals in zip(*(v.tolist() for v in cols.values()))]

    def run():
        w = TrialWriter(tmp, "w", f"append-{flush_s}", flush_s=flush_s)
        for r in rows:
            w.append("steps", r)
        w.flush()

    return n / best_time(run, 3)


def trial_walls(tmp: str, settings: tuple[float, ...], rounds: int = 3) -> dict[float, float]:
    """Best wall time of a solo lru trial per ``flush_s``, the settings interleaved round by round."""
    best = dict.fromkeys(settings, float("inf"))
    for _ in range(rounds):
        for flush_s in settings:
            shutil.rmtree(os.path.join(tmp, "trial"), ignore_errors=True)
            t = time.perf_counter()
            run_trial(TrialConfig(sweep="b", sweep_id="b", trial_id="t", results=os.path.join(tmp, "trial"),
                                  cell="lru", steps=300, batch=16, eval_batch=64, nu=0.9, checkpoint_every=100,
                                  flush_s=flush_s))
            best[flush_s] = min(best[flush_s], time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--running", type=int, default=50)
    ap.add_argument("--parts", type=int, default=20)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="live_scale-")
    results = os.path.join(tmp, "results")
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs; {args.trials:,} finished + "
          f"{args.running} running trials\n")
    try:
        generate(results, args.rows, args.trials, 10)
        add_running(results, args.running, args.parts)
        plan = [Planned("seed", (("cell", "lru"),), args.trials + args.running + 100, 100000, "lru")]
        state = live_state(results, "S", plan)
        assert len(state.running) == args.running and all(t.steps_done == 1000 * args.parts for t in state.running)
        live = best_time(lambda: live_state(results, "S", plan), 3)
        cache: dict = {}
        live_state(results, "S", plan, cache=cache)
        redraw = best_time(lambda: live_state(results, "S", plan, cache=cache), 3)

        def old_status():
            resolve_sweep(results, "S")
            query(results, "SELECT stage, status, count(*) AS trials, sum(steps_done) AS steps FROM trials "
                           "WHERE sweep_id = 'S' GROUP BY ALL ORDER BY ALL")

        old = best_time(old_status, 3)
        print("| measure | value | against | ratio |")
        print("| --- | ---: | --- | --- |")
        for label, t in (("first", live), ("redraw (--watch)", redraw)):
            print(f"| `live_state` {label}, {args.trials + args.running:,} trials ({args.running} running) | "
                  f"{t * 1e3:.0f} ms | old `sweep status` (resolve + group-by): {old * 1e3:.0f} ms | {t / old:.2f}x |")
        base = append_rate(tmp, 0.0)
        for flush_s in (30.0, 0.05):
            r = append_rate(tmp, flush_s)
            print(f"| `append` rows/s, flush_s={flush_s:g} | {r / 1e6:.2f} M/s | flush_s=0: {base / 1e6:.2f} M/s | "
                  f"{r / base:.2f}x |")
        walls = trial_walls(tmp, (0.0, 30.0, 0.05))
        for flush_s in (30.0, 0.05):
            print(f"| lru trial, 300 steps, flush_s={flush_s:g} | {walls[flush_s]:.2f} s | flush_s=0: "
                  f"{walls[0.0]:.2f} s | {walls[flush_s] / walls[0.0]:.2f}x |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
