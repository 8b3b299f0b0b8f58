"""The claims of Ribeiro, Tiels, Aguirre & Schön (AISTATS 2020) that an ``attractors`` sweep checks.

Table 1 (Sec. 5.2, few relevant symbols): validation accuracy per cell and length; the paper gives one value per
cell and length, no spread. The numbers are expected at paper scale only (the quick scale trains hidden 64 for
800 steps at lengths 50 and 100); the quick scale shows the shape at its longest length: the oRNN holds its
accuracy while the LSTM and the stable LSTM fall to chance (0.25).
Fig. 5 (Sec. 5.1, sine generation): final MSE LSTM 4.8e-3, sLSTM 0.49, oRNN 4.1e-3 at T = 400, a length the
paper grid does not run (``--set seq_lens=400`` measures it); the shape (sLSTM far worse) at the longest length.
Sec. 5.1, Fig. 4: the stable LSTM is contractive, so it has a single stable fixed point: every attractor snapshot
of an sLSTM trial is one point with a negative largest Lyapunov exponent.
"""
from __future__ import annotations

import math

from analysis.claims import Claim, Number, Range, Ratio

FINISHED = "CASE WHEN status = 'completed' AND isfinite(final_loss) THEN {} END"
SYMBOLS_SQL = f"""
SELECT cell AS grp, seq_len AS x, seed, {FINISHED.format('final_metric')} AS value
FROM trials WHERE sweep_id = ? AND stage = 'seed' AND task = 'symbols' AND status <> 'running'
"""
SINE_SQL = f"""
SELECT cell AS grp, seq_len AS x, seed, {FINISHED.format('final_loss')} AS value
FROM trials WHERE sweep_id = ? AND stage = 'seed' AND task = 'sine' AND status <> 'running'
"""
# Per sLSTM trial: the most distinct points, and the largest Lyapunov exponent, over its snapshots
SLSTM_SQL = """
SELECT t.task || ': ' || s.stat AS grp, NULL AS x, t.seed, s.value FROM (
    SELECT trial_id, max(n_points) AS points, max(lyapunov) AS lyapunov
    FROM attractor_summary WHERE sweep_id = ? AND init_id = -1 GROUP BY trial_id
) UNPIVOT (value FOR stat IN (points AS 'most points in a snapshot', lyapunov AS 'largest Lyapunov exponent')) s
JOIN trials t ON t.trial_id = s.trial_id AND t.stage = 'seed' AND t.cell = 'slstm'
"""
TABLE1 = {"lstm": (1.00, 1.00, 1.00, 0.25, 0.27), "slstm": (1.00, 1.00, 0.27, 0.26, 0.26),
          "ornn": (1.000, 1.000, 0.999, 0.995, 0.970)}
LENGTHS = (50, 100, 200, 300, 500)
VALIDATION = 1000  # validation sequences behind each Table 1 accuracy
SINE = {"lstm": 4.8e-3, "slstm": 0.49, "ornn": 4.1e-3}
SHAPE = ("quick", "paper")
T1 = "Sec. 5.2 (few relevant symbols)"
SINE_WHERE = "Sec. 5.1 (sine generation), Fig. 5 caption"
CHANCE = 0.4  # 'near chance' (0.25) at the longest length; HOLD: the oRNN 'holds'
HOLD = 0.8


def spread(p: float) -> float:
    """The paper's accuracy is one run on 1,000 validation sequences: +- two binomial standard errors of that
    count, at least 0.002 (two sequences)."""
    return max(2 * math.sqrt(p * (1 - p) / VALIDATION), 0.002)


def _table1() -> tuple[Claim, ...]:
    return tuple(
        Claim("Table 1", T1, f"{cell} accuracy at length {L}.", SYMBOLS_SQL,
              Number(cell, acc, x=L, spread=round(spread(acc), 4)), ("paper",),
              f"one run on {VALIDATION} validation sequences, no spread given: ± two binomial standard errors "
              f"2·√(p(1 − p)/{VALIDATION}), at least 0.002")
        for cell, accs in TABLE1.items() for L, acc in zip(LENGTHS, accs))


CLAIMS = _table1() + tuple(
    Claim("Fig. 5", SINE_WHERE, f"{cell} final sine-generation MSE at T = 400.", SINE_SQL,
          Number(cell, mse, x=400, factor=2.0), ("paper",),
          "one run's final MSE, no spread given: ×/÷ 2, a third of a decade on the paper's log axis")
    for cell, mse in SINE.items()) + (
    Claim("Fig. 5", SINE_WHERE, "The stable LSTM cannot sustain the oscillation: its MSE is far above the LSTM's.",
          SINE_SQL, Ratio("slstm", "lstm", at_least=3.0, x="max"), SHAPE,
          "the paper's ratio is ×100 (0.49 / 4.8e-3); 'far above' = at least ×3 at the longest length",
          paper="sLSTM / LSTM MSE ×102"),
    Claim("Fig. 5", SINE_WHERE, "... and far above the orthogonal RNN's.",
          SINE_SQL, Ratio("slstm", "ornn", at_least=3.0, x="max"), SHAPE,
          "the paper's ratio is ×120 (0.49 / 4.1e-3); 'far above' = at least ×3 at the longest length",
          paper="sLSTM / oRNN MSE ×120"),
    Claim("Table 1", T1, "The orthogonal RNN holds its accuracy at the longest length.",
          SYMBOLS_SQL, Range("ornn", lo=HOLD, x="max"), SHAPE,
          f"the paper's lowest oRNN accuracy is 0.970 (length 500); 'holds' = mean ≥ {HOLD}",
          paper="oRNN ≥ 0.970 at every length"),
    Claim("Table 1", T1, "The LSTM falls to chance (0.25) at the longest length.",
          SYMBOLS_SQL, Range("lstm", hi=CHANCE, x="max"), SHAPE,
          f"the paper: 0.25-0.27 at 300-500; 'near chance' = mean ≤ {CHANCE}",
          paper="LSTM 0.27 at length 500"),
    Claim("Table 1", T1, "The stable LSTM falls to chance at the longest length.",
          SYMBOLS_SQL, Range("slstm", hi=CHANCE, x="max"), SHAPE,
          f"the paper: 0.26-0.27 from length 200; 'near chance' = mean ≤ {CHANCE}",
          paper="sLSTM 0.26 at length 500"),
    Claim("Fig. 4", "Sec. 5.1 (attractors during training)", "The stable LSTM, contractive, has a single fixed point.",
          SLSTM_SQL, Range("sine: most points in a snapshot", hi=1), SHAPE,
          "exact: one distinct point in every snapshot of every sLSTM trial (all initial states together)",
          paper="one point"),
    Claim("Fig. 7", "Sec. 5.2 (attractors during training)", "On the symbols task too, one fixed point per input.",
          SLSTM_SQL, Range("symbols: most points in a snapshot", hi=1), SHAPE,
          "exact: one distinct point in every snapshot of every sLSTM trial (per input, all initial states)",
          paper="one point"),
    Claim("Fig. 4", "Sec. 5.1 (attractors during training)", "... a stable one (negative Lyapunov exponent).",
          SLSTM_SQL, Range("sine: largest Lyapunov exponent", hi=0), SHAPE,
          "exact: the largest exponent over every snapshot below zero (mean over seeds of each trial's maximum)",
          paper="Lyapunov exponent < 0"),
)
