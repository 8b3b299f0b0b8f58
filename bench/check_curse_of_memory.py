"""The acceptance check of the `curse-of-memory` sweep (Zucchet & Orvieto 2024, Fig. 3A/3B) at a scale (quick by
default), on the paper's statistic: each group's chosen rate (``WHERE selected``), mean final loss over seeds.

1. the grid protocol chose exactly one rate per group;
2. every diagonal cell (cdiag, cdiag_norm, cdiag_exp, lru) stays low at every nu0 (mean <= ``DIAG_MAX``);
3. the dense rnn rises by orders of magnitude from the smallest to the largest nu0 (>= ``RISE`` x);
4. at the largest nu0 blockdiag sits between them: above every diagonal cell, below the rnn.

Runs the sweep on a private local Ray (or reads a finished one with --sweep-id), prints the table behind each
check and exits 1 if one fails.

    python bench/check_curse_of_memory.py [--scale quick] [--results DIR] [--sweep-id ID] [--set key=value ...]
"""
from __future__ import annotations

import sys

from analysis.db import connect, run_arrow
from analysis.figures.curse_of_memory import summarize
from sweep_check import sweep_under_check  # bench/, the script's own folder

NAME = "curse-of-memory"
DIAGONAL = ("cdiag", "cdiag_norm", "cdiag_exp", "lru")
DIAG_MAX = 0.1  # "low": the paper's diagonal cells sit near 1e-2 at every nu0 (quick: <= 0.04)
RISE = 100.0  # "orders of magnitude": rnn at the largest nu0 over rnn at the smallest

RATES_SQL = """SELECT group_key, count(DISTINCT lr) FILTER (WHERE selected) AS chosen, count(DISTINCT lr) AS rates
FROM trials WHERE sweep_id = ? AND stage = 'seed' GROUP BY ALL ORDER BY ALL"""


def main() -> int:
    results, sid = sweep_under_check(NAME, __doc__.splitlines()[0])
    con = connect(results)
    checks: dict[str, bool] = {}
    groups = run_arrow(con, RATES_SQL, [sid]).to_pylist()
    checks[f"1. one chosen rate in each of {len(groups)} groups"] = bool(groups) and all(
        g["chosen"] == 1 for g in groups)

    rows = [r for r in summarize(con, sid) if r["depth"] == 1]
    print(f"\nsweep {sid}: final loss at the chosen rate (mean ± se over seeds)")
    nus = sorted({r["nu"] for r in rows})
    at = {(r["cell"], r["nu"]): r for r in rows}
    print("   cell       " + "".join(f"{f'nu0={n:g}':>27s}" for n in nus))
    for cell in sorted({r["cell"] for r in rows}, key=lambda c: [r["cell"] for r in rows].index(c)):
        cells = []
        for n in nus:
            r = at.get((cell, n))
            cells.append("—" if r is None or r["mean"] is None else
                         f"{r['mean']:.3g} ± {r['se'] or 0:.1g} @{r['lr']:.2g}")
        print(f"   {cell:11s}" + "".join(f"{c:>27s}" for c in cells))

    def mean(cell, nu):
        r = at.get((cell, nu))
        return None if r is None else r["mean"]

    for cell in DIAGONAL:
        for n in nus:
            m = mean(cell, n)
            checks[f"2. {cell} low at nu0={n:g} ({m if m is None else f'{m:.3g}'} <= {DIAG_MAX})"] = (
                m is not None and m <= DIAG_MAX)
    lo, hi = mean("rnn", nus[0]) if nus else None, mean("rnn", nus[-1]) if nus else None
    ratio = hi / lo if lo and hi else None
    checks[f"3. rnn rises from nu0={nus[0] if nus else '?'} to {nus[-1] if nus else '?'} by "
           f"{ratio if ratio is None else f'{ratio:.0f}'}x (>= {RISE:g}x)"] = ratio is not None and ratio >= RISE
    if nus:
        b, diag = mean("blockdiag", nus[-1]), [mean(c, nus[-1]) for c in DIAGONAL]
        ok = b is not None and hi is not None and None not in diag and max(diag) < b < hi
        checks[f"4. at nu0={nus[-1]:g}: max diagonal {max(d for d in diag if d is not None) if any(diag) else None:.3g}"
               f" < blockdiag {b if b is None else f'{b:.3g}'} < rnn {hi if hi is None else f'{hi:.3g}'}"] = ok

    print()
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if checks and all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
