"""Probes: measurements taken during a trial, each writing its own table(s). One file per probe; the
registry maps the name used in specs (``--set probes=hessian:every=100,attractors``) to the class. A probe's own
tables (``Probe.schemas``) join ``layout.schemas.SCHEMAS`` when the registry is imported and when it is built."""
from __future__ import annotations

from layout.schemas import register_table
from ..probe_spec import ProbeSpec
from ..registry import lookup
from .attractors import AttractorProbe
from .base import Probe, ProbeContext, ProbeOptions, parse_options
from .hessian import HessianProbe
from .lattice import LatticeProbe
from .signal import SignalProbe

PROBES: dict[str, type[Probe]] = {
    "attractors": AttractorProbe,
    "hessian": HessianProbe,
    "lattice": LatticeProbe,
    "signal": SignalProbe,
}


def register_tables(cls: type[Probe]) -> None:
    for table, schema in cls.schemas.items():
        register_table(table, schema)


def build_probe(spec: ProbeSpec | str) -> Probe:
    """A probe record (or its text, ``name[:key=value...]``) -> a configured probe."""
    spec = ProbeSpec.from_native(spec)
    cls = lookup(PROBES, "probe", spec.name)
    register_tables(cls)
    return cls(parse_options(cls.Options, spec.options, spec.name))


for _cls in PROBES.values():
    register_tables(_cls)


__all__ = ["PROBES", "Probe", "ProbeContext", "ProbeOptions", "build_probe"]
