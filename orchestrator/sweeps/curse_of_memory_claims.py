"""The claims of Zucchet & Orvieto (NeurIPS 2024) Figs. 3A, 3B and 4 that a ``curse-of-memory`` sweep checks.

The paper's statistic (REFERENCE.md; the authors' scans): the final training loss at the best learning rate of
each (model, nu0), best meaning the lowest mean over seeds, every rate having run every seed; the ``selected``
trials are that rate's seeds. The paper plots these, with no numbers in its text: the claims are shapes,
expected from the quick scale up (the DESIGN's reference run at 400 steps already shows them: rnn 2.1e-3 ->
1.6e+1 from nu0 0.68 to 0.99, lru 2.3e-5 -> 4.1e-2). Only depth 1, the paper's, counts.
Fig. 4: the float64 Hessian at optimality (the ``hessian_opt`` analysis trials): the top eigenvector's inverse
participation ratio, concentrated for the complex diagonal model, spread for the dense one.
"""
from __future__ import annotations

from analysis.claims import Claim, Closes, Ratio, Trend

LOSS_SQL = """
SELECT cell AS grp, nu AS x, seed,
       CASE WHEN status = 'completed' AND isfinite(final_loss) THEN final_loss END AS value
FROM trials WHERE sweep_id = ? AND selected AND status <> 'running' AND depth = 1
"""
IPR_SQL = """
SELECT t.cell AS grp, NULL AS x, t.seed, h.value
FROM hessian h JOIN trials t USING (sweep_id, trial_id)
WHERE h.sweep_id = ? AND t.stage = 'analysis' AND h.stat = 'ipr' AND h.idx = 0
"""
SCALES = ("quick", "paper")
FIG3 = "Sec. 4 (the curse of memory in a teacher-student task)"

CLAIMS = (
    Claim("Fig. 3A", FIG3, "The dense RNN's final loss rises steeply as ν0 → 1.", LOSS_SQL,
          Trend("rnn", increasing=True, min_ratio=100.0), SCALES,
          "'steeply' on the paper's log axis: at least two decades from the smallest to the largest ν0, rising at "
          "every ν0 (the DESIGN's reference run: ×7,600 from 0.68 to 0.99)",
          paper="rnn loss rises steeply with ν0"),
    Claim("Fig. 3A", FIG3, "The LRU stays low: far below the RNN at the longest memory.", LOSS_SQL,
          Ratio("rnn", "lru", at_least=10.0, x="max"), SCALES,
          "at the largest ν0 the rnn's mean loss at least a decade above the lru's (reference run: ×390)",
          paper="lru ≪ rnn at the largest ν0"),
    Claim("Fig. 3B", FIG3 + ", ablation at ν0 = 0.99", "Complex diagonal connectivity closes most of the gap.",
          LOSS_SQL, Closes("rnn", "cdiag", "lru", at_least=0.5, x="max"), SCALES,
          "'most of the gap' = at least half of the rnn → lru gap in log loss, at the largest ν0",
          paper="cdiag recovers most of the rnn → lru gap"),
    Claim("Fig. 3B", FIG3 + ", ablation at ν0 = 0.99", "Near-diagonal (2×2 block) connectivity closes most of it too.",
          LOSS_SQL, Closes("rnn", "blockdiag", "lru", at_least=0.5, x="max"), SCALES,
          "'most of the gap' = at least half of the rnn → lru gap in log loss, at the largest ν0",
          paper="blockdiag recovers most of the rnn → lru gap"),
    Claim("Fig. 4", "Sec. 5 (Hessian at optimality)", "The top Hessian eigenvector is localised for the complex "
          "diagonal RNN and spread for the dense one.", IPR_SQL, Ratio("cdiag", "rnn", at_least=2.0), SCALES,
          "localised vs spread: the top eigenvector's inverse participation ratio at least twice the dense "
          "model's (a flat vector over n coordinates has 1/n); one deterministic analysis trial per cell",
          paper="IPR cdiag ≫ IPR rnn"),
)
