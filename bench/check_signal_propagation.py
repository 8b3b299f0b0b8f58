"""The acceptance check of the `signal-propagation` sweep (Zucchet & Orvieto Fig. 5A/B) at a scale (quick by
default): without normalisation, the cdiag's mean(h^2) grows as nu -> 1 and the LRU's stays flat; the LRU's
angle gradient grows with t and its magnitude gradient does not (Fig. 5B).

Runs the sweep on a private local Ray (or reads a finished one with --sweep-id), prints mean(h^2) (mean over
layers and seeds) per cell and memory length t, and exits 1 if the check fails: cdiag increasing in t with a
last/first ratio > 100, lru's max/min over t < 3; lru's mean grad^2 of theta last/first > 10, of nu < 3.

    python bench/check_signal_propagation.py [--scale quick] [--results DIR] [--sweep-id ID] [--set key=value ...]
"""
from __future__ import annotations

import sys

from analysis.db import query_arrow
from sweep_check import sweep_under_check  # bench/, the script's own folder

NAME = "signal-propagation"


def main() -> int:
    results, sid = sweep_under_check(NAME, __doc__.splitlines()[0])
    rows = query_arrow(results, f"""
        SELECT cell, nu, 1 / (1 - nu) AS t, count(DISTINCT seed) AS seeds, avg(value) AS act
        FROM signal JOIN trials USING (sweep_id, trial_id)
        WHERE sweep_id = '{sid}' AND quantity = 'act_sq' AND NOT layer_norm AND status = 'completed'
        GROUP BY ALL ORDER BY cell, nu""").to_pylist()
    by_cell: dict[str, list[dict]] = {}
    for r in rows:
        by_cell.setdefault(r["cell"], []).append(r)
    ts = [r["t"] for r in by_cell["cdiag"]]
    print("\nmean(h^2), mean over layers and seeds, no normalisation\n")
    print("| cell | " + " | ".join(f"t = {t:.3g}" for t in ts) + " | last / first | max / min |")
    print("| --- |" + " ---: |" * (len(ts) + 2))
    for cell, rs in by_cell.items():
        a = [r["act"] for r in rs]
        print(f"| {cell} | " + " | ".join(f"{v:.3g}" for v in a) + f" | {a[-1] / a[0]:.3g} | {max(a) / min(a):.3g} |")
    cd, lru = [r["act"] for r in by_cell["cdiag"]], [r["act"] for r in by_cell["lru"]]
    checks = {
        "cdiag mean(h^2) increases with t": all(a < b for a, b in zip(cd, cd[1:])),
        "cdiag last/first > 100": cd[-1] / cd[0] > 100,
        "lru max/min < 3 (flat)": max(lru) / min(lru) < 3,
    }
    split = query_arrow(results, f"""
        SELECT 1 / (1 - nu) AS t, quantity, avg(value) AS v FROM signal JOIN trials USING (sweep_id, trial_id)
        WHERE sweep_id = '{sid}' AND cell = 'lru' AND quantity IN ('grad_sq_nu', 'grad_sq_theta')
          AND NOT layer_norm AND status = 'completed'
        GROUP BY ALL ORDER BY quantity, t""").to_pylist()
    print("\nlru, mean squared gradient of lambda's magnitude (nu) and angle (theta), no normalisation\n")
    print("| quantity | " + " | ".join(f"t = {t:.3g}" for t in ts) + " | last / first |")
    print("| --- |" + " ---: |" * (len(ts) + 1))
    g = {q: [r["v"] for r in split if r["quantity"] == q] for q in ("grad_sq_nu", "grad_sq_theta")}
    for q, v in g.items():
        print(f"| {q} | " + " | ".join(f"{x:.3g}" for x in v) + f" | {v[-1] / v[0]:.3g} |")
    checks["lru angle grad^2 grows with t (last/first > 10)"] = g["grad_sq_theta"][-1] / g["grad_sq_theta"][0] > 10
    checks["lru magnitude grad^2 does not (last/first < 3)"] = g["grad_sq_nu"][-1] / g["grad_sq_nu"][0] < 3
    print()
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
