"""Registry look-up shared by every family (cells, tasks, probes, sweeps)."""
from __future__ import annotations

from typing import TypeVar

V = TypeVar("V")


class UnknownName(ValueError):
    """A registry miss; the message names the bad value and the valid ones."""


def lookup(registry: dict[str, V], kind: str, name: str) -> V:
    if name not in registry:
        raise UnknownName(f"unknown {kind} {name!r}; valid: {', '.join(sorted(registry))}")
    return registry[name]
