"""Registry look-up shared by every family (cells, tasks, probes, sweeps)."""
from __future__ import annotations

from typing import TypeVar

V = TypeVar("V")


class UnknownName(ValueError):
    """A registry miss; the message names the bad value and the valid ones."""


def summary(entry) -> str:
    """A registry entry's one-line description: the first line of its own docstring (never an inherited one),
    as `sweep cells`, `sweep tasks`, `sweep probes` and `sweep analyses` list them."""
    doc = entry.__doc__ if isinstance(entry, type) and "__doc__" in vars(entry) else getattr(entry, "__doc__", None)
    return (doc or "").strip().split("\n")[0].strip()


def lookup(registry: dict[str, V], kind: str, name: str) -> V:
    if name not in registry:
        raise UnknownName(f"unknown {kind} {name!r}; valid: {', '.join(sorted(registry))}")
    return registry[name]
