"""A probe as a spec names it: the probe's registry name and its options, a typed frozen record parsed once where
it enters (``--set probes=hessian:every=100``, a spec file's ``[probes]`` table, sweep.json, a stored trial
config) and carried as is to the trial, where ``trainers.probes.build_probe`` turns it into a configured probe.

The --set syntax is ``name[:key=value...]``; JSON holds ``{"name": ..., "options": [[key, value], ...]}``, and
reads the old text too (configs stored before the record). Option values stay text here: each probe's typed
``Options`` converts and checks them (``trainers.probes.base.parse_options``), as do names, against the registry.
A bare ``key`` without ``=`` is kept with the value None, so that the probe's check names it an unknown option.

Not in ``trainers/probes/``: that package's registry imports torch, and the orchestrator reads specs without it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeSpec:
    name: str  # a probe registry name (trainers.probes.PROBES)
    options: tuple[tuple[str, str | None], ...] = ()  # (key, value text) in the order given

    FORM = "name[:key=value...]"

    def text(self) -> str:
        return ":".join([self.name, *(k if v is None else f"{k}={v}" for k, v in self.options)])

    def option(self, key: str, default: str | None = None) -> str | None:
        return dict(self.options).get(key, default)

    @classmethod
    def parse(cls, text: str) -> "ProbeSpec":
        name, _, rest = text.strip().partition(":")
        if not name.strip():
            raise ValueError(f"expected {cls.FORM}, got {text!r}")
        options = []
        for item in filter(None, rest.split(":")):
            key, sep, value = item.partition("=")
            options.append((key, value if sep else None))
        return cls(name.strip(), tuple(options))

    @classmethod
    def from_native(cls, value) -> "ProbeSpec":
        """A record, its --set text (configs stored before the record) or its JSON object; TypeError otherwise."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, dict) and "name" in value and set(value) <= {"name", "options"}:
            opts = value.get("options") or ()
            pairs = opts.items() if isinstance(opts, dict) else opts
            if all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
                return cls(str(value["name"]), tuple((str(k), None if v is None else str(v)) for k, v in pairs))
        raise TypeError(f"expected a probe {{name, options}} or {cls.FORM!r}, got {value!r}")


def probe_specs(values) -> tuple[ProbeSpec, ...]:
    """A config's ``probes`` (records, texts or JSON objects, as read back) as records."""
    return tuple(ProbeSpec.from_native(v) for v in values)
