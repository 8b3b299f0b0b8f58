"""The rate landscape of a grid sweep: final loss against learning rate, one small panel per cell, one line
per nu0, the chosen rate of each line marked (the ``lr_landscape`` view, analysis.selection). The first figure
to open when a point of Fig. 3A looks wrong: was the chosen rate at the edge of the grid, did seeds diverge?
"""
from __future__ import annotations

import math

import duckdb
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, NullLocator

from analysis.db import run_arrow

GRID_TICKS = 7  # a panel with at most this many rates labels each one on its x axis
SQL = """SELECT cell, depth, nu, lr, mean, se, seeds, diverged, pruned, selected FROM lr_landscape
WHERE sweep_id = ? ORDER BY cell, depth, nu, lr"""


def rows(con: duckdb.DuckDBPyConnection, sweep_id: str) -> list[dict]:
    return run_arrow(con, SQL, [sweep_id]).to_pylist()


def figure(rows: list[dict], sid: str, cell_key=lambda c: (0, c)) -> Figure:
    """Panels of final loss (mean ± s.e. over completed seeds) vs lr; a rate with a diverged seed (or none
    completed) is an x at the panel's top edge, one the tpe pruner stopped a v there; the selected rate of each
    nu0 a large hollow circle."""
    cells = sorted({r["cell"] for r in rows}, key=cell_key)
    cols = min(4, max(1, len(cells)))
    n_rows = max(1, math.ceil(len(cells) / cols))
    fig = Figure(figsize=(max(6.5, 3.2 * cols + 1.5), 2.8 * n_rows + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, cols, squeeze=False)
    nus = sorted({r["nu"] for r in rows})
    colors = {nu: f"C{i % 10}" for i, nu in enumerate(nus)}
    for k, ax in enumerate(axes.flat):
        if k >= len(cells):
            ax.set_visible(False)
            continue
        cell = cells[k]
        for nu in nus:
            line = [r for r in rows if r["cell"] == cell and r["nu"] == nu]
            pts = [r for r in line if r["mean"] is not None]
            if pts:
                ax.errorbar([r["lr"] for r in pts], [r["mean"] for r in pts],
                            yerr=[[min(r["se"] or 0, 0.999 * r["mean"]) for r in pts], [r["se"] or 0 for r in pts]],
                            color=colors[nu], marker="o", markersize=3, capsize=2, label=f"{nu:g}")
            for r in line:
                if r["selected"] and r["mean"] is not None:
                    ax.plot(r["lr"], r["mean"], "o", markersize=10, markerfacecolor="none",
                            markeredgecolor=colors[nu], markeredgewidth=1.5)
                if r["pruned"] or r["mean"] is None or r["diverged"]:
                    ax.plot(r["lr"], 0.97, "v" if r["pruned"] else "x", color=colors[nu],
                            transform=ax.get_xaxis_transform(), clip_on=False)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())  # a range under a decade would label its minor ticks too
        lrs = sorted({r["lr"] for r in rows if r["cell"] == cell})
        if len(lrs) <= GRID_TICKS and all(b >= 1.5 * a for a, b in zip(lrs, lrs[1:])):  # a grid: each rate labelled
            #                                                           (tpe's rates keep the log axis's own ticks)
            ax.set_xticks(lrs, [f"{x:.2g}" for x in lrs])
            ax.xaxis.set_minor_locator(NullLocator())
        else:
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(cell, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("learning rate", fontsize=8)
        ax.set_ylabel("final loss", fontsize=8)
        ax.tick_params(labelsize=7)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, title=r"$\nu_0$", loc="outside right upper", fontsize=8)
    marks = "circle: chosen rate; x: a seed diverged" + ("; v: pruned" if any(r["pruned"] for r in rows) else "")
    fig.suptitle(f"Rate landscape, sweep {sid}\n{marks}", fontsize=10)
    return fig
