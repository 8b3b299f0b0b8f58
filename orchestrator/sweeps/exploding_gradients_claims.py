"""The claims of Pascanu, Mikolov & Bengio (2013) that an ``exploding-gradients`` sweep checks.

Fig. 7 (Sec. 4.3, "Temporal order task"): the success rate of norm clipping at or above plain SGD's at every
sequence length, over 50 runs per point. A run succeeds when it records a ``solved_step`` (zero errors on the
evaluation sequences); a diverged run (NaN loss) is a failure; a failed trial (an error, no result) counts as
run but not measured. The paper plots rates, with no numbers in its text: the claims are orderings.

Fig. 4 (Sec. 2.5, "Drawing similarities with dynamical systems"): x <- 5 sigma(x) + b has two stable fixed
points for b in a middle band. The band's exact ends come from the tangency 5 sigma'(x) = 1
(``analysis.figures.exploding_gradients.tangency_band``); the bifurcation analysis counts the distinct
attractor points per grid value of b.
"""
from __future__ import annotations

from analysis.claims import Claim, Dominates, Range
from analysis.figures.exploding_gradients import tangency_band

SUCCESS_SQL = """
SELECT CASE WHEN coalesce(clip, 0) = 0 THEN 'plain SGD' ELSE 'clip ' || CAST(clip AS FLOAT) END AS grp,
       seq_len AS x, seed,
       CASE WHEN status = 'failed' THEN NULL WHEN solved_step IS NOT NULL THEN 1.0 ELSE 0.0 END AS value
FROM trials WHERE sweep_id = ? AND stage = 'seed' AND status <> 'running'
"""
# Per grid value of b (one analysis trial): two-branch values of b, and those outside the exact band [?, ?]
BAND_SQL = """
WITH s AS (
    SELECT s.input_value AS b, s.n_points
    FROM attractor_summary s JOIN trials t USING (sweep_id, trial_id)
    WHERE s.sweep_id = ? AND t.stage = 'analysis' AND t.cell = 'bifurcation' AND s.init_id = -1
)
SELECT grp, NULL AS x, NULL AS seed, value FROM (
    SELECT count(*) FILTER (WHERE n_points = 2) AS two,
           count(*) FILTER (WHERE n_points = 2 AND NOT b BETWEEN ? AND ?) AS outside, count(*) AS n
    FROM s
) UNPIVOT (value FOR grp IN (two AS 'two-branch values of b', outside AS 'two-branch values of b outside the band'))
WHERE n > 0
"""
LO, HI = tangency_band()
SCALES = ("quick", "paper")
FIG7 = "Sec. 4.3 (temporal order task)"
RATE_WHY = ("an ordering of rates over seeds (solved runs / runs): 'at or above' is >= of the means, no margin; "
            "with 4 seeds a point moves in steps of 0.25")

CLAIMS = (
    Claim("Fig. 7", FIG7, "Norm clipping (threshold 1) solves the task at least as often as plain SGD at every "
          "length, and more often at some.",
          SUCCESS_SQL, Dominates("clip 1.0", "plain SGD", strictly_somewhere=True, axis="T"), SCALES, RATE_WHY,
          paper="success rate of clip 1 ≥ plain SGD at every T, > at one T or more"),
    Claim("Fig. 7", FIG7, "Clipping at threshold 5 (only the rare spikes) is never worse than plain SGD.",
          SUCCESS_SQL, Dominates("clip 5.0", "plain SGD", axis="T"), SCALES, RATE_WHY,
          paper="success rate of clip 5 ≥ plain SGD at every T"),
    Claim("Fig. 4", "Sec. 2.5 (bifurcations)", "x ← 5σ(x) + b has two stable fixed points over a band of b.",
          BAND_SQL, Range("two-branch values of b", lo=2), SCALES,
          "a band, not a point: two or more grid values of b with two attractor points",
          paper=f"two branches for b in ({LO:.4f}, {HI:.4f})", params=(LO, HI)),
    Claim("Fig. 4", "Sec. 2.5 (bifurcations)", "Outside the band there is one attractor only.",
          BAND_SQL, Range("two-branch values of b outside the band", hi=0), SCALES,
          f"exact: the band's ends are the tangencies 5σ'(x) = 1, b ∈ ({LO:.4f}, {HI:.4f}); no grid value of b "
          "outside it may show two points", paper="no second branch outside the band", params=(LO, HI)),
)
