"""The acceptance check of the `attractors` sweep (Ribeiro, Tiels, Aguirre & Schön 2020) at a scale (quick by
default):

1. sine generation: the stable LSTM ends with a much higher MSE than the LSTM and the orthogonal RNN (mean
   over seeds, at every length: sLSTM >= ``RATIO`` x the larger of the two; the paper: 0.49 vs 4.8e-3 / 4.1e-3);
2. the stable LSTM's attractor snapshots are single fixed points: every snapshot of every sLSTM trial (every
   step, every constant input, all random initial states of that input together) visits one point, and its
   largest Lyapunov exponent is negative;
3. few relevant symbols, at the longest length: the oRNN holds its accuracy (mean >= ``HOLD``) where the LSTM
   and the sLSTM drop toward chance (mean <= ``CHANCE_BAND``; chance is 0.25).

Runs the sweep on a private local Ray (or reads a finished one with --sweep-id), prints the numbers behind each
check and exits 1 if one fails.

    python bench/check_attractors.py [--scale quick] [--results DIR] [--sweep-id ID] [--set key=value ...]
"""
from __future__ import annotations

import sys

from analysis.db import connect, run_arrow
from analysis.figures.attractors import sine_mse, table1, trials
from sweep_check import sweep_under_check  # bench/, the script's own folder

NAME = "attractors"
RATIO = 3.0  # "much higher": sLSTM's sine MSE at least this many times the LSTM's and the oRNN's
HOLD = 0.8  # the oRNN's accuracy at the longest length
CHANCE_BAND = 0.4  # LSTM / sLSTM accuracy at the longest length: near chance (0.25)

SLSTM_SQL = """
SELECT t.task, count(*) AS snapshots, count(DISTINCT a.step) AS steps,
       max(a.n_points) AS max_points, max(a.lyapunov) AS max_lyapunov,
       count(*) FILTER (WHERE a.n_points <> 1) AS not_fixed
FROM attractor_summary a JOIN trials t USING (sweep_id, trial_id)
WHERE a.sweep_id = ? AND t.stage = 'seed' AND t.cell = 'slstm' AND a.init_id = -1
GROUP BY ALL ORDER BY t.task
"""
OTHERS_SQL = """
SELECT t.task, t.cell, max(a.n_points) AS max_points, max(a.lyapunov) AS max_lyapunov
FROM attractor_summary a JOIN trials t USING (sweep_id, trial_id)
WHERE a.sweep_id = ? AND t.stage = 'seed' AND a.init_id = -1 AND t.cell <> 'slstm'
GROUP BY ALL ORDER BY t.task, t.cell
"""


def main() -> int:
    results, sid = sweep_under_check(NAME, __doc__.splitlines()[0])
    con = connect(results)
    rows = trials(con, sid)
    checks: dict[str, bool] = {}

    # 1. sine MSE
    mse = sine_mse(rows)
    print(f"\nsweep {sid}\n\n1. sine generation, final MSE on the 100 training sequences (mean [min, max] over seeds)")
    for r in mse:
        print(f"   {r['cell']:6s} L={r['seq_len']:4d}  {r['mse']:.4g}  [{r['lo']:.4g}, {r['hi']:.4g}]  "
              f"({r['seeds']} seeds, {r['failed']} failed)" if r["mse"] is not None else f"   {r['cell']} all failed")
    for L in sorted({r["seq_len"] for r in mse}):
        at = {r["cell"]: r["mse"] for r in mse if r["seq_len"] == L}
        if all(at.get(c) is not None for c in ("lstm", "slstm", "ornn")):
            worst = max(at["lstm"], at["ornn"])
            print(f"   L={L}: sLSTM / max(LSTM, oRNN) = {at['slstm'] / worst:.1f}")
            checks[f"sine L={L}: sLSTM MSE {at['slstm']:.3g} >= {RATIO:g} x max(LSTM {at['lstm']:.3g}, "
                   f"oRNN {at['ornn']:.3g})"] = at["slstm"] >= RATIO * worst
        else:
            checks[f"sine L={L}: every cell has a finished seed"] = False

    # 2. sLSTM attractors
    print("\n2. attractor snapshots (per input, all initial states together): sLSTM")
    sl = run_arrow(con, SLSTM_SQL, [sid]).to_pylist()
    for r in sl:
        print(f"   {r['task']:8s} {r['snapshots']} snapshots at {r['steps']} steps: max distinct points "
              f"{r['max_points']}, {r['not_fixed']} not a single point, max Lyapunov {r['max_lyapunov']:+.3f}")
        checks[f"sLSTM {r['task']}: every snapshot is a single fixed point"] = r["not_fixed"] == 0
        checks[f"sLSTM {r['task']}: every Lyapunov exponent < 0"] = r["max_lyapunov"] < 0
    if not sl:
        checks["sLSTM attractor snapshots recorded"] = False
    print("   for comparison, the other cells (max over snapshots):")
    for r in run_arrow(con, OTHERS_SQL, [sid]).to_pylist():
        print(f"   {r['task']:8s} {r['cell']:6s} max distinct points {r['max_points']}, "
              f"max Lyapunov {r['max_lyapunov']:+.3f}")

    # 3. Table 1
    t1 = table1(rows)
    lens = sorted({r["seq_len"] for r in t1})
    print("\n3. few relevant symbols, validation accuracy (mean [min, max] over seeds; chance 0.25)")
    for L in lens:
        line = []
        for c in ("lstm", "slstm", "ornn"):
            r = next((r for r in t1 if r["cell"] == c and r["seq_len"] == L), None)
            line.append(f"{c} {r['acc']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]" if r and r["acc"] is not None
                        else f"{c} —")
        print(f"   L={L:4d}  " + "   ".join(line))
    if lens:
        L = lens[-1]
        acc = {r["cell"]: r["acc"] for r in t1 if r["seq_len"] == L}
        if all(acc.get(c) is not None for c in ("lstm", "slstm", "ornn")):
            checks[f"symbols L={L}: oRNN holds ({acc['ornn']:.3f} >= {HOLD})"] = acc["ornn"] >= HOLD
            for c in ("lstm", "slstm"):
                checks[f"symbols L={L}: {c} near chance ({acc[c]:.3f} <= {CHANCE_BAND})"] = acc[c] <= CHANCE_BAND
        else:
            checks[f"symbols L={L}: every cell has a finished seed"] = False
    else:
        checks["symbols trials recorded"] = False

    print()
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if checks and all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
