"""Ribeiro, Tiels, Aguirre & Schön (AISTATS 2020), "Beyond exploding and vanishing gradients: analysing RNN
training using attractors and smoothness", redrawn from an ``attractors`` sweep:

- ``table1.md`` / ``table1.png``: Table 1, validation accuracy of the symbols task against the sequence length
  per cell (mean over seeds; chance 0.25). The paper: LSTM 1.00/1.00/1.00/0.25/0.27, sLSTM
  1.00/1.00/0.27/0.26/0.26, oRNN 1.000/1.000/0.999/0.995/0.970 at lengths 50/100/200/300/500.
- ``fig4_sine_bifurcation.png``: Fig. 4, the attractor snapshots over training for the sine task, one column
  per cell: x (the probe's projection, the output y_t at the sweep's settings) and dx = x_t - x_{t-1}
  against the training step, for the constant input nearest 0.218 (the paper's), at the longest length,
  seed 0. A single fixed point per snapshot is one dot per step with dx = 0; a periodic attractor is a
  vertical band of x values with dx on both sides of 0.
- ``fig7_symbols_bifurcation.png``: Fig. 7, the same for the symbols task with the one-hot input p and the
  (p,p) logit, at the length nearest 100 (the paper's).
- ``fig5_6_training.png``: Figs. 5-6, the training loss against the step per cell (sine: MSE; symbols:
  cross-entropy per length), log y, averaged over windows of steps and over seeds.
- ``fig1_chaotic_lstm.png``: Fig. 1, the chaotic LSTM's bifurcation diagram over s next to the loss along
  theta(s) = s theta_true (the ``chaotic_lstm`` analysis); jagged where the diagram is chaotic.
- ``attractors.md``: the sine MSE per cell (the paper: LSTM 4.8e-3, sLSTM 0.49, oRNN 4.1e-3), the attractor
  summary (distinct points and largest Lyapunov exponent of the last snapshot per cell and task) and the
  chaotic LSTM's exponents.
Only seed-stage trials count for the trained models; diverged or failed seeds are counted apart.
"""
from __future__ import annotations

import math
import os

import duckdb
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis.db import AnalysisError, run_arrow

NAME = "attractors"
CELL_ORDER = ("lstm", "slstm", "ornn")
LABELS = {"lstm": "LSTM", "slstm": "sLSTM", "ornn": "oRNN"}
SYMBOLS = ("p", "q", "a", "b", "c", "d")  # the symbols task's one-hot channels
SINE_INPUT = 0.218  # the paper's Fig. 4 input
SYMBOLS_LENGTH = 100  # the paper's Fig. 7 length
CURVE_POINTS = 150  # windows per training curve

TRIALS_SQL = """
SELECT trial_id, task, cell, seq_len, seed, status, final_loss, final_metric, steps_done, solved_step
FROM trials WHERE sweep_id = ? AND stage = 'seed' AND status <> 'running'
"""


def trials(con: duckdb.DuckDBPyConnection, sid: str) -> list[dict]:
    return run_arrow(con, TRIALS_SQL, [sid]).to_pylist()


def _ok(r: dict) -> bool:
    return r["status"] == "completed" and r["final_loss"] is not None and math.isfinite(r["final_loss"])


def _cells(rows: list[dict]) -> list[str]:
    return sorted({r["cell"] for r in rows}, key=lambda c: (CELL_ORDER.index(c) if c in CELL_ORDER else 9, c))


def _color(cell: str) -> str:
    return f"C{CELL_ORDER.index(cell)}" if cell in CELL_ORDER else "C7"


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def table1(rows: list[dict]) -> list[dict]:
    """Per (cell, seq_len) of the symbols task: mean final accuracy over ok seeds, min, max, seeds, failed."""
    out = []
    sym = [r for r in rows if r["task"] == "symbols"]
    for cell in _cells(sym):
        for L in sorted({r["seq_len"] for r in sym}):
            g = [r for r in sym if r["cell"] == cell and r["seq_len"] == L]
            if not g:
                continue
            acc = [r["final_metric"] for r in g if _ok(r) and r["final_metric"] is not None]
            out.append(dict(cell=cell, seq_len=L, acc=_mean(acc), lo=min(acc, default=None),
                            hi=max(acc, default=None), seeds=len(g), failed=len(g) - len(acc)))
    return out


def sine_mse(rows: list[dict]) -> list[dict]:
    """Per (cell, seq_len) of the sine task: mean final MSE over ok seeds (and the spread)."""
    out = []
    sine = [r for r in rows if r["task"] == "sine"]
    for cell in _cells(sine):
        for L in sorted({r["seq_len"] for r in sine}):
            g = [r for r in sine if r["cell"] == cell and r["seq_len"] == L]
            if not g:
                continue
            mse = [r["final_loss"] for r in g if _ok(r)]
            out.append(dict(cell=cell, seq_len=L, mse=_mean(mse), lo=min(mse, default=None),
                            hi=max(mse, default=None), seeds=len(g), failed=len(g) - len(mse)))
    return out


def draw(con: duckdb.DuckDBPyConnection, sweep: dict, out_dir: str) -> list[str]:
    """Write the figures and tables listed in the module docstring into ``out_dir``; return their paths."""
    sid = sweep["sweep_id"]
    rows = trials(con, sid)
    if not rows:
        raise AnalysisError(f"sweep {sid} has no finished seed-stage trials yet (see `sweep status {sid}`)")
    os.makedirs(out_dir, exist_ok=True)
    paths = []

    def save(fig: Figure | None, name: str) -> None:
        if fig is not None:
            path = os.path.join(out_dir, name)
            fig.savefig(path, dpi=130)
            paths.append(path)

    t1, mse = table1(rows), sine_mse(rows)
    save(_table1_fig(t1, sid), "table1.png")
    save(_bifurcation_fig(con, sid, rows, "sine"), "fig4_sine_bifurcation.png")
    save(_bifurcation_fig(con, sid, rows, "symbols"), "fig7_symbols_bifurcation.png")
    save(_curves_fig(con, sid), "fig5_6_training.png")
    chaos = _chaotic(con, sid)
    save(_fig1(chaos, sid), "fig1_chaotic_lstm.png")
    md = os.path.join(out_dir, "table1.md")
    with open(md, "w") as f:
        f.write(_table1_md(t1, sweep))
    summary = os.path.join(out_dir, f"{NAME}.md")
    with open(summary, "w") as f:
        f.write(_summary_md(mse, attractor_summary(con, sid), chaos, sweep))
    return paths + [md, summary]


# ------------------------------------------------------------------------------------------ Table 1
def _table1_fig(t1: list[dict], sid: str) -> Figure | None:
    if not t1:
        return None
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for cell in _cells(t1):
        pts = [r for r in t1 if r["cell"] == cell and r["acc"] is not None]
        if not pts:
            continue
        ax.errorbar([r["seq_len"] for r in pts], [r["acc"] for r in pts],
                    yerr=[[r["acc"] - r["lo"] for r in pts], [r["hi"] - r["acc"] for r in pts]],
                    marker="o", capsize=3, color=_color(cell), label=LABELS.get(cell, cell))
    ax.axhline(0.25, color="0.4", linestyle="--", linewidth=1, label="chance (0.25)")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("sequence length L")
    ax.set_ylabel("validation accuracy (mean, bars: min-max over seeds)")
    ax.set_title(f"Few relevant symbols: accuracy vs length (Table 1)\nsweep {sid}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    return fig


def _table1_md(t1: list[dict], sweep: dict) -> str:
    sid = sweep["sweep_id"]
    lens = sorted({r["seq_len"] for r in t1})
    cells = _cells(t1)
    lines = [f"# Table 1 — sweep `{sid}`", "",
             "Ribeiro et al. (2020) Table 1: validation accuracy on the few-relevant-symbols task (1000 validation "
             "sequences), mean over seeds (min–max in brackets when seeds differ). Chance: 0.25. Paper: LSTM "
             "1.00/1.00/1.00/0.25/0.27, sLSTM 1.00/1.00/0.27/0.26/0.26, oRNN 1.000/1.000/0.999/0.995/0.970 "
             "at L = 50/100/200/300/500.", ""]
    if not t1:
        return "\n".join(lines + ["(the sweep has no symbols trials)"]) + "\n"
    lines += ["| L | " + " | ".join(LABELS.get(c, c) for c in cells) + " |",
              "| ---: | " + " | ".join("---:" for _ in cells) + " |"]
    for L in lens:
        cols = []
        for c in cells:
            r = next((r for r in t1 if r["cell"] == c and r["seq_len"] == L), None)
            if r is None or r["acc"] is None:
                cols.append("—" if r is None else f"failed ({r['failed']}/{r['seeds']})")
                continue
            spread = f" [{r['lo']:.3f}–{r['hi']:.3f}]" if r["hi"] - r["lo"] > 5e-4 else ""
            fails = f" ({r['failed']}/{r['seeds']} failed)" if r["failed"] else ""
            cols.append(f"{r['acc']:.3f}{spread}{fails}")
        lines.append(f"| {L} | " + " | ".join(cols) + " |")
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------- bifurcation diagrams
SNAP_SQL = """
SELECT a.step, a.input_id, a.input_value, a.x, a.dx
FROM attractors a WHERE a.sweep_id = ? AND a.trial_id = ? AND a.input_id = ?
ORDER BY a.step
"""


def chosen_trial(rows: list[dict], task: str, cell: str) -> dict | None:
    """The trial drawn for (task, cell): sine at its longest length, symbols at the length nearest 100;
    the lowest seed."""
    g = [r for r in rows if r["task"] == task and r["cell"] == cell]
    if not g:
        return None
    lens = sorted({r["seq_len"] for r in g})
    L = lens[-1] if task == "sine" else min(lens, key=lambda n: (abs(n - SYMBOLS_LENGTH), n))
    return min((r for r in g if r["seq_len"] == L), key=lambda r: r["seed"])


def chosen_input(con: duckdb.DuckDBPyConnection, sid: str, trial_id: str, task: str) -> tuple[int, float] | None:
    """(input_id, input_value): sine the input nearest 0.218, symbols input 0 (the one-hot p)."""
    rows = run_arrow(con, "SELECT DISTINCT input_id, input_value FROM attractor_summary "
                          "WHERE sweep_id = ? AND trial_id = ? ORDER BY input_id", [sid, trial_id]).to_pylist()
    if not rows:
        return None
    if task == "sine":
        r = min(rows, key=lambda r: abs(r["input_value"] - SINE_INPUT))
    else:
        r = rows[0]
    return r["input_id"], r["input_value"]


def _bifurcation_fig(con: duckdb.DuckDBPyConnection, sid: str, rows: list[dict], task: str) -> Figure | None:
    cells = [c for c in _cells([r for r in rows if r["task"] == task])]
    panels = []
    for cell in cells:
        t = chosen_trial(rows, task, cell)
        inp = chosen_input(con, sid, t["trial_id"], task) if t else None
        if inp is None:
            continue
        snap = run_arrow(con, SNAP_SQL, [sid, t["trial_id"], inp[0]]).to_pydict()
        panels.append((cell, t, inp, snap))
    if not panels:
        return None
    fig = Figure(figsize=(4.2 * len(panels) + 0.6, 6.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(panels), squeeze=False, sharex="col")
    for j, (cell, t, (iid, val), snap) in enumerate(panels):
        for i, key in enumerate(("x", "dx")):
            ax = axes[i][j]
            ax.scatter(snap["step"], snap[key], s=1.5, color=_color(cell), alpha=0.5, linewidths=0, rasterized=True)
            ax.grid(True, alpha=0.3)
            if i == 0:
                inp = f"ω = {val:.3f}" if task == "sine" else f"input {SYMBOLS[iid] if iid < len(SYMBOLS) else iid}"
                ax.set_title(f"{LABELS.get(cell, cell)} (L = {t['seq_len']}, seed {t['seed']}, {inp})", fontsize=9)
            if j == 0:
                out = "y" if task == "sine" else "(p,p) logit"
                ax.set_ylabel(f"steady state $x_t$ [{out}]" if key == "x" else r"$\Delta x_t = x_t - x_{t-1}$")
            if i == 1:
                ax.set_xlabel("training step")
    what = "sine generation (Fig. 4)" if task == "sine" else "few relevant symbols (Fig. 7)"
    fig.suptitle(f"Attractor snapshots over training: {what}, sweep {sid}", fontsize=10)
    return fig


# ----------------------------------------------------------------------------------- training curves
CURVE_SQL = """
WITH s AS (
    SELECT t.task, t.cell, t.seq_len, t.seed, s.step, s.loss
    FROM steps s JOIN trials t USING (sweep_id, trial_id)
    WHERE s.sweep_id = ? AND t.stage = 'seed' AND isfinite(s.loss)
), w AS (SELECT task, max(step) AS last FROM s GROUP BY task)
SELECT s.task, cell, seq_len, floor((step - 1) * ? / greatest(w.last, 1)) AS bin,
       avg(step) AS step, avg(loss) AS loss
FROM s JOIN w USING (task) GROUP BY ALL ORDER BY s.task, cell, seq_len, bin
"""


def _curves_fig(con: duckdb.DuckDBPyConnection, sid: str) -> Figure | None:
    data = run_arrow(con, CURVE_SQL, [sid, CURVE_POINTS]).to_pylist()
    if not data:
        return None
    tasks = [t for t in ("sine", "symbols") if any(r["task"] == t for r in data)]
    tasks += sorted({r["task"] for r in data} - set(tasks))
    fig = Figure(figsize=(6 * len(tasks), 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    styles = ("-", "--", ":", "-.", (0, (5, 1)), (0, (1, 1)))
    for ax, task in zip(axes, tasks):
        rows = [r for r in data if r["task"] == task]
        lens = sorted({r["seq_len"] for r in rows})
        for cell in _cells(rows):
            for k, L in enumerate(lens):
                pts = [r for r in rows if r["cell"] == cell and r["seq_len"] == L and r["loss"] > 0]
                if pts:
                    ax.plot([r["step"] for r in pts], [r["loss"] for r in pts], color=_color(cell),
                            linestyle=styles[k % len(styles)], linewidth=1.2,
                            label=f"{LABELS.get(cell, cell)}, L = {L}")
        if task == "symbols":
            ax.axhline(math.log(4), color="0.4", linewidth=1, linestyle=":", label="chance (ln 4)")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel("training MSE" if task == "sine" else "training cross-entropy" if task == "symbols"
                      else "training loss")
        ax.set_title({"sine": "sine generation (Fig. 5)", "symbols": "few relevant symbols (Fig. 6)"}.get(task, task),
                     fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, ncol=2 if len(lens) > 2 else 1)
    fig.suptitle(f"Training curves (mean over seeds, {CURVE_POINTS} windows), sweep {sid}", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------ chaotic LSTM
def _chaotic(con: duckdb.DuckDBPyConnection, sid: str) -> dict | None:
    tid = run_arrow(con, "SELECT trial_id FROM trials WHERE sweep_id = ? AND stage = 'analysis' "
                         "AND (config_json LIKE '%\"analysis\": \"chaotic_lstm\"%' "
                         "OR config_json LIKE '%\"kind\": \"chaotic_lstm\"%')", [sid]).to_pylist()
    if not tid:
        return None
    tid = tid[0]["trial_id"]
    surface = run_arrow(con, "SELECT x AS s, loss FROM surface WHERE sweep_id = ? AND trial_id = ? AND param_x = 's' "
                             "ORDER BY x", [sid, tid]).to_pydict()
    diagram = run_arrow(con, "SELECT input_value AS s, x FROM attractors WHERE sweep_id = ? AND trial_id = ?",
                        [sid, tid]).to_pydict()
    summary = run_arrow(con, "SELECT input_value AS s, lyapunov, n_points FROM attractor_summary "
                             "WHERE sweep_id = ? AND trial_id = ? ORDER BY input_value", [sid, tid]).to_pylist()
    return dict(surface=surface, diagram=diagram, summary=summary) if surface["s"] else None


def _fig1(chaos: dict | None, sid: str) -> Figure | None:
    if chaos is None:
        return None
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2, sharex=True)
    ax1.scatter(chaos["diagram"]["s"], chaos["diagram"]["x"], s=0.3, color="k", alpha=0.4, linewidths=0,
                rasterized=True)
    ax1.set_xlabel("s  (weights θ(s) = s·θ_true)")
    ax1.set_ylabel("first output $h_{1,t}$, t = 101..200")
    ax1.set_title("a) bifurcation diagram", fontsize=10)
    ax2.plot(chaos["surface"]["s"], chaos["surface"]["loss"], color="C3", linewidth=0.7)
    ax2.plot([1.0], [0.0], "o", color="C0", label="θ_true (s = 1)")
    ax2.set_xlabel("s  (weights θ(s) = s·θ_true)")
    ax2.set_ylabel("MSE against the s = 1 outputs")
    ax2.set_title("b) cost function along θ(s)", fontsize=10)
    ax2.legend(fontsize=9)
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"Chaotic LSTM (Fig. 1), sweep {sid}", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------ summary
SUMMARY_SQL = """
WITH last AS (
    SELECT a.trial_id, max(a.step) AS step FROM attractor_summary a JOIN trials t USING (sweep_id, trial_id)
    WHERE a.sweep_id = ? AND t.stage = 'seed' GROUP BY ALL
)
SELECT t.task, t.cell, t.seq_len,
       count(DISTINCT a.trial_id) AS trials,
       max(a.n_points) FILTER (WHERE a.init_id = -1) AS max_points_last,
       max(a.lyapunov) FILTER (WHERE a.init_id = -1) AS max_lyapunov_last
FROM attractor_summary a JOIN last l ON a.trial_id = l.trial_id AND a.step = l.step
JOIN trials t ON t.sweep_id = a.sweep_id AND t.trial_id = a.trial_id
WHERE a.sweep_id = ? GROUP BY ALL ORDER BY t.task, t.cell, t.seq_len
"""
EVERY_SQL = """
SELECT t.task, t.cell, max(a.n_points) AS max_points_any
FROM attractor_summary a JOIN trials t USING (sweep_id, trial_id)
WHERE a.sweep_id = ? AND t.stage = 'seed' AND a.init_id = -1 GROUP BY ALL
"""


def attractor_summary(con: duckdb.DuckDBPyConnection, sid: str) -> list[dict]:
    """Per (task, cell, seq_len): the most distinct points and the largest exponent over inputs and seeds at
    each trial's last snapshot, plus the most points over every snapshot of the (task, cell)."""
    last = run_arrow(con, SUMMARY_SQL, [sid, sid]).to_pylist()
    every = {(r["task"], r["cell"]): r["max_points_any"] for r in run_arrow(con, EVERY_SQL, [sid]).to_pylist()}
    order = {c: i for i, c in enumerate(CELL_ORDER)}
    return sorted((dict(r, max_points_any=every.get((r["task"], r["cell"]))) for r in last),
                  key=lambda r: (r["task"], order.get(r["cell"], len(order)), r["cell"], r["seq_len"]))


def _fmt(v: float | None, spec: str = ".3g") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _summary_md(mse: list[dict], att: list[dict], chaos: dict | None, sweep: dict) -> str:
    sid, scale = sweep["sweep_id"], sweep.get("scale") or "quick"
    lines = [f"# Attractors — sweep `{sid}`", "",
             f"Ribeiro et al. (2020). Sweep `{sid}` (scale `{sweep.get('scale')}`, created {sweep.get('created_at')}). "
             f"Reproduce: `sweep launch {NAME} --scale {scale}`, then `sweep report {NAME}`.", "",
             "## Sine generation: final MSE (whole training set)", "",
             "Paper (T = 400, 4000 epochs): LSTM 4.8e-3, sLSTM 0.49, oRNN 4.1e-3.", "",
             "| cell | L | seeds | failed | mean MSE | min | max |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in mse:
        lines.append(f"| {LABELS.get(r['cell'], r['cell'])} | {r['seq_len']} | {r['seeds']} | {r['failed']} | "
                     f"{_fmt(r['mse'])} | {_fmt(r['lo'])} | {_fmt(r['hi'])} |")
    lines += ["", "## Attractor snapshots", "",
              "Per (task, cell, L): at each trial's last snapshot, the most distinct (x, dx) points over all "
              "initial states of one input (1 = a single fixed point) and the largest Lyapunov exponent, maxima "
              "over inputs and seeds; and the most points in any snapshot of the (task, cell).", "",
              "| task | cell | L | trials | points (last) | Lyapunov (last) | points (any snapshot) |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in att:
        lines.append(f"| {r['task']} | {LABELS.get(r['cell'], r['cell'])} | {r['seq_len']} | {r['trials']} | "
                     f"{r['max_points_last']} | {_fmt(r['max_lyapunov_last'], '+.3f')} | {r['max_points_any']} |")
    if chaos is not None:
        lines += ["", "## Chaotic LSTM (Fig. 1)", "",
                  "Largest Lyapunov exponent along θ(s) = s·θ_true (paper: chaotic for about 0.9 ≤ s ≤ 1.45).", "",
                  "| s | Lyapunov | distinct points |", "| ---: | ---: | ---: |"]
        for target in (0.5, 0.9, 1.0, 1.2, 1.45, 1.6, 2.0):
            r = min(chaos["summary"], key=lambda r: abs(r["s"] - target))
            lines.append(f"| {r['s']:.3f} | {_fmt(r['lyapunov'], '+.3f')} | {r['n_points']} |")
        chaotic = [r["s"] for r in chaos["summary"] if r["lyapunov"] is not None and r["lyapunov"] > 0.01]
        if chaotic:
            lines += ["", f"Positive exponents (> 0.01) at {len(chaotic)} of {len(chaos['summary'])} values of s, "
                          f"between s = {min(chaotic):.3f} and {max(chaotic):.3f}."]
    return "\n".join(lines) + "\n"
