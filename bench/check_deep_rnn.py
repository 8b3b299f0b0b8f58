"""Acceptance check of the deep-rnn sweep at quick scale (Turkoglu et al., STAR, Fig. 2 and Tables 3-4).

Launches ``sweep launch deep-rnn`` at a scale (quick by default) (or reads an existing sweep with --sweep-id), then prints:
(a) the lattice ratios at init per cell, from the ``lattice_init`` rows (definitions in
analysis/figures/deep_rnn.py: max/min over the lattice, shallow/deep = layer 1 / layer L (means over t),
early/late = t = 1 / t = T (means over layers), corner = (1, 1) / (L, T), diag max/min);
(b) the test accuracy per cell at every depth >= 8, per task. Exits 1 when the acceptance does not hold:
- vrnn grows toward early and shallow cells: corner > 1, shallow/deep > 1 and early/late > 1;
- lstm shrinks there: corner < 0.1 and shallow/deep < 0.1;
- star stays within one order of magnitude: diag max/min < 10, shallow/deep and early/late in (0.1, 10);
  (all three on the paper's Fig. 2 quantity: loss on the last output, gradient w.r.t. each cell's parameters)
- at some depth >= 8, on each task, star trains (accuracy >= TRAINED) where vrnn fails (accuracy < TRAINED).

    python bench/check_deep_rnn.py [--scale quick] [--results DIR] [--sweep-id ID] [--set key=value ...]
"""
from __future__ import annotations

import sys

from analysis.db import connect, resolve_sweep
from analysis.figures.deep_rnn import accuracy, lattice_summary
from sweep_check import sweep_under_check  # bench/, the script's own folder

TRAINED = 0.5  # test accuracy that counts as trained (chance is 0.1)
LOSS, WRT = "last", "params"  # the paper's Fig. 2 top row

NAME = "deep-rnn"


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
    results, sid = sweep_under_check(NAME, __doc__.splitlines()[0])
    sweep = resolve_sweep(results, sid)
    con = connect(results)
    summary = lattice_summary(con, sid)
    acc = accuracy(con, sid)

    print(f"## Lattice at init (sweep {sid}, scale {sweep.get('scale')})\n")
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
