"""Zucchet & Orvieto (2024), "Recurrent neural networks: vanishing and exploding gradients are not the
end of the story", Fig. 3A/3B, redrawn from the ``trials`` table of a ``curse-of-memory`` sweep.

3A: final loss against the memory parameter nu0 of the teacher, one line per cell (per cell and depth when
the sweep has several depths): the dense RNN degrades sharply as nu0 -> 1, the diagonal / normalised
cells much less. 3B: the ablation at the largest nu0, one bar per cell.

The paper's statistic: per (cell, depth, nu0) the chosen rate's seeds (``WHERE selected``: the rate of the
group's grid with the lowest mean final loss over seeds, analysis.selection). Mean and standard error (sample
std / sqrt(n)) are over the seeds whose final loss is finite and whose status is completed; diverged and failed
seeds are counted apart. lr_landscape.png (analysis.figures.lr_landscape) shows every rate the choice was among.
"""
from __future__ import annotations

import math
import os

import duckdb
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from analysis.db import AnalysisError, run_arrow

from . import hessian_optimum, lr_landscape

NAME = "curse-of-memory"
CELL_ORDER = ("rnn", "blockdiag", "cdiag", "cdiag_norm", "cdiag_exp", "lru", "gru", "lstm")  # the paper's ablation
_MARKERS = "osD^vP*X"
_STYLES = ("-", "--", ":", "-.")
_HATCHES = (None, "//", "..", "xx")

SUMMARY_SQL = """
WITH t AS (
    SELECT cell, depth, nu, lr, final_loss,
           coalesce(status = 'completed' AND isfinite(final_loss), false) AS ok
    FROM trials
    WHERE sweep_id = ? AND selected AND status <> 'running'
)
SELECT cell, depth, nu, any_value(lr) AS lr,
           count(*) AS seeds,
           count(*) FILTER (WHERE NOT ok) AS diverged,
           count(*) FILTER (WHERE ok) AS n,
           avg(final_loss) FILTER (WHERE ok) AS mean,
           stddev_samp(final_loss) FILTER (WHERE ok) / sqrt(count(*) FILTER (WHERE ok)) AS se
    FROM t GROUP BY cell, depth, nu
"""


def summarize(con: duckdb.DuckDBPyConnection, sweep_id: str) -> list[dict]:
    """One dict per (cell, depth, nu) at its best lr: cell, depth, nu, lr, seeds, diverged, n, mean, se
    (mean/se None when no seed finished with a finite loss; se None with fewer than two)."""
    rows = run_arrow(con, SUMMARY_SQL, [sweep_id]).to_pylist()
    return sorted(rows, key=lambda r: (_cell_key(r["cell"]), r["depth"] or 0, r["nu"]))


def draw(con: duckdb.DuckDBPyConnection, sweep: dict, out_dir: str) -> list[str]:
    """Write fig3a.png, fig3b.png and curse-of-memory.md into ``out_dir`` (plus fig4.png and its table when
    the sweep ran the hessian_opt stage); return their paths."""
    sid = sweep["sweep_id"]
    rows = summarize(con, sid)
    if not rows:
        raise AnalysisError(f"sweep {sid} has no finished seed-stage trials yet "
                            f"(see `sweep status {sid}`)")
    running = run_arrow(con, "SELECT count(*) AS n FROM trials WHERE sweep_id = ? AND status = 'running'",
                        [sid]).column("n")[0].as_py()
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, n) for n in ("fig3a.png", "fig3b.png", f"{NAME}.md", "lr_landscape.png")]
    _fig3a(rows, sid).savefig(paths[0], dpi=150)
    _fig3b(rows, sid).savefig(paths[1], dpi=150)
    lr_landscape.figure(lr_landscape.rows(con, sid), sid, _cell_key).savefig(paths[3], dpi=150)
    with open(paths[2], "w") as f:
        f.write(markdown(rows, sweep, running))
    return paths + hessian_optimum.draw(con, sweep, out_dir, CELL_ORDER)


# ------------------------------------------------------------------------------------------- figures
def _fig3a(rows: list[dict], sid: str) -> Figure:
    fig = Figure(figsize=(7, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    depths = sorted({r["depth"] for r in rows}, key=lambda d: d or 0)
    lost = []  # (cell, depth) points where every seed diverged: an x at the top edge
    for cell in _cells(rows):
        for j, depth in enumerate(depths):
            group = [r for r in rows if r["cell"] == cell and r["depth"] == depth]
            pts = [r for r in group if r["mean"] is not None]
            lost += [(r["nu"], cell) for r in group if r["mean"] is None]
            if not pts:
                continue
            label = cell if len(depths) == 1 else f"{cell}, depth {depth}"
            ax.errorbar([_x(r["nu"]) for r in pts], [r["mean"] for r in pts], yerr=_yerr(pts),
                        color=_color(cell), marker=_MARKERS[j % len(_MARKERS)],
                        linestyle=_STYLES[j % len(_STYLES)], capsize=3, markersize=5, label=label)
    for k, (nu, cell) in enumerate(lost):
        ax.plot(_x(nu), 0.97, marker="x", markersize=8, color=_color(cell), linestyle="none",
                transform=ax.get_xaxis_transform(), clip_on=False,
                label="all seeds diverged" if k == 0 else None)
    nus = sorted({r["nu"] for r in rows})
    ticks = _thin([_x(n) for n in nus], nus)
    ax.set_xticks([t for t, _ in ticks], [f"{n:g}" for _, n in ticks])
    ax.set_yscale("log")
    ax.set_xlabel(r"$\nu_0$ (teacher memory; axis spaced as $-\log_{10}(1-\nu_0)$)")
    ax.set_ylabel("final loss (mean ± s.e. over seeds)")
    ax.set_title(f"Curse of memory: final loss vs $\\nu_0$ (Fig. 3A)\nsweep {sid}", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda k: labels[k] == "all seeds diverged")  # that one last
    kw = dict(handles=[handles[k] for k in order], labels=[labels[k] for k in order], title="cell", fontsize=9)
    if len(handles) > 5:  # many lines: keep the legend off the data
        ax.legend(**kw, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    elif handles:
        ax.legend(**kw)
    return fig


def _fig3b(rows: list[dict], sid: str) -> Figure:
    nu = max(r["nu"] for r in rows)
    at = [r for r in rows if r["nu"] == nu]
    cells = _cells(at)
    depths = sorted({r["depth"] for r in at}, key=lambda d: d or 0)
    fig = Figure(figsize=(max(4.5, 1.1 * len(cells) * max(1, len(depths) / 2) + 2), 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_yscale("log")
    width = 0.8 / len(depths)
    finite = [r for r in at if r["mean"] is not None]
    lo = min((r["mean"] - (e if (e := r["se"]) and e < r["mean"] else 0) for r in finite), default=1e-3)
    hi = max((r["mean"] + (r["se"] or 0) for r in finite), default=1.0)
    bottom = lo / 4
    for j, depth in enumerate(depths):
        for i, cell in enumerate(cells):
            r = next((r for r in at if r["cell"] == cell and r["depth"] == depth), None)
            x = i + (j - (len(depths) - 1) / 2) * width
            if r is None:
                continue
            if r["mean"] is None:
                ax.text(x, bottom * 1.3, f"all {r['seeds']} seeds\ndiverged", ha="center", va="bottom",
                        fontsize=9, color="0.3")
                continue
            ax.bar(x, r["mean"] - bottom, bottom=bottom, width=width * 0.9, color=_color(cell),
                   hatch=_HATCHES[j % len(_HATCHES)], edgecolor="black", linewidth=0.6,
                   yerr=_yerr([r]), capsize=4)
            note = f"\n({r['diverged']}/{r['seeds']} diverged)" if r["diverged"] else ""
            ax.annotate(f"{r['mean']:.2g}{note}", (x, r["mean"] + (r["se"] or 0)), xytext=(0, 3),
                        textcoords="offset points", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(bottom, hi * 6)
    ax.set_xlim(-0.6, len(cells) - 0.4)
    ax.set_xticks(range(len(cells)), cells)
    ax.set_xlabel("cell")
    ax.set_ylabel("final loss (mean ± s.e. over seeds)")
    ax.set_title(f"Ablation at $\\nu_0$ = {nu:g} (Fig. 3B)\nsweep {sid}", fontsize=11)
    ax.grid(True, axis="y", which="major", alpha=0.3)
    if len(depths) > 1:  # depth is the hatch; neutral swatches so no cell's colour stands for it
        ax.legend(handles=[Patch(facecolor="white", edgecolor="black", hatch=_HATCHES[j % len(_HATCHES)],
                                 label=f"depth {d}") for j, d in enumerate(depths)], fontsize=9)
    return fig


def _x(nu: float) -> float:
    """Position of nu0 on the x axis: -log10(1 - nu0) spreads 0.9, 0.99, 0.999 evenly."""
    return -math.log10(max(1.0 - nu, 1e-9))


def _thin(xs: list[float], nus: list[float]) -> list[tuple[float, float]]:
    """Tick positions at the grid's nu0 values, dropping those too close to a kept neighbour."""
    span = (max(xs) - min(xs)) or 1.0
    kept: list[tuple[float, float]] = []
    for x, n in sorted(zip(xs, nus), reverse=True):  # keep the values near 1, where the effect is
        if not kept or kept[-1][0] - x >= 0.07 * span:
            kept.append((x, n))
    return kept[::-1]


def _yerr(pts: list[dict]) -> list[list[float]]:
    """±1 standard error, the lower bar cut short of zero so that it shows on a log axis."""
    se = [r["se"] or 0.0 for r in pts]
    return [[min(e, 0.999 * r["mean"]) for e, r in zip(se, pts)], se]


def _cells(rows: list[dict]) -> list[str]:
    return sorted({r["cell"] for r in rows}, key=_cell_key)


def _cell_key(cell: str) -> tuple[int, str]:
    return (CELL_ORDER.index(cell) if cell in CELL_ORDER else len(CELL_ORDER), cell or "")


def _color(cell: str) -> str:
    i = _cell_key(cell)[0]
    return f"C{i}" if i < len(CELL_ORDER) else f"C{(len(CELL_ORDER) + sum(map(ord, cell))) % 10}"


# ------------------------------------------------------------------------------------------ markdown
def markdown(rows: list[dict], sweep: dict, running: int = 0) -> str:
    sid, scale = sweep["sweep_id"], sweep.get("scale") or "quick"
    lines = [
        f"# Curse of memory — sweep `{sid}`",
        "",
        "Zucchet & Orvieto (2024), Fig. 3A/3B: final loss of the teacher-student task against the teacher's "
        "memory ν0, per cell.",
        f"Sweep `{sid}` (name `{sweep.get('name')}`, scale `{sweep.get('scale')}`, "
        f"created {sweep.get('created_at')}).",
        f"Reproduce: `sweep launch {NAME} --scale {scale}`, then `sweep report {NAME}`.",
        "",
        "Seed-stage trials at each group's chosen rate (`WHERE selected`): the rate of its grid with the lowest "
        "mean final loss over seeds (a rate with a diverged seed loses); lr_landscape.png shows every rate. "
        "Mean and standard error (sample std / √n) over the seeds that completed with a finite final loss; "
        "`diverged` counts diverged or failed seeds.",
    ]
    if running:
        lines.append(f"**{running} trial(s) still running**: these numbers are partial.")
    lines += ["", "| cell | depth | nu0 | lr | seeds | diverged | mean final loss | std err |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lr = "—" if r["lr"] is None else f"{r['lr']:.3g}"
        mean = "—" if r["mean"] is None else f"{r['mean']:.4g}"
        se = "—" if r["se"] is None else f"{r['se']:.4g}"
        lines.append(f"| {r['cell']} | {r['depth']} | {r['nu']:g} | {lr} | {r['seeds']} | {r['diverged']} "
                     f"| {mean} | {se} |")
    return "\n".join(lines) + "\n"
