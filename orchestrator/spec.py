"""SweepSpec: the grid and the scale of a sweep, a typed frozen dataclass with validated overrides.

A named sweep (``orchestrator/sweeps/<name>.py``) defines ``get_spec(scale)``; ``--set key=value`` then
overrides any field, parsed to the field's declared type (``--set cells=rnn,lru --set nus=0.9,0.99``).
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import types
import typing
from dataclasses import dataclass

from trainers.config import TrialConfig
from trainers.probe_spec import ProbeSpec

from . import lr_grid
from .axes import AXES, VARIABLE, entry, key_suffix, varied
from .lr_grid import LrGrid
from .spec_records import Analysis, CellInit, LrDecay, LrRange

# structured values: parse(text), from_native(value), text()
RECORDS = (LrGrid, LrRange, Analysis, ProbeSpec, CellInit, LrDecay)

# The trainers' registries (cells, tasks, probes, analyses) import torch: ``validate`` (orchestrator.validate) and
# the plan's bundle rule import them when called, so a spec can be read, gridded and counted (`sweep status`,
# `sweep ls`) without torch.

SCALES = ("smoke", "quick", "paper")
MAX_TRIALS = 100_000  # trials a spec may plan (rows of `trials`); more is a typo, refused before any work


class UserError(ValueError):
    """A mistake in what the user asked for; the CLI prints its one-line message, no traceback."""


class SpecError(UserError):
    """A bad sweep name, scale, override or field value. ``field``, ``value`` and ``valid`` say which field,
    which value and what would be valid, where one field is at fault (a spec file adds its file and line)."""

    def __init__(self, message: str, *, field: str | None = None, value=None, valid: str | None = None):
        super().__init__(message)
        self.field, self.value, self.valid = field, value, valid


@dataclass(frozen=True)
class SweepSpec:
    name: str  # the named sweep this spec came from
    scale: str  # smoke | quick | paper
    # -- the grid: every combination of these axes is one group (one learning rate, then `seeds` trials)
    tasks: tuple[str, ...]  # task registry names
    cells: tuple[str, ...]  # cell registry names
    depths: tuple[int, ...]  # stack depths (1 = the paper's model)
    nus: tuple[float, ...]  # memory parameters nu0, each in [0, 1)
    seq_lens: tuple[int, ...]  # sequence lengths T
    clips: tuple[float, ...] = (0.0,)  # global-norm clipping thresholds; 0 = off
    layer_norms: tuple[bool, ...] = (False,)  # LayerNorm before each layer of deep stacks, off/on
    vary: tuple[str, ...] = ()  # more axes: "field=v1,v2" for any field of orchestrator.axes.VARIABLE (hidden, batch,
    #                             ...); `--set hidden=32,64` or a list in a spec file puts one here
    # -- per trial
    seeds: int = 1  # seeds per group in the seed stage: 0 .. seeds-1
    bundle_seeds: bool = True  # a group's seeds train as one batched model in one Ray trial where the cell allows
    #                            (trainers.bundle); false: one trial per seed. Search trials are always solo.
    steps: int = 1000  # optimiser steps per trial (0: measure at init only, with probes)
    batch: int = 128  # sequences per step
    hidden: int = 64  # recurrent units per layer
    teacher_hidden: int = 10  # teacher state size (teacher_student)
    d_model: int = 16  # residual-stream width for depth > 1
    block: str = "linear"  # how deep stacks connect layers: linear | glu (residual) | plain (no residual)
    init: str = "default"  # cell init, one of trainers.cells.spec.INITS: default, orthogonal, chrono, smart_tanh
    cell_inits: tuple[CellInit, ...] = ()  # per-cell inits (--set: cell:init, vrnn:orthogonal,lstm:chrono); others
    #                                        use init
    nu_max_frac: float = 0.0  # ring init r_max = 1 - nu_max_frac (1 - nu) (0.5: Zucchet & Orvieto Fig. 5); 0: r_max 1
    optimizer: str = "adam"  # adam | sgd
    schedule: str = "cosine"  # cosine (decay to lr_min) | constant | step (per task, lr_decays)
    lr_decays: tuple[LrDecay, ...] = ()  # schedule step, per task (--set: task:gamma:m1:m2:...): lr x gamma after
    #                                      each step m
    lr_search: str = "grid"  # grid: every rate of the group's grid x every seed, the lowest mean over seeds is
    #                          chosen (marked ``selected``); tpe: lr_search_trials Optuna trials, each every seed
    #                          at the rate it suggests, told their mean final loss, the lowest mean ``selected``;
    #                          none: the fixed ``lr``. A group with no grid trains at ``lr``.
    lr_grids: tuple[LrGrid, ...] = ()  # the grid protocol's rates per cell / task (orchestrator.lr_grid)
    lr_search_trials: int = 0  # Optuna TPE trials per group (lr_search = tpe), each one all the seeds
    lr_search_pruner: str = "halving"  # tpe: the pruner that stops hopeless rates early, fed the mean loss over the
    #                                    seeds (orchestrator.pruners: halving | hyperband | none)
    lr: float = 1e-3  # the learning rate when there is no search, or no grid for the group
    lr_ranges: tuple[LrRange, ...] = ()  # per-cell search ranges (--set: cell:low:high); cells not named: lr_range
    lr_range: tuple[float, float] = (1e-4, 1e-1)  # default search range (log-uniform)
    lr_search_seed: int = 1000  # unused since tpe trains every seed per Optuna trial (kept: older sweep.json)
    lr_min: float = 1e-7  # floor of the cosine decay
    eval_batch: int = 1024  # fixed evaluation batch size (held-out split size cap for data-set tasks)
    solve_every: int = 0  # steps between "solved" checks (accuracy 1 on the eval batch stops the trial); 0 = off
    data_dir: str = ""  # a data set's files (e.g. real MNIST IDX files for the digits tasks); "" = offline default
    grad_norm_every: int = 10  # steps between per-group gradient-norm rows (0 = never)
    checkpoint_every: int = TrialConfig.checkpoint_every  # steps between trial checkpoints (0 = none)
    max_failures: int = 3  # retries of a trial whose process or node died, from its last checkpoint
    device: str = "auto"  # auto | cpu | cuda
    probes: tuple[ProbeSpec, ...] = ()  # probes (trainers.probe_spec; --set: name[:key=value...], e.g.
    #                                     hessian:every=100,attractors:every=200)
    probe_batch: int = 64  # the fixed batch probes measure on
    analyses: tuple[Analysis, ...] = ()  # analysis trials (--set: name[:cell]; trainers.analyses), stage `analysis`

    def __post_init__(self):
        for name, record in _RECORD_FIELDS.items():  # records; their --set text or JSON objects read too
            object.__setattr__(self, name, tuple(record.from_native(v) for v in getattr(self, name)))

    def lr_range_for(self, cell: str) -> tuple[float, float]:
        for r in self.lr_ranges:
            if r.cell == cell:
                return r.low, r.high
        return self.lr_range

    def rates(self, group: dict) -> tuple[float, ...]:
        """The rates a group's seed stage trains: its grid's (protocol ``grid``), else the one fixed ``lr``
        (``none``; under ``tpe`` each Optuna trial one rate, suggested when the trial is issued)."""
        if self.lr_search == "grid":
            return lr_grid.rates_for(self.lr_grids, group) or (self.lr,)
        return (self.lr,)

    def init_for(self, cell: str) -> str:
        """The init of ``cell``'s trials: its ``cell_inits`` entry, else ``init``."""
        return next((c.init for c in self.cell_inits if c.cell == cell), self.init)

    def step_schedule(self, task: str) -> dict:
        """TrialConfig's ``lr_gamma`` and ``lr_milestones`` for ``task`` (its ``lr_decays`` entry; none: {})."""
        return next(({"lr_gamma": d.gamma, "lr_milestones": d.milestones} for d in self.lr_decays if d.task == task),
                    {})

    def grid(self) -> list[dict]:
        """The groups (one per combination of the axes); each gets one learning rate, then ``seeds`` trials."""
        extra = self.extra_axes()
        names = AXES + tuple(f for f, _ in extra)
        return [dict(zip(names, combo)) for combo in
                itertools.product(*(getattr(self, f"{a}s") for a in AXES), *(v for _, v in extra))]

    def extra_axes(self) -> list[tuple[str, tuple]]:
        """The ``vary`` axes, typed: [(field, values)]."""
        return varied(self.vary, lambda f, v: _parse(_FIELDS[f], v))

    def group_key(self, group: dict) -> str:
        """A group's id: cell, depth and nu always, the other axes only where the spec varies them (so ids
        stay short: ``rnn-d1-nu0.99``, ``temporal_order-vrnn-d1-nu0.5-T50-clip1``)."""
        key = f"{group['cell']}-d{group['depth']}-nu{group['nu']:g}"
        if len(self.tasks) > 1:
            key = f"{group['task']}-{key}"
        if len(self.seq_lens) > 1:
            key += f"-T{group['seq_len']}"
        if len(self.clips) > 1:
            key += f"-clip{group['clip']:g}"
        if len(self.layer_norms) > 1:
            key += "-ln" if group["layer_norm"] else "-noln"
        return key + "".join(key_suffix(f, group[f]) for f, _ in self.extra_axes())

    def nu_max(self, nu: float) -> float:
        return 1.0 - self.nu_max_frac * (1.0 - nu) if self.nu_max_frac else 1.0

    def stage_trials(self) -> dict[str, int]:
        """How many rows of the ``trials`` table each stage has (a bundle's seeds count one each): its plan's."""
        from .plan import plan, stage_counts

        return stage_counts(plan(self, bundles=False))

    def validate(self) -> "SweepSpec":
        """This spec, checked field by field against the registries (``orchestrator.validate``); SpecError
        names the first bad field, its value and the valid ones."""
        from .validate import validate_spec

        return validate_spec(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SweepSpec":
        """Rebuild from ``to_dict`` output read back from JSON (lists become the declared tuples; a record's table,
        or its --set text in a sweep.json from before the records, becomes the record)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SpecError(f"unknown spec fields {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        if "lr_search" not in d:  # a sweep.json from before the protocols: it searched iff it had search trials
            d["lr_search"] = "tpe" if d.get("lr_search_trials") else "none"
        d.setdefault("lr_search_pruner", "none")  # one from before pruning: its trials ran to the end
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class Resources:
    """What each trial reserves on the Ray cluster (`sweep launch` flags, or a spec file's [resources])."""

    cpus_per_trial: float = 1.0  # CPUs reserved per trial (also torch's thread count)
    gpus_per_trial: float = 0.0  # GPUs per trial; fractions share a GPU (e.g. 0.25)
    max_concurrent: int | None = None  # at most this many trials at once; None: as many as the cluster fits

    def validate(self) -> "Resources":
        for field, ok, valid in (("cpus_per_trial", 0 < self.cpus_per_trial < math.inf, "a finite number > 0"),
                                 ("gpus_per_trial", 0 <= self.gpus_per_trial < math.inf, "a finite number >= 0"),
                                 ("max_concurrent", self.max_concurrent is None or self.max_concurrent >= 1,
                                  "an integer >= 1")):
            if not ok:
                value = getattr(self, field)
                raise SpecError(f"invalid {field}={value!r}; valid: {valid}", field=field, value=value, valid=valid)
        return self


def _parse(field: dataclasses.Field, text: str):
    """Parse ``text`` to the declared type of ``field`` (int, float, bool, str, tuples of those)."""
    hint = typing.get_type_hints(SweepSpec)[field.name]
    origin, args = typing.get_origin(hint), typing.get_args(hint)

    def scalar(tp, s):
        s = s.strip()
        if tp in RECORDS:
            return tp.parse(s)
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
            return f"comma-separated {getattr(args[0], 'FORM', args[0].__name__)} values"
        return ",".join(a.__name__ for a in args)
    return getattr(hint, "__name__", str(hint))


_NATIVE = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
           LrGrid: "a grid {cell, rates[, task]} or 'cell:rate/rate'",
           LrRange: "a range {cell, low, high} or 'cell:low:high'",
           Analysis: "an analysis {name[, cell]} or 'name[:cell]'",
           ProbeSpec: "a probe {name, options} or 'name[:key=value...]'",
           CellInit: "a cell's init {cell, init} or 'cell:init'",
           LrDecay: "a decay {task, gamma, milestones} or 'task:gamma:m1:m2:...'"}


def _native_name(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_NATIVE[args[0]].split(' ', 1)[-1]}s" if args[0] is not bool else "a list of true/false"
        return "a list [" + ", ".join(_NATIVE[a].split(" ", 1)[-1] for a in args) + "]"
    return _NATIVE.get(hint, getattr(hint, "__name__", str(hint)))


def coerce(name: str, value, cls: type = None):
    """A natively typed value (from a TOML or YAML file) for field ``name``, checked against its declared type:
    an integer for int (never a bool), an integer or float for float, true/false for bool, a list (or one
    scalar) for a variadic tuple, a list of the right length for a fixed one. Raises SpecError naming the type.
    ``cls``: the dataclass whose field it is (default SweepSpec; also Resources)."""
    hint = typing.get_type_hints(cls or SweepSpec)[name]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)

    def scalar(tp, v):
        if tp in RECORDS:
            return tp.from_native(v)
        if tp is float and isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, tp) and (tp is bool or not isinstance(v, bool)):
            return v
        raise TypeError

    try:
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(scalar(args[0], v) for v in (value if isinstance(value, list) else [value]))
            if not isinstance(value, list) or len(value) != len(args):
                raise TypeError
            return tuple(scalar(tp, v) for tp, v in zip(args, value))
        return scalar(hint, value)
    except (TypeError, ValueError):
        expected = _native_name(hint)
        raise SpecError(f"invalid {name}={value!r}; expected {expected}", field=name, value=value,
                        valid=expected) from None


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
        if key in VARIABLE:  # several values: an axis; one value: the field, no longer an axis
            values = (tuple(_parse(fields[key], v) for v in value.split(",") if v.strip())
                      or (_parse(fields[key], value),))
            vary = tuple(e for e in changes.get("vary", spec.vary) if e.partition("=")[0] != key)
            changes["vary"] = vary + ((entry(key, values),) if len(values) > 1 else ())
            changes[key] = values[0]
            continue
        if "," in value and typing.get_origin(typing.get_type_hints(SweepSpec)[key]) is not tuple:
            raise SpecError(f"invalid --set {key}={value!r}: {key} takes one value; fields that take several, as "
                            f"a grid axis: {', '.join(VARIABLE)}")
        changes[key] = _parse(fields[key], value)
    return dataclasses.replace(spec, **changes)


_FIELDS = {f.name: f for f in dataclasses.fields(SweepSpec)}
_RECORD_FIELDS = {name: typing.get_args(hint)[0] for name, hint in typing.get_type_hints(SweepSpec).items()
                  if typing.get_origin(hint) is tuple and typing.get_args(hint)[0] in RECORDS}  # field -> record
