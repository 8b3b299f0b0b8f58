"""Turkoglu et al., "Gating Revisited: Deep Multi-layer RNNs That Can Be Trained" (STAR), redrawn from a
``deep-rnn`` sweep: Fig. 2 (gradient magnitude on the depth x time lattice at init, one heatmap per cell, for
the loss on the last output and on all outputs) and Tables 3-4 (accuracy vs depth per cell on sequential and
permuted digits; pixel-by-pixel MNIST in the paper).

Lattice: the ``lattice`` rows of the ``lattice_init`` analysis trials (stage ``analysis``), one lattice per
cell (the trial's ``cell``). Colour is log10 of the gradient magnitude, one scale per figure row so cells
compare. Summary ratios per (cell, loss, wrt), all from the same rows (``lattice_summary``):
``max/min`` over the whole lattice; ``shallow/deep`` = mean over t of layer 1 / of layer L; ``early/late`` =
mean over layers of t = 1 / of t = T; ``corner`` = (layer 1, t = 1) / (layer L, t = T), the early-shallow
cell against the one where the last output's loss enters; ``diag max/min`` over the lattice diagonal
(layer l at t = 1 + (l - 1)(T - 1)/(L - 1)), the cells whose paths to the loss mix depth and time evenly.
Cells reached from the loss by one straight path (the top row far from t = T, the last column far from
layer L) decay geometrically for every cell type, so the whole-lattice max/min is large for all of them.

Accuracy: seed-stage trials; per (task, cell, depth) the mean final test accuracy over seeds (and the best
seed, as the paper reports the best model per variant and depth), with how many seeds failed or diverged.
"""
from __future__ import annotations

import math
import os

import duckdb
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from analysis.db import AnalysisError, run_arrow

NAME = "deep-rnn"
CELL_ORDER = ("vrnn", "lstm", "lstmf", "gru", "rhn", "star")
TASKS = {"digits": "sequential", "pdigits": "permuted"}
TABLE = {"digits": "Table 3", "pdigits": "Table 4"}
_MARKERS = "osD^vP*X"

LATTICE_SQL = """
SELECT t.cell, l.loss, l.wrt, l.layer, l.t, l.grad_norm
FROM lattice l JOIN trials t USING (sweep_id, trial_id)
WHERE l.sweep_id = ? AND t.stage = 'analysis' AND t.status = 'completed' AND l.step = 0
"""

ACCURACY_SQL = """
SELECT task, cell, depth,
       count(*) AS seeds,
       count(*) FILTER (WHERE status = 'completed' AND isfinite(final_metric)) AS n,
       avg(final_metric) FILTER (WHERE status = 'completed' AND isfinite(final_metric)) AS mean,
       stddev_samp(final_metric) FILTER (WHERE status = 'completed' AND isfinite(final_metric)) AS sd,
       max(final_metric) FILTER (WHERE status = 'completed' AND isfinite(final_metric)) AS best
FROM trials
WHERE sweep_id = ? AND stage = 'seed' AND status <> 'running'
GROUP BY ALL
"""


def lattices(con: duckdb.DuckDBPyConnection, sweep_id: str) -> dict[tuple[str, str, str], np.ndarray]:
    """{(cell, loss, wrt): array (L, T)} with [l - 1, t - 1] = grad_norm at layer l, step t."""
    tbl = run_arrow(con, LATTICE_SQL, [sweep_id]).to_pydict()
    out: dict[tuple[str, str, str], np.ndarray] = {}
    keys = list(zip(tbl["cell"], tbl["loss"], tbl["wrt"]))
    for key in set(keys):
        idx = [i for i, k in enumerate(keys) if k == key]
        L = max(tbl["layer"][i] for i in idx)
        T = max(tbl["t"][i] for i in idx)
        g = np.full((L, T), np.nan)
        for i in idx:
            g[tbl["layer"][i] - 1, tbl["t"][i] - 1] = tbl["grad_norm"][i]
        out[key] = g
    return out


def ratios(g: np.ndarray) -> dict[str, float]:
    """The summary ratios of one lattice (definitions in the module docstring)."""
    L, T = g.shape
    diag = np.array([g[l, round(l * (T - 1) / max(L - 1, 1))] for l in range(L)])
    return {"max/min": float(g.max() / g.min()), "shallow/deep": float(g[0].mean() / g[-1].mean()),
            "early/late": float(g[:, 0].mean() / g[:, -1].mean()), "corner": float(g[0, 0] / g[-1, -1]),
            "diag max/min": float(diag.max() / diag.min())}


def lattice_summary(con: duckdb.DuckDBPyConnection, sweep_id: str) -> list[dict]:
    """One dict per (cell, loss, wrt): cell, loss, wrt, depth, T and the ratios."""
    rows = []
    for (cell, loss, wrt), g in lattices(con, sweep_id).items():
        rows.append(dict(cell=cell, loss=loss, wrt=wrt, depth=g.shape[0], T=g.shape[1], **ratios(g)))
    return sorted(rows, key=lambda r: (_cell_key(r["cell"]), r["loss"] != "last", r["wrt"] != "params"))


def accuracy(con: duckdb.DuckDBPyConnection, sweep_id: str) -> list[dict]:
    """One dict per (task, cell, depth): seeds, n (finished), mean, sd, best accuracy."""
    rows = run_arrow(con, ACCURACY_SQL, [sweep_id]).to_pylist()
    return sorted(rows, key=lambda r: (r["task"], _cell_key(r["cell"]), r["depth"]))


def draw(con: duckdb.DuckDBPyConnection, sweep: dict, out_dir: str) -> list[str]:
    """Write fig2_lattice_last.png, fig2_lattice_all.png (when the sweep ran the lattice analyses),
    accuracy_vs_depth.png and deep-rnn.md into ``out_dir``; return their paths."""
    sid = sweep["sweep_id"]
    acc = accuracy(con, sid)
    grids = lattices(con, sid)
    if not acc and not grids:
        raise AnalysisError(f"sweep {sid} has no finished trials yet (see `sweep status {sid}`)")
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for loss in ("last", "all"):
        if any(k[1] == loss for k in grids):
            path = os.path.join(out_dir, f"fig2_lattice_{loss}.png")
            _lattice_figure(grids, loss, sid).savefig(path, dpi=130)
            paths.append(path)
    if acc:
        path = os.path.join(out_dir, "accuracy_vs_depth.png")
        _accuracy_figure(acc, sid).savefig(path, dpi=130)
        paths.append(path)
    path = os.path.join(out_dir, f"{NAME}.md")
    with open(path, "w") as f:
        f.write(markdown(acc, lattice_summary(con, sid) if grids else [], sweep))
    return paths + [path]


# ------------------------------------------------------------------------------------------- figures
def _lattice_figure(grids: dict, loss: str, sid: str) -> Figure:
    cells = sorted({k[0] for k in grids if k[1] == loss}, key=_cell_key)
    wrts = [w for w in ("params", "hidden") if any(k[1:] == (loss, w) for k in grids)]
    fig = Figure(figsize=(max(8.5, 2.6 * len(cells) + 1.4), 2.6 * len(wrts) + 1.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(wrts), len(cells), squeeze=False)
    for i, wrt in enumerate(wrts):
        gs = [grids[(c, loss, wrt)] for c in cells if (c, loss, wrt) in grids]
        lo = min(float(np.nanmin(g[g > 0])) for g in gs)
        hi = max(float(np.nanmax(g)) for g in gs)
        norm = LogNorm(vmin=lo, vmax=hi)
        im = None
        for j, cell in enumerate(cells):
            ax = axes[i, j]
            g = grids.get((cell, loss, wrt))
            if g is None:
                ax.axis("off")
                continue
            L, T = g.shape
            im = ax.imshow(np.clip(g, lo, None), origin="lower", aspect="auto", norm=norm, cmap="viridis",
                           extent=(0.5, T + 0.5, 0.5, L + 0.5))
            ax.set_title(f"{cell}  (max/min {g.max() / g.min():.2g})", fontsize=10)
            ax.set_xlabel("time step t")
            if j == 0:
                ax.set_ylabel(f"layer\n(d loss / d {'params' if wrt == 'params' else 'h'})")
            ticks = lambda n: sorted({1, *range(max(1, n // 4), n + 1, max(1, n // 4)), n})
            ax.set_xticks(ticks(T))
            ax.set_yticks(ticks(L))
        fig.colorbar(im, ax=list(axes[i]), label="mean gradient magnitude (log)", shrink=0.9)
    what = "the last output only, $\\mathcal{L}(h_T^L)$" if loss == "last" else \
        "all outputs, $\\mathcal{L}(h_1^L \\ldots h_T^L)$"
    fig.suptitle(f"Gradient magnitude on the depth × time lattice at init (STAR Fig. 2)\nloss on {what}; "
                 f"orthogonal weights, zero biases and states; sweep {sid}", fontsize=10)
    return fig


def _accuracy_figure(acc: list[dict], sid: str) -> Figure:
    tasks = [t for t in TASKS if any(r["task"] == t for r in acc)] + \
        sorted({r["task"] for r in acc} - set(TASKS))
    fig = Figure(figsize=(5.2 * len(tasks) + 1.5, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(tasks), squeeze=False, sharey=True)[0]
    depths = sorted({r["depth"] for r in acc})
    for ax, task in zip(axes, tasks):
        rows = [r for r in acc if r["task"] == task]
        for k, cell in enumerate(sorted({r["cell"] for r in rows}, key=_cell_key)):
            pts = sorted((r for r in rows if r["cell"] == cell and r["mean"] is not None), key=lambda r: r["depth"])
            if not pts:
                continue
            ax.errorbar([r["depth"] for r in pts], [r["mean"] for r in pts],
                        yerr=[r["sd"] or 0.0 for r in pts], color=_color(cell), marker=_MARKERS[k % len(_MARKERS)],
                        capsize=3, markersize=5, label=cell)
        ax.axhline(0.1, color="0.5", linestyle=":", linewidth=1, label="chance (10 classes)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.minorticks_off()
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("depth (stacked layers)")
        ax.set_title(f"{TASKS.get(task, task)} digits ({task}; {TABLE.get(task, '')})", fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("test accuracy (mean ± sd over seeds)")
    axes[-1].legend(title="cell", fontsize=9, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    fig.suptitle(f"Accuracy vs depth (STAR Tables 3-4 / Fig. 4), sweep {sid}", fontsize=11)
    return fig


def _cell_key(cell: str) -> tuple[int, str]:
    return (CELL_ORDER.index(cell) if cell in CELL_ORDER else len(CELL_ORDER), cell or "")


def _color(cell: str) -> str:
    return f"C{_cell_key(cell)[0] % 10}"


# ------------------------------------------------------------------------------------------ markdown
def _fmt(v: float | None) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"


def markdown(acc: list[dict], summary: list[dict], sweep: dict) -> str:
    sid = sweep["sweep_id"]
    lines = [f"# Deep RNNs (STAR, Turkoglu et al.) — sweep `{sid}`", "",
             f"Scale `{sweep.get('scale')}`. Accuracy is the final test accuracy, mean over seeds "
             "(best seed in brackets; failed or diverged seeds counted apart).", ""]
    for task in [t for t in TASKS if any(r["task"] == t for r in acc)]:
        rows = [r for r in acc if r["task"] == task]
        depths = sorted({r["depth"] for r in rows})
        lines += [f"## {TABLE[task]}: {TASKS[task]} digits (`{task}`), accuracy vs depth", "",
                  "| cell | " + " | ".join(f"depth {d}" for d in depths) + " |",
                  "| --- |" + " ---: |" * len(depths)]
        for cell in sorted({r["cell"] for r in rows}, key=_cell_key):
            cells = []
            for d in depths:
                r = next((r for r in rows if r["cell"] == cell and r["depth"] == d), None)
                if r is None:
                    cells.append("")
                    continue
                lost = f", {r['seeds'] - r['n']}/{r['seeds']} failed" if r["n"] < r["seeds"] else ""
                cells.append(f"{_fmt(r['mean'])} ({_fmt(r['best'])}{lost})")
            lines.append(f"| {cell} | " + " | ".join(cells) + " |")
        lines.append("")
    if summary:
        lines += ["## Fig. 2: lattice ratios at init", "",
                  "Definitions in `analysis/figures/deep_rnn.py`. corner = (layer 1, t = 1) / (layer L, t = T): "
                  "> 1 grows toward early and shallow cells, < 1 shrinks.", "",
                  "| cell | loss | wrt | L × T | max/min | shallow/deep | early/late | corner | diag max/min |",
                  "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in summary:
            lines.append(f"| {r['cell']} | {r['loss']} | {r['wrt']} | {r['depth']} × {r['T']} | {r['max/min']:.3g} | "
                         f"{r['shallow/deep']:.3g} | {r['early/late']:.3g} | {r['corner']:.3g} | "
                         f"{r['diag max/min']:.3g} |")
        lines.append("")
    return "\n".join(lines)
