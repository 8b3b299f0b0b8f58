"""A sweep spec's validation: every field checked against the registries (cells, tasks, probes, analyses, inits,
optimizers, ...) and its own rules, before anything runs; the first bad field raises SpecError with its value and
the valid ones (``SweepSpec.validate``). The registries import torch: so does this module, when called."""
from __future__ import annotations

import dataclasses
import math
import re

from trainers.analyses import ANALYSES
from trainers.cells import CELLS, supported_inits
from trainers.cells.spec import INITS
from trainers.probes import build_probe
from trainers.registry import UnknownName
from trainers.stack import BLOCKS
from trainers.tasks import TASKS
from trainers.build import OPTIMIZERS, SCHEDULES

from . import lr_grid
from .axes import AXES, VARIABLE
from .lr_grid import PROTOCOLS
from .pruners import PRUNERS
from .spec import MAX_TRIALS, SCALES, SpecError, SweepSpec


def validate_spec(spec: SweepSpec) -> SweepSpec:
    """``spec`` if every field is valid; else SpecError for the first bad one."""
    def bad(field, value, valid):
        raise SpecError(f"invalid {field}={value!r}; valid: {valid}", field=field, value=value, valid=valid)

    if spec.scale not in SCALES:
        bad("scale", spec.scale, ", ".join(SCALES))
    for item in spec.vary:
        field = item.partition("=")[0]
        if field not in VARIABLE or [x.partition("=")[0] for x in spec.vary].count(field) > 1:
            bad("vary", item, f"one entry field=v1,v2 per field, field one of {', '.join(VARIABLE)}")
    for field, values in spec.extra_axes():  # every value of an extra axis, checked as the field's own value
        if not values:
            bad(field, "", "one or more values")
        for v in values:
            dataclasses.replace(spec, vary=(), **{field: v}).validate()
    for axis in AXES:
        if not getattr(spec, f"{axis}s"):
            bad(f"{axis}s", "", "one or more values")
    for t in spec.tasks:
        if t not in TASKS:
            raise SpecError(f"unknown task {t!r}; valid: {', '.join(sorted(TASKS))}", field="tasks", value=t,
                            valid=", ".join(sorted(TASKS)))
    for c in spec.cells:
        if c not in CELLS:
            raise SpecError(f"unknown cell {c!r}; valid: {', '.join(sorted(CELLS))}", field="cells", value=c,
                            valid=", ".join(sorted(CELLS)))
    for n in spec.nus:
        if not (0.0 <= n < 1.0) or not math.isfinite(n):
            bad("nus", n, "values in [0, 1)")
        if n == 0.0 and "teacher_student" in spec.tasks:
            bad("nus", n, "values in (0, 1) for the teacher_student task (its teacher's eigenvalue floor)")
    for T in spec.seq_lens:
        if T < 1:
            bad("seq_lens", T, "integers >= 1")
    for c in spec.clips:
        if not (c >= 0 and math.isfinite(c)):
            bad("clips", c, "0 (off) or positive thresholds")
    for a in spec.analyses:
        if a.name not in ANALYSES or (a.cell and a.cell not in CELLS):
            bad("analyses", a.text(), f"name[:cell] with name in {', '.join(sorted(ANALYSES))} and a known cell")
    for field, valid in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("init", INITS)):
        if getattr(spec, field) not in valid:
            bad(field, getattr(spec, field), ", ".join(valid))
    for c in spec.cell_inits:
        if not c.init or c.cell not in CELLS:
            bad("cell_inits", c.text(), f"entries cell:init with a cell in {', '.join(sorted(CELLS))}")
        if c.init not in supported_inits(c.cell):
            bad("cell_inits", c.text(), f"{c.cell}:INIT with INIT one of {', '.join(supported_inits(c.cell))}")
    for cell in spec.cells:
        if spec.init_for(cell) not in supported_inits(cell):
            field = "cell_inits" if any(c.cell == cell for c in spec.cell_inits) else "init"
            bad(field, spec.init_for(cell), f"for cell {cell}: {', '.join(supported_inits(cell))} "
                f"(--set cell_inits={cell}:INIT gives one cell its own)")
    for d in spec.lr_decays:
        ms = d.milestones
        if not (d.task in TASKS and 0 < d.gamma < 1 and ms and ms[0] > 0 and all(a < b for a, b in zip(ms, ms[1:]))):
            bad("lr_decays", d.text(), "entries task:gamma:m1:m2:... with a known task, 0 < gamma < 1 and "
                "increasing positive step milestones")
    if spec.schedule == "step":
        for t in spec.tasks:
            if not spec.step_schedule(t):
                bad("lr_decays", ",".join(d.text() for d in spec.lr_decays), f"an entry task:gamma:m1:... for task {t} "
                    "(schedule=step)")
    if not 0.0 <= spec.nu_max_frac < 1.0:
        bad("nu_max_frac", spec.nu_max_frac, "a number in [0, 1)")
    for d in spec.depths:
        if d < 1:
            bad("depths", d, "integers >= 1")
    if not spec.depths:
        bad("depths", "", "one or more integers >= 1")
    for field in ("seeds", "batch", "hidden", "teacher_hidden", "d_model", "eval_batch"):
        if getattr(spec, field) < 1:
            bad(field, getattr(spec, field), "an integer >= 1")
    for field in ("steps", "lr_search_trials", "grad_norm_every", "checkpoint_every", "max_failures",
                  "solve_every"):
        if getattr(spec, field) < 0:
            bad(field, getattr(spec, field), "an integer >= 0")
    groups = math.prod(len(getattr(spec, f"{a}s")) for a in AXES)  # capped: a typo must not take minutes
    tpe = spec.lr_search_trials if spec.lr_search == "tpe" else 1  # tpe: every seed in each Optuna trial
    if groups * spec.seeds * tpe > MAX_TRIALS:
        bad("seeds" if spec.seeds >= tpe else "lr_search_trials", max(spec.seeds, tpe),
            f"at most {MAX_TRIALS} trials in all ({groups} groups x seeds" + (" x lr_search_trials)" if
                                                                               spec.lr_search == "tpe" else ")"))
    if not 0 < spec.lr < math.inf:
        bad("lr", spec.lr, "a positive finite number")
    if not 0 <= spec.lr_min < math.inf:
        bad("lr_min", spec.lr_min, "a finite number >= 0")
    for r in spec.lr_ranges:
        if not (r.cell in CELLS and 0 < r.low < r.high < math.inf):
            bad("lr_ranges", r.text(), "entries cell:low:high with a known cell and 0 < low < high")
    if spec.lr_search not in PROTOCOLS:
        bad("lr_search", spec.lr_search, ", ".join(PROTOCOLS))
    if spec.lr_search_pruner not in PRUNERS:
        bad("lr_search_pruner", spec.lr_search_pruner, ", ".join(PRUNERS))
    if spec.lr_search == "tpe" and spec.lr_search_trials < 1:
        bad("lr_search_trials", spec.lr_search_trials, "an integer >= 1 with lr_search=tpe")
    for g in spec.lr_grids:
        why = g.problem() or (g.cell not in (lr_grid.ANY, *CELLS) and f"unknown cell {g.cell!r}") or (
            g.task not in (lr_grid.ANY, *TASKS) and f"unknown task {g.task!r}")
        if why:
            bad("lr_grids", g.text(), f"[task/]cell:rate/rate/... with a known cell (or *), task and rates > 0 "
                f"({why})")
    lo, hi = spec.lr_range
    if not 0 < lo < hi < math.inf:
        bad("lr_range", spec.lr_range, "low,high with 0 < low < high < inf")
    if spec.block not in BLOCKS:
        bad("block", spec.block, ", ".join(BLOCKS))
    for p in spec.probes:
        try:
            build_probe(p)
        except (UnknownName, ValueError) as e:
            raise SpecError(f"invalid probes entry {p.text()!r}: {e}", field="probes", value=p,
                            valid=str(e)) from None
    if spec.probe_batch < 1:
        bad("probe_batch", spec.probe_batch, "an integer >= 1")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", spec.device):
        bad("device", spec.device, "auto, cpu, cuda, cuda:N")
    return spec
