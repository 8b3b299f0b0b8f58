"""Results at scale: the writer's rows/s, then queries over a generated results directory before and after
`sweep compact`, and the on-disk bytes per row.

(a) Writer: one trial's `steps` rows through `TrialWriter.extend` (numpy columns in chunks of 5,000 rows, the
default flush of 65,536 rows per part file) and through `TrialWriter.append` (one dict per row, as the training
loop does), against a plain `pq.write_table` of the same columns at pyarrow's defaults. Target: extend >= 1 M rows/s.
(b) A results directory of --rows `steps` rows across --trials finished trials (one `trials` row each: cell, nu,
status, final_loss, ...), written by `TrialWriter.extend` into --parts part files per trial (a trial flushes at
every checkpoint: 500 steps by default, so a 5,000-step trial has 10). Then, best of 5 (the machine is shared) on an
open connection (`connect` listed the files first; its time is its own row): the group-by over (cell, nu) of every
trial's final loss (its last step's loss, a pass over all `steps` rows; target < 1 s) and one trial's curve
(target < 100 ms); before and after `compact`.

    python bench/results_scale.py [--rows 10000000 --trials 2000 --parts 10 --dir DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.db import connect, run_arrow
from trainers.compact import compact
from layout.schemas import SCHEMAS
from trainers.record import TrialWriter

CELLS = ("rnn", "blockdiag", "cdiag", "lru", "gru")
NUS = (0.68, 0.92, 0.98, 0.99)
GROUP_BY = ("SELECT t.cell, t.nu, avg(s.loss) AS final_loss, count(*) AS trials FROM trials t JOIN "
            "(SELECT sweep_id, trial_id, arg_max(loss, step) AS loss FROM steps GROUP BY ALL) s "
            "USING (sweep_id, trial_id) GROUP BY ALL ORDER BY ALL")
CURVE = "SELECT step, loss FROM steps WHERE sweep_id = ? AND trial_id = ? ORDER BY step"


def steps_columns(n: int, seed: int, start: int = 1) -> dict[str, np.ndarray]:
    """A plausible loss curve: a decaying loss with noise, a cosine learning rate, occasional clipping."""
    rng = np.random.default_rng(seed)
    step = np.arange(start, start + n, dtype=np.int32)
    loss = (np.exp(-step / 2000.0) * (1 + 0.1 * rng.standard_normal(n))).astype(np.float32)
    grad = np.abs(rng.standard_normal(n)).astype(np.float32)
    return {"step": step, "loss": loss, "lr": (1e-3 * np.cos(step / (2 * n))).astype(np.float32),
            "grad_norm": grad, "clipped": grad > 2.0, "wall_s": (0.005 * step).astype(np.float32)}


def best_time(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def writer_rates(tmp: str, n: int) -> dict[str, float]:
    cols = steps_columns(n, 0)

    def extend():
        w = TrialWriter(tmp, "w", "extend")
        for i in range(0, n, 5000):
            w.extend("steps", {k: v[i:i + 5000] for k, v in cols.items()})
        w.flush()

    m = min(n, 200_000)
    rows = [dict(zip(cols, vals)) for vals in zip(*(v[:m].tolist() for v in cols.values()))]

    def append():
        w = TrialWriter(tmp, "w", "append")
        for r in rows:
            w.append("steps", r)
        w.flush()

    def baseline():
        data = {"sweep_id": ["w"] * n, "trial_id": ["plain"] * n, "metric": pa.nulls(n, pa.float32()), **cols}
        pq.write_table(pa.Table.from_pydict(data, schema=SCHEMAS["steps"]), f"{tmp}/plain.parquet")

    return {"extend": n / best_time(extend), "append": m / best_time(append),
            "baseline": n / best_time(baseline)}


def generate(results: str, rows: int, trials: int, parts: int) -> None:
    per = rows // trials
    for i in range(trials):
        tid = f"t{i:05d}"
        chunk = max(1, -(-per // parts))
        w = TrialWriter(results, "S", tid, flush_rows=chunk)
        cols = steps_columns(per, i)
        for j in range(0, per, chunk):  # one part file per chunk, as checkpoints flush
            w.extend("steps", {k: v[j:j + chunk] for k, v in cols.items()})
        w.flush()
        w.write_trial({"sweep": "bench", "stage": "seed", "task": "teacher_student", "cell": CELLS[i % len(CELLS)],
                       "depth": 1, "hidden": 64, "nu": NUS[(i // len(CELLS)) % len(NUS)], "seed": i, "lr": 1e-3,
                       "status": "completed", "final_loss": float(cols["loss"][-1]), "steps_done": per})


def usage(results: str, table: str) -> tuple[int, int]:
    paths = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(results, "S", table)) for f in fs
             if f.endswith(".parquet") and not f.startswith(".")]
    return len(paths), sum(os.path.getsize(p) for p in paths)


def queries(results: str, trials: int) -> dict[str, float]:
    t = time.perf_counter()
    con = connect(results)
    out = {"connect": time.perf_counter() - t}
    tids = [f"t{i:05d}" for i in np.random.default_rng(1).integers(0, trials, 3)]
    out["group_by"] = best_time(lambda: run_arrow(con, GROUP_BY))
    out["curve"] = statistics.median(best_time(lambda: run_arrow(con, CURVE, ["S", tid])) for tid in tids)
    out["answer"] = run_arrow(con, GROUP_BY)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--parts", type=int, default=10, help="part files per trial before compaction")
    ap.add_argument("--writer-rows", type=int, default=2_000_000)
    ap.add_argument("--dir", default=None, help="where to generate (default: a temporary folder, removed)")
    args = ap.parse_args()
    tmp = args.dir or tempfile.mkdtemp(prefix="results_scale-")
    results = os.path.join(tmp, "results")
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs; {args.rows:,} steps rows, "
          f"{args.trials:,} trials, {args.parts} parts per trial\n")
    try:
        rates = writer_rates(tmp, args.writer_rows)
        t = time.perf_counter()
        generate(results, args.rows, args.trials, args.parts)
        gen_s = time.perf_counter() - t
        files0, bytes0 = usage(results, "steps")
        before = queries(results, args.trials)
        t = time.perf_counter()
        summary = compact(results, "S").summary()
        compact_s = time.perf_counter() - t
        files1, bytes1 = usage(results, "steps")
        after = queries(results, args.trials)
        assert before["answer"].equals(after["answer"]), "compaction changed the group-by's answer"
        n = args.rows // args.trials * args.trials
        print("| measure | value | against | ratio / target |")
        print("| --- | ---: | --- | --- |")
        print(f"| writer `extend` (columns) | {rates['extend'] / 1e6:.2f} M rows/s | plain `pq.write_table`, "
              f"defaults: {rates['baseline'] / 1e6:.2f} M rows/s | {rates['extend'] / rates['baseline']:.2f}x; "
              f"target >= 1 M rows/s: {'met' if rates['extend'] >= 1e6 else 'MISSED'} |")
        print(f"| writer `append` (dict rows) | {rates['append'] / 1e6:.2f} M rows/s | `extend` | "
              f"{rates['append'] / rates['extend']:.2f}x |")
        print(f"| generate {n:,} rows via `extend` | {gen_s:.1f} s ({n / gen_s / 1e6:.2f} M rows/s, "
              f"{files0:,} part files) | | |")
        for label, q in (("before compact", before), ("after compact", after)):
            print(f"| `connect` {label} (list files, views) | {q['connect'] * 1e3:.0f} ms | | |")
            print(f"| group-by (cell, nu) of final loss, {label} | {q['group_by'] * 1e3:.0f} ms | target 1 s | "
                  f"{q['group_by'] / 1.0:.2f} of target |")
            print(f"| one trial's curve, {label} | {q['curve'] * 1e3:.1f} ms | target 100 ms | "
                  f"{q['curve'] / 0.1:.2f} of target |")
        print(f"| `compact` | {compact_s:.1f} s: {files0:,} -> {files1:,} steps files | | |")
        print(f"| `steps` bytes on disk per row | {bytes0 / n:.2f} B before, {bytes1 / n:.2f} B after "
              f"compact | | |")
        print(f"\n{summary}")
    finally:
        if not args.dir:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
