"""Learning-rate grids: which rates a grid group trains under the ``grid`` protocol (``SweepSpec.lr_search``).

An ``LrGrid`` names the rates for the groups of one cell, of one task, or of one (task, cell); a group takes
the most specific grid that matches it (task and cell, then cell, then task), else the spec's fixed ``lr``.
On the command line each grid is one item of a comma-separated list: ``[task/]cell:rate/rate/...``, with
``*`` for any cell (``--set lr_grids=rnn:1e-3/3.2e-4,lru:0.1/0.032``, ``--set lr_grids=sine/*:1e-3``); in a
spec file a table ``{cell = "rnn", rates = [1e-3, 3.2e-4]}`` (``task`` optional) or the same string.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

PROTOCOLS = ("grid", "tpe", "none")  # SweepSpec.lr_search
ANY = "*"


@dataclass(frozen=True)
class LrGrid:
    cell: str = ANY  # a cell registry name, or * for every cell
    rates: tuple[float, ...] = ()  # the peak learning rates, each > 0
    task: str = ANY  # a task registry name, or * for every task

    FORM = "[task/]cell:rate/rate/..."

    @classmethod
    def parse(cls, text: str) -> "LrGrid":
        return parse(text)

    @classmethod
    def from_native(cls, value) -> "LrGrid":
        return from_native(value)

    def text(self) -> str:
        head = self.cell if self.task == ANY else f"{self.task}/{self.cell}"
        return f"{head}:" + "/".join(f"{r:g}" for r in self.rates)

    def problem(self) -> str | None:
        """Why this grid is invalid (rates empty or not positive), else None; names are checked by the spec."""
        if not self.rates or not all(r > 0 and math.isfinite(r) for r in self.rates):
            return f"{self.text()!r} needs one or more positive rates"
        return None


def specificity(grid: LrGrid, group: dict) -> int:
    """0 when ``grid`` does not apply to ``group``; else 1 (any cell), 2 (its task), 3 (its cell), 4 (both)."""
    if grid.cell not in (ANY, group["cell"]) or grid.task not in (ANY, group["task"]):
        return 0
    return 1 + (grid.task != ANY) + 2 * (grid.cell != ANY)


def parse(text: str) -> LrGrid:
    """``[task/]cell:rate/rate/...`` -> LrGrid; ValueError naming the expected form."""
    head, sep, rates = text.strip().partition(":")
    task, slash, cell = head.partition("/")
    if not slash:
        task, cell = ANY, head
    if not sep or not cell.strip() or not rates.strip():
        raise ValueError(f"expected [task/]cell:rate/rate/..., got {text!r}")
    return LrGrid(cell=cell.strip(), task=task.strip() or ANY,
                  rates=tuple(float(r) for r in rates.split("/") if r.strip()))


def from_native(value) -> LrGrid:
    """A spec file's value: a table {cell, rates, task?} or the command-line string."""
    if isinstance(value, LrGrid):
        return value
    if isinstance(value, str):
        return parse(value)
    if isinstance(value, dict) and set(value) <= {"cell", "rates", "task"} and "rates" in value:
        rates = value["rates"] if isinstance(value["rates"], list) else [value["rates"]]
        if not all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in rates):
            raise TypeError
        return LrGrid(cell=str(value.get("cell", ANY)), task=str(value.get("task", ANY)),
                      rates=tuple(float(r) for r in rates))
    raise TypeError


def rates_for(grids: tuple[LrGrid, ...], group: dict) -> tuple[float, ...] | None:
    """The rates of the most specific grid for ``group``, or None when no grid applies."""
    best = max(grids, key=lambda g: specificity(g, group), default=None)
    return best.rates if best is not None and specificity(best, group) else None
