"""The probe interface: a measurement taken during a trial at a cadence, writing rows of its own tables.

A probe is configured by a frozen ``Options`` dataclass (``every`` plus its own fields, typed, with
defaults) parsed from a spec string ``name:key=value:key=value`` (``hessian:every=100:k=3``). The trainer
calls ``probe(ctx)`` at step 0 (initialisation) when ``options.at_init``, every ``options.every`` steps
(0 = never after init) and at the last step when ``options.at_end``; the probe returns its rows as
``{table: {column: [values]}}`` (``sweep_id``/``trial_id`` are added by the writer; ``step`` is the
probe's to fill). Probes never change the model or the optimiser state.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa
import torch
from torch import Tensor

from ..probe_spec import ProbeSpec


@dataclass
class ProbeContext:
    model: "torch.nn.Module"  # the trial's Stack (uniform cell interface: forward, forward_pure, step, unroll)
    task: object  # the trial's Task: d_in, d_out, loss(y_hat, y), sample(batch, generator)
    x: Tensor  # a fixed probe batch, the same at every call of a trial (on the trial's device)
    y: Tensor
    step: int  # optimiser steps taken so far (0 = at init)
    lr: float  # the learning rate of the next step
    device: torch.device
    seed: int  # the trial's seed, for probes that draw random vectors (derive a generator from it)

    def loss_pure(self, x: Tensor | None = None, y: Tensor | None = None) -> Tensor:
        """The task loss through the double-backward-safe forward (Hessian-vector products)."""
        x = self.x if x is None else x
        y = self.y if y is None else y
        return self.task.loss(self.model.forward_pure(x), y)


@dataclass(frozen=True)
class ProbeOptions:
    every: int = 0  # steps between calls after init (0 = never)
    at_init: bool = True  # also at step 0, before training
    at_end: bool = True  # also after the last step


class Probe:
    """Base class: subclasses set ``name``, ``tables``, ``Options`` and implement ``__call__``.

    A probe that writes a table of its own declares it in ``schemas`` ({table: ``layout.schemas.table_schema(
    col(...), ...)``}); the registry adds it to ``layout.schemas.SCHEMAS``, so the probe is one file plus
    its registry line (docs/extending.md)."""

    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    schemas: ClassVar[dict[str, pa.Schema]] = {}  # tables this probe adds (those already in SCHEMAS need none)
    Options: ClassVar[type[ProbeOptions]] = ProbeOptions

    def __init__(self, options: ProbeOptions):
        self.options = options

    def due(self, step: int, last_step: int) -> bool:
        o = self.options
        return ((step == 0 and o.at_init) or (step > 0 and o.every and step % o.every == 0)
                or (step == last_step and step > 0 and o.at_end))

    def __call__(self, ctx: ProbeContext) -> dict[str, dict[str, list]]:
        raise NotImplementedError


def parse_options(cls: type[ProbeOptions], options: tuple[tuple[str, str | None], ...] | str,
                  probe: str) -> ProbeOptions:
    """A probe record's options (``trainers.probe_spec.ProbeSpec``; or their text ``key=value:key=value``) -> the
    probe's typed Options; errors name the probe, key and valid keys."""
    if isinstance(options, str):
        options = ProbeSpec.parse(f"{probe}:{options}").options
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    values = {}
    for key, raw in options:
        if raw is None or key not in fields:
            raise ValueError(f"unknown option {key!r} of probe {probe!r}; valid: {', '.join(fields)}")
        tp = hints[key] if isinstance(hints[key], type) else eval_type(hints[key])
        try:
            values[key] = (raw.lower() in ("1", "true", "yes", "on")) if tp is bool else tp(raw)
        except ValueError:
            raise ValueError(f"invalid {probe}:{key}={raw!r}; expected {tp.__name__}") from None
        if tp is bool and raw.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ValueError(f"invalid {probe}:{key}={raw!r}; expected true or false")
    return cls(**values)


def eval_type(name: str) -> type:
    """Option annotations are simple builtins written as strings (``from __future__ import annotations``)."""
    return {"int": int, "float": float, "bool": bool, "str": str}[name]
