"""Zucchet & Orvieto (2024) Fig. 4, redrawn from the ``hessian`` rows of a sweep's ``hessian_opt`` analysis trials:
the float64 Hessian of the loss at optimality for a student set exactly to a small teacher (two eigenvalue
pairs with |lambda| ~ 0.99). The spectra are alike; the top eigenvectors are spread over many coordinates
for the dense rnn and concentrated on a few (the eigenvalue angles) for the complex diagonal cells, which is
what lets Adam's per-coordinate step sizes cope with the sharp directions.

Left: the full spectrum per cell (|eigenvalue|, descending, log scale). Right: the inverse participation
ratio of the top eigenvectors (1 = one coordinate, 1/n = spread evenly), with the number of coordinates
holding 90% of each eigenvector's mass written on the bars.
"""
from __future__ import annotations

import os

import duckdb
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis.db import run_arrow

ROWS_SQL = """
SELECT t.cell, h.stat, h.idx, h.value
FROM hessian h JOIN trials t USING (sweep_id, trial_id)
WHERE h.sweep_id = ? AND t.stage = 'analysis' AND h.stat IN ('eig', 'ipr', 'k90')
ORDER BY t.cell, h.stat, h.idx
"""


def collect(con: duckdb.DuckDBPyConnection, sweep_id: str) -> dict[str, dict[str, list[float]]]:
    """{cell: {"eig": ascending spectrum, "ipr": [top-0, top-1, ...], "k90": [...]}}."""
    out: dict[str, dict[str, list[float]]] = {}
    for r in run_arrow(con, ROWS_SQL, [sweep_id]).to_pylist():
        out.setdefault(r["cell"], {}).setdefault(r["stat"], []).append(r["value"])
    return out


def draw(con: duckdb.DuckDBPyConnection, sweep: dict, out_dir: str, order: tuple[str, ...]) -> list[str]:
    """fig4.png and hessian-at-optimum.md, or nothing when the sweep has no hessian_opt analysis."""
    data = collect(con, sweep["sweep_id"])
    if not data:
        return []
    cells = sorted(data, key=lambda c: (order.index(c) if c in order else len(order), c))
    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    for i, cell in enumerate(cells):
        eig = sorted((abs(v) for v in data[cell].get("eig", [])), reverse=True)
        ax1.semilogy(range(1, len(eig) + 1), [max(v, 1e-16) for v in eig], "o-", ms=3, label=cell, color=f"C{i}")
    ax1.set_xlabel("eigenvalue rank")
    ax1.set_ylabel("|Hessian eigenvalue| at optimality")
    ax1.set_title("Spectrum")
    ax1.legend()
    ax1.grid(alpha=0.3)
    k = max(len(data[c].get("ipr", [])) for c in cells)
    width = 0.8 / max(k, 1)
    for j in range(k):
        xs = [i + (j - (k - 1) / 2) * width for i in range(len(cells))]
        iprs = [data[c]["ipr"][j] if j < len(data[c].get("ipr", [])) else 0.0 for c in cells]
        bars = ax2.bar(xs, iprs, width, label=f"eigenvector {j + 1}", color=f"C{j}", alpha=0.8)
        for b, c in zip(bars, cells):
            k90 = data[c].get("k90", [])
            if j < len(k90):
                ax2.annotate(f"{int(k90[j])}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                             va="bottom", fontsize=8)
    ax2.set_xticks(range(len(cells)), cells)
    ax2.set_ylim(0, 1.12)
    ax2.set_ylabel("inverse participation ratio")
    ax2.set_title("Top eigenvectors: IPR (numbers: coordinates with 90% of the mass)", fontsize=10)
    ax2.legend(fontsize=8)
    fig.suptitle(f"Hessian at optimality (Fig. 4), sweep {sweep['sweep_id']}", fontsize=11)
    fig.tight_layout()
    png = os.path.join(out_dir, "fig4.png")
    fig.savefig(png, dpi=150)
    md = os.path.join(out_dir, "hessian-at-optimum.md")
    lines = ["# Hessian at optimality (Fig. 4)", "",
             "Student set exactly to a float64 teacher with two eigenvalue pairs of |λ| = 0.99; full Hessian of "
             "the loss. IPR = Σv⁴/(Σv²)²; k90 = coordinates holding 90% of the eigenvector's mass.", "",
             "| cell | parameters | top eigenvalue | IPR of top eigenvectors | k90 |",
             "| --- | ---: | ---: | --- | --- |"]
    for c in cells:
        d = data[c]
        lines.append(f"| {c} | {len(d.get('eig', []))} | {max(d.get('eig', [float('nan')])):.4g} | "
                     f"{', '.join(f'{v:.3f}' for v in d.get('ipr', []))} | "
                     f"{', '.join(str(int(v)) for v in d.get('k90', []))} |")
    with open(md, "w") as f:
        f.write("\n".join(lines) + "\n")
    return [png, md]
