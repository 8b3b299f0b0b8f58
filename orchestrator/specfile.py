"""Spec files: a researcher's own sweep in TOML or YAML, validated before anything runs.

    base = "curse-of-memory"   # optional: the named sweep to start from (its preset at `scale`)
    scale = "smoke"            # the base's preset: smoke | quick | paper (default quick; --scale wins)
    name = "my-memory-sweep"   # the sweep's name: sweep id prefix, `sweep ls`; default: the file's stem
    [grid]       tasks, cells, depths, nus, seq_lens, clips, layer_norms: lists (a single value may be a scalar);
                 and any field of orchestrator.axes.VARIABLE given a list (hidden = [32, 64]) is an axis too, here
                 or in [train]
    [train]      every other SweepSpec field by its --set name: seeds, steps, batch, hidden, optimizer, ...;
                 cell_inits = {vrnn = "orthogonal", lstm = "chrono"} (or a list of "cell:init") gives cells inits
                 `lr` here is a fixed rate, so it turns the search off ([lr_search] as well is an error)
    [lr_search]  protocol (grid | tpe | none), grids, trials, pruner (halving | hyperband | none), range = [low,
                 high], ranges = {cell = [low, high]}, seed
    [probes]     NAME = true | {option = value, ...}: replaces the base's probes (an empty section: none)
    [resources]  cpus_per_trial, gpus_per_trial, max_concurrent (the launch flags of the same names win)

``--scale smoke`` on a file is a plumbing check of that very file: the file's grid, probes and settings, with its
budget capped at ``SMOKE_CAPS`` (at most 30 steps, 2 seeds, 2 search trials, batch 16, ...); ``--set`` still wins.
``--scale quick|paper`` picks the base's preset the file starts from; the file's own values win over it.

Without ``base`` the grid's axes without a default (tasks, cells, depths, nus, seq_lens) must be given. Values
keep their TOML/YAML types and are checked against the field's declared type (``spec.coerce``); the spec then
goes through ``SweepSpec.validate``, as a named sweep does, after ``--set key=value`` overrides. Every error is
one line: the file, the line, the key, the bad value and what would be valid.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from trainers.probe_spec import ProbeSpec

from .axes import VARIABLE, entry
from .spec import AXES, SCALES, Resources, SpecError, SweepSpec, apply_overrides, coerce
from .spec_records import CellInit, LrRange
from .specfile_text import Doc, SpecFileError, parse_text
from .sweeps import SWEEPS, resolve

SUFFIXES = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}
TOP = ("base", "scale", "name")
SECTIONS = ("grid", "train", "lr_search", "probes", "resources")
GRID = tuple(f"{a}s" for a in AXES)
LR_SEARCH = {"protocol": "lr_search", "grids": "lr_grids", "trials": "lr_search_trials", "range": "lr_range",
             "ranges": "lr_ranges", "seed": "lr_search_seed", "pruner": "lr_search_pruner"}
RESOURCES = tuple(f.name for f in dataclasses.fields(Resources))
TRAIN = tuple(f.name for f in dataclasses.fields(SweepSpec)
              if f.name not in {*TOP, "probes", "vary", *GRID, *LR_SEARCH.values()})
REQUIRED = tuple(f.name for f in dataclasses.fields(SweepSpec)
                 if f.default is dataclasses.MISSING and f.name not in TOP)
# --scale smoke on a spec file: the budget fields, capped (never raised); every other field stays the file's
SMOKE_CAPS = {"steps": 30, "seeds": 2, "lr_search_trials": 2, "batch": 16, "eval_batch": 64, "checkpoint_every": 10}
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Target:
    """What `sweep launch` / `sweep show` run: a named sweep or a spec file, resolved and validated."""

    spec: SweepSpec  # the validated spec, --set overrides applied
    resources: Resources  # the file's [resources] (defaults for a named sweep); launch flags override these
    base: str | None  # the named sweep it starts from (a named sweep: itself; a file without base: None)
    source: dict | None  # a spec file: {"path", "format", "text"}, recorded in sweep.json; a named sweep: None


def is_spec_file(target: str) -> bool:
    """A spec file, not a sweep name: a .toml/.yaml/.yml name, a path with a folder, or an existing file."""
    return Path(target).suffix.lower() in SUFFIXES or os.sep in target or os.path.isfile(target)


def load_target(target: str, scale: str | None = None, sets: list[str] | None = None) -> Target:
    """A named sweep (at ``scale``, default quick) or a spec file (``scale`` overrides its own), with ``sets``."""
    if is_spec_file(target):
        return load_file(target, scale, sets or [])
    return Target(resolve(target, scale or "quick", sets), Resources(), target, None)


def _unknown(doc: Doc, keys: tuple, valid, elsewhere: dict | None = None) -> SpecFileError:
    """An unknown key's error: where it belongs when ``elsewhere`` (key -> hint) knows, else the nearest valid
    name and all of them."""
    key = str(keys[-1])
    if elsewhere and key in elsewhere:
        return doc.error(keys, f"unknown key here; {elsewhere[key]}")
    near = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    hint = f"did you mean {near[0]}? " if near else ""
    where = f"[{keys[0]}]" if len(keys) > 1 else "the top level"
    return doc.error(keys, f"unknown key {key!r} in {where}; {hint}valid: {', '.join(valid)}")


def _belongs(*groups: tuple[str, tuple]) -> dict[str, str]:
    """key -> "KEY belongs in [SECTION]" for the keys of the given (section, keys) groups."""
    hints = {k: f"{k} belongs in [{section}]" for section, keys in groups for k in keys}
    hints.update({v: f"{v} belongs in [lr_search], as {k}" for k, v in LR_SEARCH.items()}, probes="probes belong "
                 "in [probes], as NAME = true | {option = value}")
    return hints


def _probe_entry(doc: Doc, name: str, value) -> ProbeSpec | None:
    """``NAME = true | false | {option = value}`` -> the spec's probe record (None: switched off)."""
    if value is True:
        return ProbeSpec(name)
    if value is False:
        return None
    if not isinstance(value, dict):
        raise doc.error(("probes", name), f"{value!r} is not valid; valid: true, false or a table of options")
    opts = []
    for k, v in value.items():
        if isinstance(v, (dict, list)) or v is None:
            raise doc.error(("probes", name, k), f"{v!r} is not valid; valid: a number, string or true/false")
        opts.append((str(k), str(v).lower() if isinstance(v, bool) else str(v)))
    return ProbeSpec(name, tuple(opts))


def load_file(path: str, scale: str | None = None, sets: list[str] | None = None) -> Target:
    """Read, check and resolve a spec file; raises SpecFileError (one line, with file and line) on any mistake.
    ``scale`` (the --scale flag) overrides the file's; ``sets`` (--set) override its fields."""
    fmt = SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise SpecFileError(f"{path}: not a spec file: {Path(path).suffix or 'no suffix'!r}; valid: "
                            f"{', '.join(SUFFIXES)}")
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise SpecFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecFileError(f"{path}: cannot be read ({type(e).__name__}: {e})") from None
    data, doc = parse_text(path, text, fmt)
    if not isinstance(data, dict):
        raise doc.error((), f"expected a table of keys at the top, not {type(data).__name__}")
    data = {k: {} if k in SECTIONS and v is None else v for k, v in data.items()}  # YAML's empty `probes:`
    for key, value in data.items():
        if key not in TOP + SECTIONS:
            raise _unknown(doc, (key,), TOP + SECTIONS, _belongs(("grid", GRID), ("train", TRAIN),
                                                                 ("resources", RESOURCES)))
        if key in SECTIONS and not isinstance(value, dict):
            raise doc.error((key,), f"{value!r} is not valid; valid: a table [{key}] of keys")
    base, file_scale, name = _top(doc, data, path)
    fields = _Fields(doc)
    fields.read(data)
    resources = _resources(doc, data.get("resources", {}))

    flag_scale, scale = scale, scale or file_scale or "quick"
    if base is None:
        missing = [f for f in REQUIRED if f not in fields.changes]
        if missing:
            raise doc.error((), f"missing {', '.join(f'grid.{f}' for f in missing)}: a spec without base = NAME "
                            f"must give them (or start from a named sweep: base = {' | '.join(sorted(SWEEPS))})")
        spec = SweepSpec(name=name, scale=scale, **fields.changes)
    else:
        spec = dataclasses.replace(resolve(base, scale), name=name, **fields.changes)
    if flag_scale == "smoke":
        spec = smoke(spec)
    spec = apply_overrides(spec, sets or [])
    for item in sets or []:
        fields.origin.pop(item.partition("=")[0].strip(), None)  # --set's own errors carry no file line
    try:
        spec = spec.validate()
    except SpecError as e:
        raise fields.located(e, data) from None
    return Target(spec, resources, base, {"path": str(path), "format": fmt, "text": text})


def smoke(spec: SweepSpec) -> SweepSpec:
    """``spec`` with its budget capped at ``SMOKE_CAPS`` (an extra axis over a capped field: its values capped)."""
    caps = {k: min(getattr(spec, k), v) if getattr(spec, k) else getattr(spec, k) for k, v in SMOKE_CAPS.items()}
    caps["checkpoint_every"] = min(spec.checkpoint_every, SMOKE_CAPS["checkpoint_every"]) or 0
    vary = []
    for field, values in spec.extra_axes():
        if field in SMOKE_CAPS:
            values = tuple(dict.fromkeys(min(v, SMOKE_CAPS[field]) for v in values))
        vary.append(entry(field, values) if len(values) > 1 else None)
    return dataclasses.replace(spec, **caps, vary=tuple(v for v in vary if v))


def _top(doc: Doc, data: dict, path: str) -> tuple[str | None, str | None, str]:
    """The top-level keys: base, scale and name (default: the file's stem)."""

    def top(key: str, valid: tuple | None) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or (valid is not None and value not in valid):
            raise doc.error((key,), f"{value!r} is not valid; valid: {', '.join(valid) if valid else 'a string'}")
        return value

    base, scale = top("base", tuple(sorted(SWEEPS))), top("scale", SCALES)
    name = top("name", None) or Path(path).stem
    if not NAME_RE.fullmatch(name):
        raise doc.error(("name",) if "name" in data else (), f"{name!r} is not a valid sweep name; valid: letters, "
                        "digits, '_', '.', '-' (it names the results folder)")
    return base, scale, name


class _Fields:
    """The SweepSpec fields a file sets, typed, and where each came from (for errors found later)."""

    def __init__(self, doc: Doc):
        self.doc = doc
        self.changes: dict = {}  # field -> typed value
        self.origin: dict[str, tuple] = {}  # field -> the key path it came from
        self.entries: dict[tuple, tuple] = {}  # (field, entry) -> (key path, the value as written), for fields
        #                                         built from tables (lr_ranges, probes)

    def put(self, field: str, keys: tuple, value) -> None:
        if field in VARIABLE and isinstance(value, list):  # several values: an extra grid axis
            values = [self._coerce(field, keys + (i,), v) for i, v in enumerate(value)]
            if not values:
                raise self.doc.error(keys, "[] is not valid; expected one or more values")
            self.changes["vary"] = self.changes.get("vary", ()) + ((entry(field, values),) if len(values) > 1 else ())
            self.changes[field], self.origin[field] = values[0], keys
            return
        self.changes[field], self.origin[field] = self._coerce(field, keys, value), keys

    def _coerce(self, field: str, keys: tuple, value):
        try:
            return coerce(field, value)
        except SpecError as e:
            raise self.doc.error(keys, f"{value!r} is not valid; expected {e.valid}") from None

    def read(self, data: dict) -> None:
        doc = self.doc
        for key, value in data.get("grid", {}).items():
            if key not in GRID and not (key in VARIABLE and isinstance(value, list)):
                raise _unknown(doc, ("grid", key), GRID + VARIABLE,
                               _belongs(("train", TRAIN), ("resources", RESOURCES)))
            self.put(key, ("grid", key), value)
        for key, value in data.get("train", {}).items():
            if key not in TRAIN:
                raise _unknown(doc, ("train", key), TRAIN, _belongs(("grid", GRID), ("resources", RESOURCES)))
            if key == "cell_inits" and isinstance(value, dict):  # a table cell = "init", as well as a list
                value = [CellInit(str(cell), str(init)) for cell, init in value.items()]
            self.put(key, ("train", key), value)
        search = data.get("lr_search", {})
        for key, value in search.items():
            if key not in LR_SEARCH:
                raise _unknown(doc, ("lr_search", key), tuple(LR_SEARCH),
                               {v: f"here it is {k}" for k, v in LR_SEARCH.items()})
            if key == "ranges":
                self.lr_ranges(value)
            else:
                self.put(LR_SEARCH[key], ("lr_search", key), value)
        if "probes" in data:
            probes = []
            for name, value in data["probes"].items():
                entry = _probe_entry(doc, str(name), value)
                if entry is not None:
                    probes.append(entry)
                    self.entries[("probes", entry)] = (("probes", name), value)
            self.put("probes", ("probes",), probes)
        if "lr" in data.get("train", {}):  # a fixed rate: no search
            if search.get("trials", 0):
                raise doc.error(("train", "lr"), f"{data['train']['lr']!r} is a fixed rate, but [lr_search] asks "
                                f"for trials = {search['trials']} (line {doc.line(('lr_search', 'trials'))}); keep one")
            self.changes.setdefault("lr_search_trials", 0)
            self.changes.setdefault("lr_search", "none")
        elif search.get("trials", 0):  # TPE trials asked for: the tpe protocol, unless the file names one
            self.changes.setdefault("lr_search", "tpe")

    def lr_ranges(self, value) -> None:
        keys = ("lr_search", "ranges")
        if not isinstance(value, dict):
            raise self.doc.error(keys, f"{value!r} is not valid; valid: a table cell = [low, high]")
        items = []
        for cell, rng in value.items():
            if not (isinstance(rng, list) and len(rng) == 2 and all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) for x in rng)):
                raise self.doc.error(keys + (cell,), f"{rng!r} is not valid; valid: [low, high] numbers")
            items.append(LrRange(str(cell), float(rng[0]), float(rng[1])))
            self.entries[("lr_ranges", items[-1].text())] = (keys + (cell,), rng)
        self.put("lr_ranges", keys, items)

    def located(self, e: SpecError, data: dict) -> SpecError:
        """``validate``'s error, with the file, line and key where the bad field came from the file."""
        if e.field not in self.origin:
            return e
        keys, value = self.entries.get((e.field, e.value)) or (self.origin[e.field], e.value)
        listed = data.get(keys[0], {}).get(keys[-1]) if len(keys) == 2 else None
        if isinstance(listed, list) and e.value in listed:
            keys = keys + (listed.index(e.value),)  # YAML knows each item's line
        message = e.valid if e.field == "probes" else f"{value!r} is not valid; valid: {e.valid}"
        return self.doc.error(keys, message)


def _resources(doc: Doc, section: dict) -> Resources:
    res: dict = {}
    for key, value in section.items():
        if key not in RESOURCES:
            raise _unknown(doc, ("resources", key), RESOURCES, _belongs(("grid", GRID), ("train", TRAIN)))
        try:
            res[key] = coerce(key, value, Resources)
        except SpecError as e:
            raise doc.error(("resources", key), f"{value!r} is not valid; expected {e.valid}") from None
    try:
        return Resources(**res).validate()
    except SpecError as e:
        raise doc.error(("resources", e.field), f"{e.value!r} is not valid; valid: {e.valid}") from None
