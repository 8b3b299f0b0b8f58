"""A spec's structured entries as typed frozen records, parsed once where they enter (``--set`` text, a spec
file's tables, sweep.json) and carried typed from there to the trial:

- ``LrRange``: a cell's learning-rate search range, ``--set lr_ranges=rnn:1e-4:1e-2`` (a spec file:
  ``[lr_search] ranges = {rnn = [1e-4, 1e-2]}``);
- ``Analysis``: an analysis trial (trainers.analyses) and the cell it runs on, ``--set analyses=hessian_opt:lru``
  (``name[:cell]``; without a cell the analysis names its own);
- ``CellInit``: one cell's own init, ``--set cell_inits=vrnn:orthogonal`` (a spec file: ``cell_inits =
  {vrnn = "orthogonal"}``);
- ``LrDecay``: a task's step schedule, ``--set lr_decays=sine:0.1:5000:10000`` (``task:gamma:m1:m2:...``: the rate
  x gamma after each milestone step).

With ``LrGrid`` (orchestrator.lr_grid) and ``ProbeSpec`` (trainers.probe_spec) each has ``parse(text)`` (the
--set syntax; ValueError naming the form), ``from_native(value)`` (a spec file's or sweep.json's value: that text
or a table; TypeError otherwise) and ``text()`` (the --set syntax again, for `sweep show` and error messages).
Names and ranges are checked by the spec's validation (orchestrator.validate), not here: a cell without ``:init``
parses (init ""), so that the validation names the valid entries.
"""
from __future__ import annotations

from dataclasses import dataclass


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class LrRange:
    cell: str  # a cell registry name
    low: float  # the log-uniform search range's bounds, 0 < low < high
    high: float

    FORM = "cell:low:high"

    def text(self) -> str:
        return f"{self.cell}:{self.low!r}:{self.high!r}"

    @classmethod
    def parse(cls, text: str) -> "LrRange":
        parts = text.strip().split(":")
        if len(parts) != 3 or not parts[0].strip():
            raise ValueError(f"expected {cls.FORM}, got {text!r}")
        return cls(parts[0].strip(), float(parts[1]), float(parts[2]))

    @classmethod
    def from_native(cls, value) -> "LrRange":
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, dict) and set(value) == {"cell", "low", "high"} and _number(value["low"]) \
                and _number(value["high"]):
            return cls(str(value["cell"]), float(value["low"]), float(value["high"]))
        raise TypeError


@dataclass(frozen=True)
class Analysis:
    name: str  # an analysis registry name (trainers.analyses)
    cell: str = ""  # the cell it runs on; "": the analysis's own (its trial's cell is then its name)

    FORM = "name[:cell]"

    def text(self) -> str:
        return f"{self.name}:{self.cell}" if self.cell else self.name

    @property
    def trial_id(self) -> str:
        return self.text().replace(":", "-")

    @classmethod
    def parse(cls, text: str) -> "Analysis":
        name, _, cell = text.strip().partition(":")
        if not name.strip():
            raise ValueError(f"expected {cls.FORM}, got {text!r}")
        return cls(name.strip(), cell.strip())

    @classmethod
    def from_native(cls, value) -> "Analysis":
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, dict) and "name" in value and set(value) <= {"name", "cell"}:
            return cls(str(value["name"]), str(value.get("cell") or ""))
        raise TypeError


@dataclass(frozen=True)
class CellInit:
    cell: str  # a cell registry name
    init: str  # one of the inits the cell supports (trainers.cells.spec); "": none given (validation refuses it)

    FORM = "cell:init"

    def text(self) -> str:
        return f"{self.cell}:{self.init}" if self.init else self.cell

    @classmethod
    def parse(cls, text: str) -> "CellInit":
        cell, _, init = text.strip().partition(":")
        if not cell.strip():
            raise ValueError(f"expected {cls.FORM}, got {text!r}")
        return cls(cell.strip(), init.strip())

    @classmethod
    def from_native(cls, value) -> "CellInit":
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, dict) and set(value) == {"cell", "init"}:
            return cls(str(value["cell"]), str(value["init"]))
        raise TypeError


def _gamma_text(gamma: float) -> str:
    r = repr(gamma)
    return r[:-2] if r.endswith(".0") else r


@dataclass(frozen=True)
class LrDecay:
    task: str  # a task registry name
    gamma: float  # the factor at each milestone, 0 < gamma < 1
    milestones: tuple[int, ...]  # increasing positive steps after which the rate is multiplied by gamma

    FORM = "task:gamma:m1:m2:..."

    def text(self) -> str:
        return ":".join([self.task, _gamma_text(self.gamma), *map(str, self.milestones)])

    @classmethod
    def parse(cls, text: str) -> "LrDecay":
        task, *rest = text.strip().split(":")
        if not task.strip() or not rest:
            raise ValueError(f"expected {cls.FORM}, got {text!r}")
        return cls(task.strip(), float(rest[0]), tuple(int(m) for m in rest[1:]))

    @classmethod
    def from_native(cls, value) -> "LrDecay":
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, dict) and set(value) == {"task", "gamma", "milestones"} and _number(value["gamma"]) \
                and isinstance(value["milestones"], (list, tuple)) and all(
                    isinstance(m, int) and not isinstance(m, bool) for m in value["milestones"]):
            return cls(str(value["task"]), float(value["gamma"]), tuple(value["milestones"]))
        raise TypeError
