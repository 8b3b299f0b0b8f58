"""The one-trial config: everything a trainer needs, as a typed frozen dataclass (JSON round-trips)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from .probe_spec import ProbeSpec, probe_specs


@dataclass(frozen=True)
class TrialConfig:
    sweep: str  # sweep name (named sweep or spec file stem)
    sweep_id: str  # unique id of the sweep run
    trial_id: str  # unique within the sweep; stable across resumes and retries
    results: str  # results location: a local path or a pyarrow filesystem URI
    group_key: str = ""  # the grid group (SweepSpec.group_key): its rates x seeds share it
    stage: str = "seed"  # lr_search (Optuna learning-rate trials) | seed (the runs the figures use) | analysis (no
    #                      training: computes ``analysis``)
    analysis: str = ""  # stage "analysis": the analysis it computes (trainers.analyses); "" for every other stage
    task: str = "teacher_student"  # task registry name
    cell: str = "lru"  # cell registry name
    depth: int = 1  # stacked recurrent layers; 1 is the paper's bare cell
    hidden: int = 64  # recurrent units per layer
    d_model: int = 16  # width of the residual stream when depth > 1
    layer_norm: bool = False  # LayerNorm before each layer of a deep stack
    nu: float = 0.99  # memory parameter nu0 (teacher eigenvalue floor; ring-init r_min of diagonal cells)
    nu_max: float = 1.0  # ring-init r_max of diagonal cells
    init: str = "default"  # cell initialisation, one of trainers.cells.spec.INITS (each cell lists those it supports)
    block: str = "linear"  # residual block of deep stacks: linear | glu (GELU + GLU after the cell)
    seq_len: int = 300  # sequence length T
    teacher_hidden: int = 10  # teacher state size (teacher-student task)
    seed: int = 0  # student init and data stream
    optimizer: str = "adam"  # adam | sgd (trainers.build.OPTIMIZERS)
    schedule: str = "cosine"  # cosine (decay to lr_min over the steps) | constant | step (lr x lr_gamma at each
    #                           of lr_milestones; trainers.build.SCHEDULES)
    lr: float = 1e-3  # peak learning rate
    lr_min: float = 1e-7  # floor of the cosine decay
    lr_milestones: tuple[int, ...] = ()  # schedule "step": the steps after which the rate is multiplied by lr_gamma
    lr_gamma: float = 0.1  # schedule "step": the factor at each milestone
    clip: float | None = None  # global-norm clipping threshold; None = off. With clipping on, a step whose
    #                            gradient norm is NaN/Inf is skipped (Pascanu et al. 2013)
    steps: int = 1000  # optimiser steps
    batch: int = 128  # sequences per step, fresh every step
    eval_batch: int = 1024  # fixed evaluation batch for final_loss / best_loss
    eval_every: int = 0  # steps between evaluations (0: only at the end)
    solve_every: int = 0  # steps between "solved" checks (metric == 1 on eval_batch fresh draws; trainers/solved.py)
    grad_norm_every: int = 10  # steps between per-group gradient-norm rows (0: never)
    report_every: int = 50  # steps between progress reports to Ray Tune
    pruning: bool = False  # a tpe trial the sweep's pruner may stop early: it ends as ``pruned`` at the first drain
    #                        after the driver asks (layout.pruning; orchestrator.searcher)
    checkpoint_every: int = 500  # steps between checkpoints (model, optimiser, schedule, RNG, rows), for resume and
    #                              retries; 0 = none. The one default: SweepSpec's field of the same name takes it
    probes: tuple[ProbeSpec, ...] = ()  # the probes it runs (trainers.probe_spec; --set text name:key=value:...)
    probe_batch: int = 64  # size of the fixed batch the probes measure on
    data_dir: str = ""  # where a data set's files live (e.g. MNIST IDX files); "" = the task's offline default
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    flush_rows: int = 65536  # buffered rows per table before a part file is written
    flush_s: float = 30.0  # seconds between part files of a table at most (0: only by size and at checkpoints), so
    #                        another terminal (`sweep status`) sees a running trial's steps

    def __post_init__(self):
        object.__setattr__(self, "probes", probe_specs(self.probes))  # records; JSON objects or text as read back
        if (self.stage == "analysis") != bool(self.analysis):
            raise ValueError(f"stage {self.stage!r} with analysis {self.analysis!r}: an analysis trial (stage "
                             "'analysis') names its analysis, and no other trial does")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "TrialConfig":
        """From JSON data; a config stored before ``analysis`` (its ``kind``: train or an analysis) reads too, and
        one stored before the probe records (probes as ``name:key=value`` text)."""
        d = dict(d)
        kind = d.pop("kind", "train")
        if kind != "train":
            d["analysis"] = kind
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
