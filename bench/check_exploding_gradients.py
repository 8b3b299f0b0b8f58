"""The acceptance check of the `exploding-gradients` sweep (Pascanu, Mikolov & Bengio 2013) at a scale (quick by
default): on the temporal order task the success rate with norm clipping is >= the plain-SGD rate at every
sequence length and strictly higher at one length or more (Fig. 7); the bifurcation diagram of
x <- 5 sigma(x) + b has two branches over an interval of b (two or more neighbouring grid values), all of it
inside the exact band from the tangency condition 5 sigma'(x) = 1, and one branch everywhere else (Fig. 4).

Runs the sweep on a private local Ray (or reads a finished one with --sweep-id), prints the success-rate table
(plain SGD vs each clipping threshold, per length, with mean solved step) and the bistable interval, and
exits 1 if any check fails.

    python bench/check_exploding_gradients.py [--scale quick] [--results DIR] [--sweep-id ID] [--set key=value ...]
"""
from __future__ import annotations

import sys

from analysis.db import connect, run_arrow
from analysis.figures.exploding_gradients import BANDS_SQL, success, tangency_band
from sweep_check import sweep_under_check  # bench/, the script's own folder

NAME = "exploding-gradients"


def main() -> int:
    results, sid = sweep_under_check(NAME, __doc__.splitlines()[0])
    con = connect(results)
    rows = success(con, sid)
    lens = sorted({r["seq_len"] for r in rows})
    clips = sorted({r["clip"] for r in rows})
    at = {(r["seq_len"], r["clip"]): r for r in rows}

    def cell(r: dict | None) -> str:
        if r is None:
            return "—"
        step = "" if r["mean_solved_step"] is None else f", mean step {r['mean_solved_step']:.0f}"
        frac = "" if r["clip"] == 0 else f", {100 * (r['clipped_frac'] or 0):.0f}% of steps clipped"
        return f"{r['rate']:.2f} ({r['solved']}/{r['runs']}{step}{frac})"

    print(f"\nsweep {sid}: success rate on the temporal order task (solved runs / runs)\n")
    print("| T | " + " | ".join("plain SGD" if c == 0 else f"clip {c:g}" for c in clips) + " |")
    print("| ---: |" + " --- |" * len(clips))
    for T in lens:
        print(f"| {T} | " + " | ".join(cell(at.get((T, c))) for c in clips) + " |")

    checks: dict[str, bool] = {}
    clipped = [c for c in clips if c > 0]
    checks["the sweep has plain-SGD and clipped runs at every length"] = bool(clipped) and all(
        (T, c) in at for T in lens for c in clips)
    if checks["the sweep has plain-SGD and clipped runs at every length"]:
        for c in clipped:
            ge = all(at[(T, c)]["rate"] >= at[(T, 0.0)]["rate"] for T in lens)
            gt = [T for T in lens if at[(T, c)]["rate"] > at[(T, 0.0)]["rate"]]
            checks[f"clip {c:g}: rate >= plain SGD at every length"] = ge
            checks[f"clip {c:g}: rate > plain SGD at one length or more (at T = {gt})"] = bool(gt)

    band = run_arrow(con, BANDS_SQL, [sid]).to_pylist()
    lo, hi = tangency_band()
    two = [i for i, r in enumerate(band) if r["n_points"] == 2]
    print(f"\nbifurcation of x <- 5 sigma(x) + b: {len(band)} values of b in "
          f"[{band[0]['b']:.3g}, {band[-1]['b']:.3g}]" if band else "\nbifurcation: no rows")
    if two:
        print(f"two branches at {len(two)} grid values, b in [{band[two[0]]['b']:.4f}, {band[two[-1]]['b']:.4f}]; "
              f"exact band from 5 sigma'(x) = 1: ({lo:.4f}, {hi:.4f})")
    checks["two branches over an interval of b (>= 2 neighbouring grid values)"] = (
        len(two) >= 2 and two == list(range(two[0], two[-1] + 1)))
    checks["every two-branch b inside the tangency band"] = bool(two) and all(lo <= band[i]["b"] <= hi for i in two)
    checks["one branch at every b outside the band"] = bool(band) and all(
        r["n_points"] == 1 for r in band if not lo <= r["b"] <= hi)
    print()
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
