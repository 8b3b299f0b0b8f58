"""Named sweeps: one file each, whose docstring says what it reproduces, how to run it and what it costs."""
from __future__ import annotations

from types import ModuleType

from trainers.registry import lookup

from ..spec import SCALES, SpecError, SweepSpec, apply_overrides
from . import attractors, curse_of_memory, deep_rnn, exploding_gradients, signal_propagation

SWEEPS: dict[str, ModuleType] = {
    attractors.NAME: attractors,
    curse_of_memory.NAME: curse_of_memory,
    deep_rnn.NAME: deep_rnn,
    exploding_gradients.NAME: exploding_gradients,
    signal_propagation.NAME: signal_propagation,
}


def resolve(name: str, scale: str = "quick", sets: list[str] | None = None) -> SweepSpec:
    """The validated spec of a named sweep at a scale, with ``--set`` overrides applied."""
    if name not in SWEEPS:
        raise SpecError(f"unknown sweep {name!r}; valid: {', '.join(sorted(SWEEPS))}")
    if scale not in SCALES:
        raise SpecError(f"unknown scale {scale!r}; valid: {', '.join(SCALES)}")
    return apply_overrides(lookup(SWEEPS, "sweep", name).get_spec(scale), sets or []).validate()
