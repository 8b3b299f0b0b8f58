"""The paper beside the run: a named sweep's headline claims, declared as data, and their verdicts on a sweep.

A ``Claim`` names the figure or table and where it is in the paper, what the paper says, the quantity as SQL
over the sweep's tables, what the paper reports (an ``Expectation``: a number with its tolerance, or a shape)
and the scales at which the claim is expected to hold. The named sweeps declare theirs beside their sweep
files (``orchestrator/sweeps/<name>_claims.py``); ``verdicts`` judges them on one sweep's rows.

The SQL contract: one ``?`` parameter, the sweep id; the result has the columns ``grp`` (text: which series,
e.g. a cell), ``x`` (the axis along which a shape runs, e.g. ν0 or a length; NULL when there is none), ``seed``
and ``value`` (NULL for a seed that did not finish: it counts as run but not as measured). Per (grp, x) the
verdict uses the mean and the standard error (sample std / sqrt(n)) of the finite values over seeds.

Verdicts:
- ``holds``;
- ``differs`` with by how much;
- ``not expected at this scale`` (the value is still shown): the sweep's scale is not in ``Claim.scales``;
- ``not measured by this sweep``: the rows the claim needs are not there (a spec file dropped the cells,
  lengths or analyses it reads, or the trials have not run yet).

A number claim holds when the paper's interval (its value +- its stated spread, or x/÷ a stated factor where
the paper gives none) meets the run's interval over seeds (mean +- 2 standard errors). Each claim carries the
reason for its tolerance.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import duckdb

from analysis.db import AnalysisError, run_arrow

HOLDS, DIFFERS, NOT_AT_SCALE, NOT_MEASURED = ("holds", "differs", "not expected at this scale",
                                              "not measured by this sweep")
MISSING_COLUMN = re.compile(r'Referenced column "([^"]+)" not found')
SE_WIDTH = 2.0  # the run's interval: mean +- this many standard errors over seeds (about 95% for a normal mean)


@dataclass(frozen=True)
class Stat:
    """One (grp, x) over seeds: runs (rows), n (finite values), mean, se (None with fewer than two values)."""
    runs: int
    n: int
    mean: float | None
    se: float | None

    @property
    def lo(self) -> float:
        return self.mean - SE_WIDTH * (self.se or 0.0)

    @property
    def hi(self) -> float:
        return self.mean + SE_WIDTH * (self.se or 0.0)

    def short(self) -> str:
        """mean ± se (no count)."""
        return _g(self.mean) + (f" ± {_g(self.se)}" if self.se is not None else "")

    def text(self) -> str:
        if self.mean is None:
            return f"no finished seed ({self.runs} run)"
        se = f" ± {_g(self.se)}" if self.se is not None else ""
        return f"{_g(self.mean)}{se} (n={self.n})"


Stats = dict[tuple[str, Any], Stat]


@dataclass(frozen=True)
class Judged:
    """What an expectation makes of a sweep's stats: None when the rows it needs are missing."""
    holds: bool
    value: str  # this run's value, in words and numbers
    gap: str = ""  # by how much it differs (empty when it holds)


def _g(v: float | None) -> str:
    return "—" if v is None else f"{v:.3g}"


def _series(stats: Stats, grp: str) -> list[tuple[Any, Stat]]:
    return sorted(((x, s) for (g, x), s in stats.items() if g == grp), key=lambda p: (p[0] is None, p[0]))


def _pick(stats: Stats, grp: str, x: Any) -> Stat | None:
    """The stat of ``grp`` at ``x``; ``x="max"`` / ``"min"``: at its largest / smallest x."""
    pts = _series(stats, grp)
    if x == "max":
        return pts[-1][1] if pts else None
    if x == "min":
        return pts[0][1] if pts else None
    return stats.get((grp, x))


def _at(x: Any) -> str:
    return "" if x is None else f" at {x}" if not isinstance(x, str) else f" at its {x} x"


# ----------------------------------------------------------------------------------------------- expectations
@dataclass(frozen=True)
class Number:
    """The paper's number for ``grp`` at ``x``; tolerance: +- ``spread`` or x/÷ ``factor`` (one of them)."""
    grp: str
    value: float
    x: Any = None
    spread: float | None = None
    factor: float | None = None

    def paper(self) -> str:
        tol = f" ± {self.spread:g}" if self.spread is not None else f" (×/÷ {self.factor:g})" if self.factor else ""
        return f"{self.value:g}{tol}"

    def judge(self, stats: Stats) -> Judged | None:
        s = _pick(stats, self.grp, self.x)
        if s is None:
            return None
        if s.mean is None:
            return Judged(False, s.text(), "no finished seed")
        if self.factor:
            plo, phi = self.value / self.factor, self.value * self.factor
        else:
            plo, phi = self.value - (self.spread or 0.0), self.value + (self.spread or 0.0)
        holds = s.lo <= phi and plo <= s.hi
        if holds:
            return Judged(True, s.text())
        rel = s.mean / self.value if self.value else float("inf")
        gap = f"{s.mean - self.value:+.3g}" + (f" (×{rel:.3g})" if self.factor or abs(math.log(abs(rel) or 1e-300)) > 1
                                               else f" ({100 * (rel - 1):+.0f}%)")
        return Judged(False, s.text(), gap)


@dataclass(frozen=True)
class Range:
    """A sign or a threshold: ``lo <= mean(grp at x) <= hi`` (either bound may be None)."""
    grp: str
    lo: float | None = None
    hi: float | None = None
    x: Any = None

    def paper(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"{self.grp}{_at(self.x)} in [{self.lo:g}, {self.hi:g}]"
        return f"{self.grp}{_at(self.x)} " + (f"≥ {self.lo:g}" if self.lo is not None else f"≤ {self.hi:g}")

    def judge(self, stats: Stats) -> Judged | None:
        s = _pick(stats, self.grp, self.x)
        if s is None:
            return None
        if s.mean is None:
            return Judged(False, s.text(), "no finished seed")
        below = self.lo is not None and s.mean < self.lo
        above = self.hi is not None and s.mean > self.hi
        gap = f"{s.mean - self.lo:+.3g} below {self.lo:g}" if below else \
            f"{s.mean - self.hi:+.3g} above {self.hi:g}" if above else ""
        return Judged(not (below or above), f"{self.grp}{_at(self.x)}: {s.text()}", gap)


@dataclass(frozen=True)
class Ratio:
    """mean(num) / mean(den) at ``x`` (each at its own largest x with ``x="max"``) is >= ``at_least``."""
    num: str
    den: str
    at_least: float
    x: Any = None

    def paper(self) -> str:
        return f"{self.num} / {self.den}{_at(self.x)} ≥ {self.at_least:g}"

    def judge(self, stats: Stats) -> Judged | None:
        a, b = _pick(stats, self.num, self.x), _pick(stats, self.den, self.x)
        if a is None or b is None:
            return None
        if a.mean is None or b.mean is None or b.mean == 0:
            return Judged(False, f"{self.num} {a.text()}, {self.den} {b.text()}", "no ratio")
        r = a.mean / b.mean
        value = f"×{r:.3g} ({self.num} {a.text()}; {self.den} {b.text()})"
        return Judged(r >= self.at_least, value, "" if r >= self.at_least else f"×{r:.3g} < ×{self.at_least:g}")


@dataclass(frozen=True)
class Trend:
    """``grp``'s mean along x: ``increasing`` (every step up, last / first >= ``min_ratio``) or flat
    (max / min <= ``max_ratio``). Needs two x values or more."""
    grp: str
    increasing: bool = True
    min_ratio: float = 1.0
    max_ratio: float | None = None

    def paper(self) -> str:
        if not self.increasing:
            return f"{self.grp} flat along x: max / min ≤ {self.max_ratio:g}"
        return f"{self.grp} increasing along x, last / first ≥ {self.min_ratio:g}"

    def judge(self, stats: Stats) -> Judged | None:
        pts = [(x, s) for x, s in _series(stats, self.grp)]
        if len(pts) < 2:
            return None
        means = [s.mean for _, s in pts]
        if any(m is None or m <= 0 for m in means):
            return Judged(False, ", ".join(f"{x:g}: {_g(m)}" for (x, _), m in zip(pts, means)), "missing points")
        ends = [pts[0][1], pts[-1][1]]
        series = " → ".join([ends[0].short()] + [_g(m) for m in means[1:-1]] + [ends[1].short()])
        if self.increasing:
            steps = all(a < b for a, b in zip(means, means[1:]))
            r = means[-1] / means[0]
            ok = steps and r >= self.min_ratio
            gap = "" if ok else ("not increasing at every step" if not steps else f"×{r:.3g} < ×{self.min_ratio:g}")
            return Judged(ok, f"{series} (last / first ×{r:.3g})", gap)
        r = max(means) / min(means)
        ok = r <= self.max_ratio
        return Judged(ok, f"{series} (max / min ×{r:.3g})", "" if ok else f"×{r:.3g} > ×{self.max_ratio:g}")


@dataclass(frozen=True)
class Dominates:
    """mean(a) >= mean(b) at every x both have (and, with ``strictly_somewhere``, > at one x or more)."""
    a: str
    b: str
    strictly_somewhere: bool = False
    axis: str = "x"  # the name of x in the text, e.g. "T"

    def paper(self) -> str:
        return f"{self.a} ≥ {self.b} at every {self.axis}" + (", > at one or more" if self.strictly_somewhere else "")

    def judge(self, stats: Stats) -> Judged | None:
        sa, sb = dict(_series(stats, self.a)), dict(_series(stats, self.b))
        xs = sorted(set(sa) & set(sb), key=lambda x: (x is None, x))
        if not xs:
            return None
        pairs = [(x, sa[x].mean, sb[x].mean) for x in xs]
        if any(m is None for _, a, b in pairs for m in (a, b)):
            return Judged(False, "some points have no finished seed", "missing points")
        value = "; ".join(f"{self.axis} = {x}: {sa[x].short()} vs {sb[x].short()}" for x in xs)
        worse = [x for x, a, b in pairs if a < b]
        if worse:
            return Judged(False, value, f"lower at {self.axis} = {', '.join(map(str, worse))}")
        if self.strictly_somewhere and not any(a > b for _, a, b in pairs):
            return Judged(False, value, "never strictly higher")
        return Judged(True, value)


@dataclass(frozen=True)
class Closes:
    """On a log scale, ``mid`` closes at least ``at_least`` of the gap from ``start`` down to ``end`` at ``x``:
    log(start / mid) / log(start / end) >= at_least (0: no better than start, 1: as good as end)."""
    start: str
    mid: str
    end: str
    at_least: float
    x: Any = None

    def paper(self) -> str:
        return f"{self.mid} closes ≥ {self.at_least:.0%} of the {self.start} → {self.end} gap (log scale){_at(self.x)}"

    def judge(self, stats: Stats) -> Judged | None:
        s, m, e = (_pick(stats, g, self.x) for g in (self.start, self.mid, self.end))
        if s is None or m is None or e is None:
            return None
        if any(v.mean is None or v.mean <= 0 for v in (s, m, e)) or s.mean <= e.mean:
            return Judged(False, f"{self.start} {s.text()}, {self.mid} {m.text()}, {self.end} {e.text()}",
                          f"no gap from {self.start} down to {self.end}")
        f = math.log(s.mean / m.mean) / math.log(s.mean / e.mean)
        value = f"{f:.0%} closed ({self.start} {s.short()}; {self.mid} {m.short()}; {self.end} {e.short()})"
        return Judged(f >= self.at_least, value, "" if f >= self.at_least else f"{f:.0%} < {self.at_least:.0%}")


Expectation = Number | Range | Ratio | Trend | Dominates | Closes


@dataclass(frozen=True)
class Claim:
    figure: str  # the figure or table, e.g. "Table 1"
    where: str  # where it is in the paper, e.g. "Sec. 5.2, p. 7"
    statement: str  # what the paper says, in a sentence
    sql: str  # the quantity: columns grp, x, seed, value; one `?` = the sweep id
    expect: Expectation  # what the paper reports: a number with its tolerance, or a shape
    scales: tuple[str, ...]  # the scales at which the claim is expected to hold
    tolerance: str  # why this tolerance (or this threshold of a shape)
    paper: str = ""  # the paper's value in words, when it says more than the expectation's own text
    params: tuple = field(default=())  # extra SQL parameters after the sweep id


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    paper: str  # the paper's value
    value: str  # this run's value
    verdict: str  # HOLDS | DIFFERS | NOT_AT_SCALE | NOT_MEASURED
    gap: str  # by how much it differs ("" otherwise)
    expected: bool  # the claim is expected to hold at this sweep's scale

    @property
    def failed(self) -> bool:
        """A claim expected at this scale that does not hold: `sweep verify` exits 1."""
        return self.expected and self.verdict == DIFFERS


def stats(con: duckdb.DuckDBPyConnection, claim: Claim, sweep_id: str) -> Stats:
    """Per (grp, x): runs, n, mean and standard error over seeds of the claim's SQL rows."""
    groups: dict[tuple[str, Any], list[float | None]] = {}
    for r in run_arrow(con, claim.sql, [sweep_id, *claim.params]).to_pylist():
        groups.setdefault((r["grp"], r["x"]), []).append(r["value"])
    out: Stats = {}
    for key, vals in groups.items():
        ok = [float(v) for v in vals if v is not None and math.isfinite(v)]
        n = len(ok)
        mean = sum(ok) / n if n else None
        se = math.sqrt(sum((v - mean) ** 2 for v in ok) / (n - 1) / n) if n > 1 else None
        out[key] = Stat(len(vals), n, mean, se)
    return out


def judge(con: duckdb.DuckDBPyConnection, claim: Claim, sweep_id: str, scale: str | None) -> Verdict:
    expected = scale in claim.scales
    paper = claim.paper or claim.expect.paper()
    try:
        got = claim.expect.judge(stats(con, claim, sweep_id))
    except AnalysisError as e:  # a column these rows do not have (a sweep older than the claim): not measured
        m = MISSING_COLUMN.search(str(e))
        if m is None:
            raise
        return Verdict(claim, paper, f"— (no column {m.group(1)} in this sweep's rows)", NOT_MEASURED, "", expected)
    if got is None:
        return Verdict(claim, paper, "—", NOT_MEASURED, "", expected)
    if not expected:
        return Verdict(claim, paper, got.value, NOT_AT_SCALE, "", expected)
    return Verdict(claim, paper, got.value, HOLDS if got.holds else DIFFERS, got.gap, expected)


def claims_of(sweep: dict, registry: dict[str, tuple[Claim, ...]]) -> tuple[Claim, ...]:
    """A sweep's claims: its name's, else (a spec file's sweep) its base's."""
    return registry.get(sweep.get("name")) or registry.get(sweep.get("base")) or ()


def verdicts(con: duckdb.DuckDBPyConnection, sweep: dict, registry: dict[str, tuple[Claim, ...]]) -> list[Verdict]:
    """Every claim of ``sweep`` (as ``analysis.db.resolve_sweep`` gives it) judged on its rows."""
    return [judge(con, c, sweep["sweep_id"], sweep.get("scale")) for c in claims_of(sweep, registry)]


