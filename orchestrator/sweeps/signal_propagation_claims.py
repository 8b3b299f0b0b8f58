"""The claims of Zucchet & Orvieto (NeurIPS 2024) Fig. 5 that a ``signal-propagation`` sweep checks.

The paper's text (the copy in shared/papers is the project page's summary of the figures) gives shapes, no
numbers: the unnormalised complex diagonal RNN's activity and gradients blow up as |lambda| -> 1 while the
LRU's and the GRU's stay flat, and LayerNorm tames the cdiag's gradients. The quantity is the paper's own: the
mean over the stack's layers of mean(h^2) or of the mean squared loss gradient of a parameter group, per
trial (one seed), at the memory lengths t = 1 / (1 - nu). Nothing is trained, so the quick scale already has
the paper's settings but its length (T = 300) and batch; the shapes are expected from quick up.
"""
from __future__ import annotations

from analysis.claims import Claim, Ratio, Trend

# One row per (cell [+ LayerNorm], t, seed): the layer mean of one signal quantity (the second parameter)
SIGNAL_SQL = """
SELECT t.cell || CASE WHEN t.layer_norm THEN ' + LayerNorm' ELSE '' END AS grp, round(1 / (1 - t.nu), 2) AS x,
       t.seed, avg(s.value) FILTER (WHERE isfinite(s.value)) AS value
FROM signal s JOIN trials t USING (sweep_id, trial_id)
WHERE s.sweep_id = ? AND s.quantity = ? AND t.status = 'completed' AND s.step = 0
GROUP BY ALL
"""
SCALES = ("quick", "paper")
WHERE = "Sec. 5, signal propagation at initialisation"
# "Flat": the paper plots two decades of t on log axes, where the cdiag rises about three decades; staying
# within one decade (max / min <= 10) is what its "constant" reads as on that plot.
FLAT = 10.0
FLAT_WHY = ("flat = within one decade over t = 1..100 (max / min ≤ 10): the paper's log axes span two decades "
            "of t, over which the cdiag's value rises about three")

CLAIMS = (
    Claim("Fig. 5A", WHERE, "Without normalisation the complex diagonal RNN's activity grows as |λ| → 1.",
          SIGNAL_SQL, Trend("cdiag", increasing=True, min_ratio=100.0), SCALES,
          "mean(h²) ≈ 1/(1 − |λ|²) per layer grows ×~70 from t = 1 to t = 100 and the four residual layers "
          "compound it: at least ×100 from the first to the last t, rising at every t",
          paper="cdiag mean(h²) rises steeply with t", params=("act_sq",)),
    Claim("Fig. 5A", WHERE, "The LRU's input normalisation keeps its activity constant across memory lengths.",
          SIGNAL_SQL, Trend("lru", increasing=False, max_ratio=FLAT), SCALES, FLAT_WHY,
          paper="lru mean(h²) flat in t", params=("act_sq",)),
    Claim("Fig. 5A", WHERE, "The GRU keeps its activity constant across memory lengths.",
          SIGNAL_SQL, Trend("gru", increasing=False, max_ratio=FLAT), SCALES, FLAT_WHY,
          paper="gru mean(h²) flat in t", params=("act_sq",)),
    Claim("Fig. 5B", WHERE, "The complex diagonal RNN's recurrent-parameter gradients explode as |λ| → 1.",
          SIGNAL_SQL, Trend("cdiag", increasing=True, min_ratio=1000.0), SCALES,
          "the squared gradient of λ scales like the square of the activity's growth, (1/(1 − |λ|²))² per layer: "
          "at least ×1000 from the first to the last t",
          paper="cdiag recurrent grad² explodes with t", params=("grad_sq_recurrent",)),
    Claim("Fig. 5B", WHERE, "In the LRU only the recurrent (angle) gradient grows; the other parameters' stay flat.",
          SIGNAL_SQL, Trend("lru", increasing=False, max_ratio=FLAT), SCALES, FLAT_WHY,
          paper="lru other-parameter grad² flat in t", params=("grad_sq_other",)),
    Claim("Fig. 5B", WHERE, "The GRU's gradients stay controlled across memory lengths.",
          SIGNAL_SQL, Trend("gru", increasing=False, max_ratio=FLAT), SCALES, FLAT_WHY,
          paper="gru other-parameter grad² flat in t", params=("grad_sq_other",)),
    Claim("Fig. 5C", WHERE, "LayerNorm controls the complex diagonal RNN's gradient magnitude.",
          SIGNAL_SQL, Ratio("cdiag", "cdiag + LayerNorm", at_least=10.0, x="max"), SCALES,
          "at the longest memory, the unnormalised cdiag's non-recurrent grad² at least ten times the "
          "LayerNorm one's: one decade, the smallest gap a log-scale panel shows as 'controlled'",
          paper="cdiag grad² without / with LayerNorm ≫ 1 at the longest t", params=("grad_sq_other",)),
)
