"""SweepSpec: the grid and the scale of a sweep, a typed frozen dataclass with validated overrides.

A named sweep (``orchestrator/sweeps/<name>.py``) defines ``get_spec(scale)``; ``--set key=value`` then
overrides any field, parsed to the field's declared type (``--set cells=rnn,lru --set nus=0.9,0.99``).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass

from trainers.cells import CELLS
from trainers.probes import build_probe
from trainers.registry import UnknownName
from trainers.stack import BLOCKS
from trainers.tasks import TASKS

SCALES = ("smoke", "quick", "paper")


class UserError(ValueError):
    """A mistake in what the user asked for; the CLI prints its one-line message, no traceback."""


class SpecError(UserError):
    """A bad sweep name, scale, override or field value."""


@dataclass(frozen=True)
class SweepSpec:
    name: str  # the named sweep this spec came from
    scale: str  # smoke | quick | paper
    task: str  # task registry name
    cells: tuple[str, ...]  # cell registry names
    depths: tuple[int, ...]  # stack depths (1 = the paper's model)
    nus: tuple[float, ...]  # memory parameters nu0, each in (0, 1)
    seeds: int  # seeds per (cell, depth, nu0) in the seed stage: 0 .. seeds-1
    steps: int  # optimiser steps per trial
    batch: int  # sequences per step
    seq_len: int  # sequence length T
    hidden: int  # student recurrent units per layer
    teacher_hidden: int = 10  # teacher state size
    d_model: int = 16  # residual-stream width for depth > 1
    layer_norm: bool = False  # LayerNorm in deep stacks
    block: str = "linear"  # residual block of deep stacks: linear | glu
    lr_search_trials: int = 0  # Optuna TPE trials per (cell, depth, nu0); 0 = no search, use ``lr``
    lr: float = 1e-3  # the learning rate when there is no search
    lr_ranges: tuple[str, ...] = ()  # per-cell search ranges "cell:low:high"; cells not named use lr_range
    lr_range: tuple[float, float] = (1e-4, 1e-1)  # default search range (log-uniform)
    lr_search_seed: int = 1000  # the seed the search trials train with (not one of the seed stage's)
    lr_min: float = 1e-7  # floor of the cosine decay
    clip: float = 0.0  # global-norm clipping threshold; 0 = off
    eval_batch: int = 1024  # fixed evaluation batch size
    grad_norm_every: int = 10  # steps between per-group gradient-norm rows (0 = never)
    checkpoint_every: int = 500  # steps between trial checkpoints, for resume and retries (0 = none)
    max_failures: int = 3  # retries of a trial whose process or node died, from its last checkpoint
    device: str = "auto"  # auto | cpu | cuda
    probes: tuple[str, ...] = ()  # probe specs name[:key=value...], e.g. hessian:every=100,attractors:every=200
    probe_batch: int = 64  # the fixed batch probes measure on
    hessian_opt_cells: tuple[str, ...] = ()  # cells for the Hessian-at-optimality stage (Fig. 4); () = skip

    def lr_range_for(self, cell: str) -> tuple[float, float]:
        for entry in self.lr_ranges:
            name, lo, hi = entry.split(":")
            if name == cell:
                return float(lo), float(hi)
        return self.lr_range

    def grid(self) -> list[dict]:
        """The (cell, depth, nu) groups; each gets one learning rate, then ``seeds`` trials."""
        return [dict(cell=c, depth=d, nu=n) for c in self.cells for d in self.depths for n in self.nus]

    def validate(self) -> "SweepSpec":
        def bad(field, value, valid):
            raise SpecError(f"invalid {field}={value!r}; valid: {valid}")

        if self.scale not in SCALES:
            bad("scale", self.scale, ", ".join(SCALES))
        if self.task not in TASKS:
            bad("task", self.task, ", ".join(sorted(TASKS)))
        if not self.cells:
            bad("cells", "", ", ".join(sorted(CELLS)))
        for c in self.cells + self.hessian_opt_cells:
            if c not in CELLS:
                raise SpecError(f"unknown cell {c!r}; valid: {', '.join(sorted(CELLS))}")
        for n in self.nus:
            if not (0.0 < n < 1.0) or not math.isfinite(n):
                bad("nus", n, "values in the open interval (0, 1)")
        if not self.nus:
            bad("nus", "", "one or more values in (0, 1)")
        for d in self.depths:
            if d < 1:
                bad("depths", d, "integers >= 1")
        if not self.depths:
            bad("depths", "", "one or more integers >= 1")
        for field in ("seeds", "steps", "batch", "seq_len", "hidden", "teacher_hidden", "d_model",
                      "eval_batch"):
            if getattr(self, field) < 1:
                bad(field, getattr(self, field), "an integer >= 1")
        for field in ("lr_search_trials", "grad_norm_every", "checkpoint_every", "max_failures"):
            if getattr(self, field) < 0:
                bad(field, getattr(self, field), "an integer >= 0")
        if not self.lr > 0:
            bad("lr", self.lr, "a positive number")
        if self.clip < 0:
            bad("clip", self.clip, "0 (off) or a positive threshold")
        for entry in self.lr_ranges:
            parts = entry.split(":")
            try:
                ok = len(parts) == 3 and parts[0] in CELLS and 0 < float(parts[1]) < float(parts[2])
            except ValueError:
                ok = False
            if not ok:
                bad("lr_ranges", entry, "entries cell:low:high with a known cell and 0 < low < high")
        lo, hi = self.lr_range
        if not 0 < lo < hi:
            bad("lr_range", self.lr_range, "low,high with 0 < low < high")
        if self.block not in BLOCKS:
            bad("block", self.block, ", ".join(BLOCKS))
        for p in self.probes:
            try:
                build_probe(p)
            except (UnknownName, ValueError) as e:
                raise SpecError(f"invalid probes entry {p!r}: {e}") from None
        if self.probe_batch < 1:
            bad("probe_batch", self.probe_batch, "an integer >= 1")
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            bad("device", self.device, "auto, cpu, cuda, cuda:N")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SweepSpec":
        """Rebuild from ``to_dict`` output read back from JSON (lists become the declared tuples)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SpecError(f"unknown spec fields {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _parse(field: dataclasses.Field, text: str):
    """Parse ``text`` to the declared type of ``field`` (int, float, bool, str, tuples of those)."""
    hint = typing.get_type_hints(SweepSpec)[field.name]
    origin, args = typing.get_origin(hint), typing.get_args(hint)

    def scalar(tp, s):
        s = s.strip()
        if tp is bool:
            if s.lower() in ("1", "true", "yes", "on"):
                return True
            if s.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        return tp(s)

    try:
        if origin is tuple:
            items = [s for s in text.split(",") if s.strip()]
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(scalar(args[0], s) for s in items)
            if len(items) != len(args):
                raise ValueError(f"expected {len(args)} comma-separated values")
            return tuple(scalar(tp, s) for tp, s in zip(args, items))
        if origin in (typing.Union, types.UnionType):
            return scalar(next(a for a in args if a is not type(None)), text)
        return scalar(hint, text)
    except ValueError as e:
        raise SpecError(f"invalid --set {field.name}={text!r}: {e}; expected {_type_name(hint)}") from None


def _type_name(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"comma-separated {args[0].__name__} values"
        return ",".join(a.__name__ for a in args)
    return getattr(hint, "__name__", str(hint))


def apply_overrides(spec: SweepSpec, sets: list[str]) -> SweepSpec:
    """Apply ``key=value`` overrides, each parsed to the field's type; unknown keys are errors."""
    fields = {f.name: f for f in dataclasses.fields(SweepSpec) if f.name not in ("name", "scale")}
    changes = {}
    for item in sets:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise SpecError(f"invalid --set {item!r}; expected key=value")
        if key not in fields:
            raise SpecError(f"unknown --set key {key!r}; valid: {', '.join(sorted(fields))}")
        changes[key] = _parse(fields[key], value)
    return dataclasses.replace(spec, **changes)
