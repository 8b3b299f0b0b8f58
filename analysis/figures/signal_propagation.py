"""Zucchet & Orvieto (2024) Fig. 5, redrawn from the ``signal`` rows of a ``signal-propagation`` sweep.

A: mean(h^2) against the memory length t = 1/(1 - nu) (the ring's floor 1 - 1/t), per cell, without
LayerNorm: the cdiag's activity grows like 1/(1 - |lambda|^2), the LRU's (gamma-normalised) and the GRU's stay
flat. B: mean squared loss gradient of the recurrent parameters (solid) and of the others (dashed), without
LayerNorm; for the diagonal cells the recurrent gradient is split, as in the paper's Fig. 5B, into lambda's
magnitude nu (dash-dot) and angle theta (dotted): only the angle's grows for the LRU. C: the same gradients
without (solid) and with (dotted) LayerNorm. Values are means over the
stack's layers and over seeds (error bars: min and max over seeds), log-log axes.
"""
from __future__ import annotations

import os

import duckdb
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.db import AnalysisError, run_arrow

NAME = "signal-propagation"
CELL_ORDER = ("cdiag", "cdiag_norm", "lru", "gru")
QUANTITY_LABEL = {"act_sq": "mean $h^2$", "grad_sq_recurrent": "recurrent", "grad_sq_other": "other",
                  "grad_sq_nu": r"magnitude $\nu$", "grad_sq_theta": r"angle $\theta$"}
SPLIT_STYLES = {"grad_sq_nu": "-.", "grad_sq_theta": ":"}  # panel B, diagonal cells
C_STYLES = {(False, "grad_sq_recurrent"): "-", (False, "grad_sq_other"): "--",  # panel C: (LayerNorm, quantity)
            (True, "grad_sq_recurrent"): ":", (True, "grad_sq_other"): "-."}

SUMMARY_SQL = """
WITH per_trial AS (  -- mean over the stack's layers
    SELECT t.cell, t.nu, t.layer_norm, t.seed, s.quantity, avg(s.value) AS value
    FROM signal s JOIN trials t USING (sweep_id, trial_id)
    WHERE s.sweep_id = ? AND t.status = 'completed' AND s.step = 0 AND isfinite(s.value)
    GROUP BY ALL
)
SELECT cell, nu, layer_norm, quantity, count(*) AS seeds, avg(value) AS mean, min(value) AS lo, max(value) AS hi
FROM per_trial GROUP BY ALL ORDER BY cell, layer_norm, quantity, nu
"""


def summarize(con: duckdb.DuckDBPyConnection, sweep_id: str) -> list[dict]:
    """One dict per (cell, nu, layer_norm, quantity): seeds, mean, lo, hi (over seeds, of the layer mean)."""
    return run_arrow(con, SUMMARY_SQL, [sweep_id]).to_pylist()


def draw(con: duckdb.DuckDBPyConnection, sweep: dict, out_dir: str) -> list[str]:
    """fig5.png (panels A-C) and signal-propagation.md in ``out_dir``; returns their paths."""
    sid = sweep["sweep_id"]
    rows = summarize(con, sid)
    if not rows:
        raise AnalysisError(f"sweep {sid} has no completed trials with signal rows yet (see `sweep status {sid}`)")
    os.makedirs(out_dir, exist_ok=True)
    png, md = os.path.join(out_dir, "fig5.png"), os.path.join(out_dir, f"{NAME}.md")
    _fig5(rows, sid).savefig(png, dpi=150)
    with open(md, "w") as f:
        f.write(markdown(rows, sweep))
    return [png, md]


def _t(nu: float) -> float:
    return 1.0 / (1.0 - nu)


def _cells(rows: list[dict]) -> list[str]:
    return sorted({r["cell"] for r in rows}, key=lambda c: (CELL_ORDER.index(c) if c in CELL_ORDER else 99, c))


def _line(ax, rows, cell, ln, quantity, color, style, label):
    pts = sorted((r for r in rows if r["cell"] == cell and r["layer_norm"] == ln and r["quantity"] == quantity),
                 key=lambda r: r["nu"])
    if not pts:
        return
    ax.errorbar([_t(r["nu"]) for r in pts], [r["mean"] for r in pts],
                yerr=[[r["mean"] - r["lo"] for r in pts], [r["hi"] - r["mean"] for r in pts]],
                color=color, linestyle=style, marker="o", markersize=4, capsize=2, label=label)


def _fig5(rows: list[dict], sid: str) -> Figure:
    fig = Figure(figsize=(16, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    cells = _cells(rows)
    color = {c: f"C{i}" for i, c in enumerate(cells)}
    for c in cells:
        _line(axes[0], rows, c, False, "act_sq", color[c], "-", c)
        split = any(r["cell"] == c and r["quantity"] in SPLIT_STYLES for r in rows)
        if split:  # Fig. 5B: lambda's magnitude and angle in place of the lumped recurrent gradient
            for q, style in SPLIT_STYLES.items():
                _line(axes[1], rows, c, False, q, color[c], style, f"{c}, {QUANTITY_LABEL[q]}")
        else:
            _line(axes[1], rows, c, False, "grad_sq_recurrent", color[c], "-", f"{c}, recurrent")
        _line(axes[1], rows, c, False, "grad_sq_other", color[c], "--", f"{c}, other")
        for (ln, q), style in C_STYLES.items():
            _line(axes[2], rows, c, ln, q, color[c], style, None)
    titles = ("A: activity, no normalisation", "B: gradients, no normalisation",
              "C: gradients without / with LayerNorm")
    ylabels = (r"mean $|h_t|^2$ (mean over layers)", r"mean squared gradient $(\partial L/\partial\theta)^2$",
               r"mean squared gradient $(\partial L/\partial\theta)^2$")
    for ax, title, ylabel in zip(axes, titles, ylabels):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"memory length $t$; $|\lambda| \in [1 - 1/t,\ 1 - 1/(2t)]$ at init")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=11)
        ax.grid(True, which="major", alpha=0.3)
    for ax in axes[:2]:
        ax.legend(fontsize=8)
    proxies = [Line2D([], [], color=color[c], label=c) for c in cells] + [
        Line2D([], [], color="0.3", linestyle=style, label=f"{QUANTITY_LABEL[q]}, {'LayerNorm' if ln else 'no norm'}")
        for (ln, q), style in C_STYLES.items()]
    axes[2].legend(handles=proxies, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    fig.suptitle(f"Signal propagation at initialisation, deep residual stacks (Zucchet & Orvieto Fig. 5)\n"
                 f"sweep {sid}", fontsize=11)
    return fig


def markdown(rows: list[dict], sweep: dict) -> str:
    sid, scale = sweep["sweep_id"], sweep.get("scale") or "quick"
    lines = [f"# Signal propagation at initialisation — sweep `{sid}`", "",
             "Zucchet & Orvieto (2024), Fig. 5: per cell and memory length t (ring |λ| ∈ [1 − 1/t, 1 − 1/(2t)]), "
             "the mean over the stack's layers of mean(h²) and of the mean squared loss gradient of the recurrent "
             "and the other parameters (diagonal cells: also of λ's magnitude ν and angle θ); mean over seeds.",
             f"Scale `{sweep.get('scale')}`, created {sweep.get('created_at')}. "
             f"Reproduce: `sweep launch {NAME} --scale {scale}`, then `sweep report {NAME}`.", "",
             "| cell | LayerNorm | t | ν | seeds | mean h² | grad² recurrent | grad² other | grad² ν | grad² θ |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    keyed = {(r["cell"], r["layer_norm"], r["nu"], r["quantity"]): r for r in rows}
    for cell in _cells(rows):
        for ln in (False, True):
            for nu in sorted({r["nu"] for r in rows if r["cell"] == cell and r["layer_norm"] == ln}):
                vals = [keyed.get((cell, ln, nu, q)) for q in QUANTITY_LABEL]
                seeds = max((v["seeds"] for v in vals if v), default=0)
                cells = " | ".join("—" if v is None else f"{v['mean']:.3g}" for v in vals)
                lines.append(f"| {cell} | {'on' if ln else 'off'} | {_t(nu):.3g} | {nu:.4g} | {seeds} | {cells} |")
    return "\n".join(lines) + "\n"
