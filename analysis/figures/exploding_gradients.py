"""Pascanu, Mikolov & Bengio (2013), "On the difficulty of training recurrent neural networks", Figs. 7, 3 and 4,
redrawn from an ``exploding-gradients`` sweep.

fig7: success rate on the temporal order task against the sequence length, one line per clipping threshold
(0 = plain SGD), from the seed-stage ``trials`` rows: a run succeeds when it recorded a ``solved_step`` (zero
errors on the evaluation batch); diverged and unsolved runs are failures. Error bars are the binomial standard
error sqrt(p (1 - p) / n); n (runs per point) is written in the legend; the lines are nudged apart along x by
1% of the axis so that equal rates stay visible. The Markdown table adds the mean solved step and the share of
steps that clipping changed (``steps.clipped``).
fig3: the error surface (sigma(x_50) - 0.7)^2 of the unit x_t = w sigma(x_{t-1}) + b from the ``surface`` rows of
the ``error_surface`` analysis, in log colour, beside the magnitude of its gradient (finite differences of the
stored grid), where the "wall" stands out: the line b = 0.5 - w sigma(0.5) along which x_0 = 0.5 is the
unstable fixed point (w sigma'(0.5) > 1, w > 4.25), i.e. x_0 sits on the boundary between the two basins.
fig4: the bifurcation diagram of x <- 5 sigma(x) + b from the ``attractors`` rows of the ``bifurcation``
analysis: the attractors reached from every initial state against b, with the band where the analysis found
two of them (``attractor_summary`` n_points = 2 over all initial states) shaded and the exact band ends from the
tangency condition 5 sigma'(x) = 1 dotted.
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

NAME = "exploding-gradients"
LOSS_FLOOR = 1e-8  # log colour floor of the error surface (its minimum is an exact 0 along a curve)

SUCCESS_SQL = """
WITH s AS (SELECT trial_id, avg(CAST(clipped AS INTEGER)) AS frac FROM steps WHERE sweep_id = ? GROUP BY trial_id)
SELECT seq_len, coalesce(clip, 0) AS clip, count(*) AS runs, count(solved_step) AS solved,
       count(solved_step) / count(*) AS rate, avg(solved_step) AS mean_solved_step,
       count(*) FILTER (WHERE status <> 'completed') AS diverged, avg(s.frac) AS clipped_frac
FROM trials t LEFT JOIN s USING (trial_id)
WHERE t.sweep_id = ? AND stage = 'seed' AND status <> 'running'
GROUP BY ALL ORDER BY seq_len, clip
"""
SURFACE_SQL = """
SELECT s.x AS w, s.y AS b, s.loss
FROM surface s JOIN trials t USING (sweep_id, trial_id)
WHERE s.sweep_id = ? AND t.stage = 'analysis' AND t.cell = 'error_surface' AND s.param_x = 'w' AND s.param_y = 'b'
ORDER BY w, b
"""
ORBITS_SQL = """
SELECT a.input_value AS b, a.init_id, a.x
FROM attractors a JOIN trials t USING (sweep_id, trial_id)
WHERE a.sweep_id = ? AND t.stage = 'analysis' AND t.cell = 'bifurcation' AND a.k = (
    SELECT max(k) FROM attractors WHERE sweep_id = a.sweep_id AND trial_id = a.trial_id)
ORDER BY b, init_id
"""
BANDS_SQL = """
SELECT s.input_value AS b, s.n_points, s.lyapunov
FROM attractor_summary s JOIN trials t USING (sweep_id, trial_id)
WHERE s.sweep_id = ? AND t.stage = 'analysis' AND t.cell = 'bifurcation' AND s.init_id = -1
ORDER BY b
"""


def success(con: duckdb.DuckDBPyConnection, sweep_id: str) -> list[dict]:
    """Per (seq_len, clip): runs, solved, rate, mean_solved_step (None if none solved), diverged, clipped_frac
    (the mean over runs of the fraction of steps whose gradient norm exceeded the threshold)."""
    return run_arrow(con, SUCCESS_SQL, [sweep_id, sweep_id]).to_pylist()


def bistable_interval(con: duckdb.DuckDBPyConnection, sweep_id: str) -> tuple[float, float, int] | None:
    """(lowest b, highest b, number of grid values) where the bifurcation analysis found 2 attractors; None if
    there is no such b (or no analysis)."""
    two = [r["b"] for r in run_arrow(con, BANDS_SQL, [sweep_id]).to_pylist() if r["n_points"] == 2]
    return (min(two), max(two), len(two)) if two else None


def draw(con: duckdb.DuckDBPyConnection, sweep: dict, out_dir: str) -> list[str]:
    """Write fig7.png, fig3.png, fig4.png (the last two when their analysis ran) and exploding-gradients.md."""
    sid = sweep["sweep_id"]
    rows = success(con, sid)
    if not rows:
        raise AnalysisError(f"sweep {sid} has no finished seed-stage trials yet (see `sweep status {sid}`)")
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, "fig7.png")]
    _save(_fig7(rows, sid), paths[0])
    surface = run_arrow(con, SURFACE_SQL, [sid]).to_pylist()
    if surface:
        paths.append(os.path.join(out_dir, "fig3.png"))
        _save(_fig3(surface, sid), paths[-1])
    orbits = run_arrow(con, ORBITS_SQL, [sid]).to_pylist()
    band = bistable_interval(con, sid)
    if orbits:
        paths.append(os.path.join(out_dir, "fig4.png"))
        _save(_fig4(orbits, band, sid), paths[-1])
    paths.append(os.path.join(out_dir, f"{NAME}.md"))
    with open(paths[-1], "w") as f:
        f.write(markdown(rows, band, sweep))
    return paths


def _save(fig: Figure, path: str) -> None:
    fig.savefig(path, dpi=150)


def _clip_label(c: float) -> str:
    return "plain SGD, no clipping" if c == 0 else f"norm clipping, threshold {c:g}"


# ------------------------------------------------------------------------------------------- figures
def _fig7(rows: list[dict], sid: str) -> Figure:
    fig = Figure(figsize=(7, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    clips = sorted({r["clip"] for r in rows})
    lens = sorted({r["seq_len"] for r in rows})
    dodge = 0.012 * ((lens[-1] - lens[0]) or 1)  # equal rates would hide each other's markers
    for i, c in enumerate(clips):
        pts = [r for r in rows if r["clip"] == c]
        ns = sorted({r["runs"] for r in pts})
        n = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"
        se = [math.sqrt(r["rate"] * (1 - r["rate"]) / r["runs"]) for r in pts]
        ax.errorbar([r["seq_len"] + (i - (len(clips) - 1) / 2) * dodge for r in pts], [r["rate"] for r in pts],
                    yerr=se, capsize=3,
                    marker="os^Dv"[i % 5], linestyle="--" if c == 0 else "-", color="0.3" if c == 0 else f"C{i}",
                    label=f"{_clip_label(c)}: {n} runs per length")
    ax.set_xticks(lens)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("success rate (solved runs / runs)")
    ax.set_title(f"Temporal order task: success rate vs length (Pascanu et al. Fig. 7)\nsweep {sid}", fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2 if len(clips) > 2 else 1)
    return fig


def _fig3(surface: list[dict], sid: str) -> Figure:
    ws = np.array(sorted({r["w"] for r in surface}))
    bs = np.array(sorted({r["b"] for r in surface}))
    loss = np.array([r["loss"] for r in surface]).reshape(len(ws), len(bs))  # rows ordered by (w, b)
    gb, gw = np.gradient(loss, bs, ws, axis=(1, 0))
    grad = np.hypot(gw, gb)
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    extent = (ws[0], ws[-1], bs[0], bs[-1])
    for k, (values, title, label) in enumerate((
            (np.maximum(loss, LOSS_FLOOR), r"error $(\sigma(x_{50}) - 0.7)^2$", "error (log scale)"),
            (np.maximum(grad, LOSS_FLOOR), r"gradient magnitude $\|\nabla_{w,b}\, \mathcal{E}_{50}\|$",
             "|gradient| (log scale, finite differences)"))):
        ax = fig.add_subplot(1, 2, k + 1)
        im = ax.imshow(values.T, origin="lower", extent=extent, aspect="auto", cmap="viridis",
                       norm=LogNorm(vmin=max(values.min(), LOSS_FLOOR), vmax=values.max()), interpolation="nearest")
        fig.colorbar(im, ax=ax, label=label)
        w_wall = np.linspace(max(4.25, ws[0]), ws[-1], 50)
        if len(w_wall) and w_wall[0] < ws[-1]:
            ax.plot(w_wall, 0.5 - w_wall / (1 + math.exp(-0.5)), "w--", linewidth=1,
                    label=r"$x_0 = 0.5$ on the basin boundary")
        ax.set_xlim(ws[0], ws[-1])
        ax.set_ylim(bs[0], bs[-1])
        ax.set_xlabel("recurrent weight w")
        ax.set_ylabel("bias b")
        ax.set_title(title, fontsize=10)
        if k == 1:
            ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(f"One-unit RNN $x_t = w\\,\\sigma(x_{{t-1}}) + b$, $x_0 = 0.5$: error surface "
                 f"(Pascanu et al. Fig. 3)\nsweep {sid}", fontsize=11)
    return fig


def _fig4(orbits: list[dict], band: tuple[float, float, int] | None, sid: str) -> Figure:
    fig = Figure(figsize=(7, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    b = np.array([r["b"] for r in orbits])
    x = np.array([r["x"] for r in orbits])
    if band:
        step = np.diff(np.unique(b)).min() / 2 if len(np.unique(b)) > 1 else 0.0
        ax.axvspan(band[0] - step, band[1] + step, color="C1", alpha=0.15,
                   label=f"grid values with two attractors: b in [{band[0]:.3g}, {band[1]:.3g}]")
    for k, end in enumerate(tangency_band()):
        ax.axvline(end, color="C3", linestyle=":", linewidth=1.2,
                   label=r"tangencies $5\,\sigma'(x) = 1$ (exact band ends)" if k == 0 else None)
    ax.plot(b, x, "o", color="C0", markersize=3, label="attractor reached (all initial states)")
    ax.set_xlabel("bias b")
    ax.set_ylabel(r"asymptotic state $x_\infty$")
    ax.set_title(f"Bifurcation diagram of $x \\leftarrow 5\\,\\sigma(x) + b$ (Pascanu et al. Fig. 4)\nsweep {sid}",
                 fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9, loc="upper left")
    return fig


def tangency_band(w: float = 5.0) -> tuple[float, float]:
    """The exact bistable band of x = w sigma(x) + b: w sigma'(x) = 1 gives sigma = (1 -+ sqrt(1 - 4/w)) / 2,
    x = logit(sigma), b = x - w sigma; w = 5: (-2.6556, -2.3444)."""
    ends = []
    for sign in (-1, 1):
        sig = (1 + sign * math.sqrt(1 - 4 / w)) / 2
        ends.append(math.log(sig / (1 - sig)) - w * sig)
    return min(ends), max(ends)


# ------------------------------------------------------------------------------------------ markdown
def markdown(rows: list[dict], band: tuple[float, float, int] | None, sweep: dict) -> str:
    sid, scale = sweep["sweep_id"], sweep.get("scale") or "quick"
    lines = [
        f"# Exploding gradients — sweep `{sid}`",
        "",
        "Pascanu, Mikolov & Bengio (2013), Fig. 7: success rate on the temporal order task per sequence length, "
        "plain SGD (clip 0) vs norm clipping. A run succeeds when it reaches zero errors on the evaluation batch "
        "(`solved_step`); diverged runs count as failures.",
        f"Sweep `{sid}` (scale `{sweep.get('scale')}`, created {sweep.get('created_at')}). "
        f"Reproduce: `sweep launch {NAME} --scale {scale}`, then `sweep report {NAME}`.",
        "",
        "`clipped steps` is the share of training steps whose gradient norm exceeded the threshold (the steps "
        "clipping changed), averaged over runs.",
        "",
        "| T | clip | runs | solved | success rate | mean solved step | diverged | clipped steps |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        mean = "—" if r["mean_solved_step"] is None else f"{r['mean_solved_step']:.0f}"
        frac = "—" if r["clip"] == 0 or r["clipped_frac"] is None else f"{100 * r['clipped_frac']:.0f}%"
        lines.append(f"| {r['seq_len']} | {r['clip']:g} | {r['runs']} | {r['solved']} | {r['rate']:.2f} | {mean} "
                     f"| {r['diverged']} | {frac} |")
    lines.append("")
    if band:
        lines.append(f"Fig. 4: two attractors of x ← 5σ(x) + b for b in [{band[0]:.4g}, {band[1]:.4g}] "
                     f"({band[2]} grid values); the tangency condition 5σ'(x) = 1 gives "
                     f"({tangency_band()[0]:.4f}, {tangency_band()[1]:.4f}).")
    else:
        lines.append("Fig. 4: no b with two attractors found (or the bifurcation analysis did not run).")
    return "\n".join(lines) + "\n"
