"""Acceptance check of the deep-rnn sweep at quick scale (Turkoglu et al., STAR, Fig. 2 and Tables 3-4).

Launches ``sweep launch deep-rnn --scale quick`` (or reads an existing sweep with --sweep-id), then prints:
(a) the lattice ratios at init per cell, from the ``lattice_init`` rows (definitions in
analysis/figures/deep_rnn.py: max/min over the lattice, shallow/deep = layer 1 / layer L (means over t),
early/late = t = 1 / t = T (means over layers), corner = (1, 1) / (L, T), diag max/min);
(b) the test accuracy per cell at every depth >= 8, per task. Exits 1 when the acceptance does not hold:
- vrnn grows toward early and shallow cells: corner > 1, shallow/deep > 1 and early/late > 1;
- lstm shrinks there: corner < 0.1 and shallow/deep < 0.1;
- star stays within one order of magnitude: diag max/min < 10, shallow/deep and early/late in (0.1, 10);
  (all three on the paper's Fig. 2 quantity: loss on the last output, gradient w.r.t. each cell's parameters)
- at some depth >= 8, on each task, star trains (accuracy >= TRAINED) where vrnn fails (accuracy < TRAINED).

    python bench/check_deep_rnn.py [--results DIR] [--sweep-id ID] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from analysis.db import connect, resolve_sweep
from analysis.figures.deep_rnn import accuracy, lattice_summary

TRAINED = 0.5  # test accuracy that counts as trained (chance is 0.1)
LOSS, WRT = "last", "params"  # the paper's Fig. 2 top row


def lattice_checks(summary: list[dict]) -> list[tuple[str, bool]]:
    at = {r["cell"]: r for r in summary if r["loss"] == LOSS and r["wrt"] == WRT}
    out = []
    if "vrnn" in at:
        r = at["vrnn"]
        out.append(("vrnn grows toward early/shallow (corner, shallow/deep, early/late > 1)",
                    r["corner"] > 1 and r["shallow/deep"] > 1 and r["early/late"] > 1))
    if "lstm" in at:
        r = at["lstm"]
        out.append(("lstm shrinks toward early/shallow (corner, shallow/deep < 0.1)",
                    r["corner"] < 0.1 and r["shallow/deep"] < 0.1))
    if "star" in at:
        r = at["star"]
        out.append(("star within one order of magnitude (diag max/min < 10; shallow/deep, early/late in (0.1, 10))",
                    r["diag max/min"] < 10 and 0.1 < r["shallow/deep"] < 10 and 0.1 < r["early/late"] < 10))
    if not out:
        out.append(("lattice rows for vrnn, lstm, star", False))
    return out


def accuracy_checks(acc: list[dict]) -> list[tuple[str, bool]]:
    out = []
    for task in sorted({r["task"] for r in acc}):
        mean = {(r["cell"], r["depth"]): r["mean"] for r in acc if r["task"] == task}
        deep = sorted({d for (_, d) in mean if d >= 8})
        ok = any((mean.get(("star", d)) or 0) >= TRAINED and (mean.get(("vrnn", d)) or 0) < TRAINED for d in deep)
        out.append((f"{task}: at some depth >= 8 star >= {TRAINED} where vrnn < {TRAINED}", ok))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=None, help="results dir (default: a new temporary one)")
    ap.add_argument("--sweep-id", default=None, help="check this finished sweep instead of launching one")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="--set overrides for the launch")
    args = ap.parse_args()
    results = args.results or tempfile.mkdtemp(prefix="deep-rnn-")
    sid = args.sweep_id
    if sid is None:
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "orchestrator.cli", "launch", "deep-rnn", "--scale", "quick",
               "--results", results] + [a for s in args.sets for a in ("--set", s)]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            print(r.stdout[-2000:], r.stderr[-4000:], sep="\n")
            return 2
        sid = r.stdout.split()[1]
        print(f"launched {sid} in {time.perf_counter() - t0:.0f} s (load average at the end "
              f"{os.getloadavg()[0]:.1f}); results {results}\n")
    sweep = resolve_sweep(results, sid)
    con = connect(results)
    summary = lattice_summary(con, sweep["sweep_id"])
    acc = accuracy(con, sweep["sweep_id"])

    print(f"## Lattice at init (sweep {sweep['sweep_id']}, scale {sweep.get('scale')})\n")
    print("| cell | loss | wrt | L x T | max/min | shallow/deep | early/late | corner | diag max/min |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in summary:
        print(f"| {r['cell']} | {r['loss']} | {r['wrt']} | {r['depth']} x {r['T']} | {r['max/min']:.3g} | "
              f"{r['shallow/deep']:.3g} | {r['early/late']:.3g} | {r['corner']:.3g} | {r['diag max/min']:.3g} |")
    print("\n## Test accuracy at depth >= 8 (mean over seeds; best seed; finished/seeds)\n")
    print("| task | cell | depth | accuracy | best | finished |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in acc:
        if r["depth"] >= 8:
            fmt = lambda v: "-" if v is None else f"{v:.3f}"
            print(f"| {r['task']} | {r['cell']} | {r['depth']} | {fmt(r['mean'])} | {fmt(r['best'])} | "
                  f"{r['n']}/{r['seeds']} |")
    checks = lattice_checks(summary) + accuracy_checks(acc)
    print("\n## Acceptance\n")
    for what, ok in checks:
        print(f"- [{'x' if ok else ' '}] {what}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
