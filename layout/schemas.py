"""The tables of the results layout: one pyarrow schema per table, declared once, each table and column with
its description (docs/schemas.md is generated from them, ``trainers.schema_doc``). The writer
(``trainers.record.TrialWriter``) writes exactly these columns and the readers (``layout.tables``, the DuckDB
views of ``analysis.db``) read exactly these; a probe's own table joins them through ``register_table``.
"""
from __future__ import annotations

import pyarrow as pa

DESCRIPTION = b"description"  # metadata key of a table's or a column's description (docs/schemas.md shows them)
STATUSES = ("running", "completed", "diverged", "failed", "pruned")  # a ``trials`` row's status
FINAL = STATUSES[1:]  # the statuses of a trial that has ended (its final row); pruned: the tpe protocol's pruner
#                       stopped it early (orchestrator.searcher)


def col(name: str, type_: pa.DataType, description: str) -> pa.Field:
    """A table column with its one-line description (field metadata, so it travels with the schema)."""
    return pa.field(name, type_, metadata={DESCRIPTION: description})


def table_schema(description: str, *columns: pa.Field) -> pa.Schema:
    """A table's schema: the id columns every row carries, then ``columns``; ``description`` says what a row is
    and who writes it (schema metadata)."""
    return pa.schema([col("sweep_id", pa.string(), "the sweep run (its directory name under the results location)"),
                      col("trial_id", pa.string(), "the trial, unique within the sweep; stable across resumes"),
                      *columns], metadata={DESCRIPTION: description})


SCHEMAS: dict[str, pa.Schema] = {
    "trials": table_schema(
        "One row per trial: its settings and outcome (written as running at the start, replaced at the end).",
        col("sweep", pa.string(), "named sweep or spec file stem"),
        col("stage", pa.string(), "lr_search | seed | analysis"),
        col("task", pa.string(), "task registry name"),
        col("cell", pa.string(), "cell registry name (analysis trials: the analysis name or its cell)"),
        col("depth", pa.int32(), "stacked recurrent layers (1 = the bare cell)"),
        col("hidden", pa.int32(), "recurrent units per layer"),
        col("batch", pa.int32(), "sequences per training step (null in files written before this column)"),
        col("nu", pa.float64(), "memory parameter nu0 of the task"),
        col("seq_len", pa.int32(), "sequence length T"),
        col("layer_norm", pa.bool_(), "LayerNorm in the deep stack"),
        col("seed", pa.int32(), "seed of the student init and the data stream"),
        col("lr", pa.float64(), "peak learning rate"),
        col("group_key", pa.string(), "the grid group (cell, nu0, ...; orchestrator.spec.SweepSpec.group_key) the "
            "trial belongs to; its rates x seeds share it, and the view derives ``selected`` from it"),
        col("clip", pa.float64(), "global-norm clipping threshold; null = off"),
        col("status", pa.string(), " | ".join(STATUSES)),
        col("final_loss", pa.float64(), "loss on the fixed evaluation batch at the end"),
        col("best_loss", pa.float64(), "lowest evaluation loss seen"),
        col("final_metric", pa.float64(), "accuracy where the task has one"),
        col("solved_step", pa.int64(),
            "first step with no error on fresh draws at a check (solve_every > 0), else null"),
        col("steps_done", pa.int64(), "optimiser steps taken"),
        col("wall_s", pa.float64(), "seconds the trial ran (resumed trials: summed over runs)"),
        col("probe_s", pa.float64(), "seconds of wall_s spent in probes"),
        col("device", pa.string(), "torch device the trial ran on (cpu, cuda, ...)"),
        col("host", pa.string(), "host name of the machine that ran the trial"),
        col("node", pa.string(), "Ray node id that ran the trial (null outside Ray)"),
        col("versions", pa.string(), "JSON: python, torch, ray, package"),
        col("config_json", pa.string(), "the full trial config (trainers.config.TrialConfig as JSON)"),
        col("error", pa.string(), "one-line reason for failed / diverged / pruned"),
        col("started_at", pa.timestamp("ms", tz="UTC"), "when the trial first started"),
        col("ended_at", pa.timestamp("ms", tz="UTC"), "when it ended (null while running)"),
    ),
    "steps": table_schema(
        "One row per optimiser step of a training trial.",
        col("step", pa.int32(), "1-based optimiser step"),
        col("loss", pa.float32(), "training loss of this step's batch"),
        col("metric", pa.float32(), "accuracy of this step's batch where the task has one"),
        col("lr", pa.float32(), "learning rate used by this step"),
        col("grad_norm", pa.float32(), "global gradient norm before clipping"),
        col("clipped", pa.bool_(), "whether clipping scaled this step's gradient"),
        col("wall_s", pa.float32(), "seconds since the trial started"),
    ),
    "grad_norms": table_schema(
        "Gradient norm per parameter group, every grad_norm_every steps of a training trial.",
        col("step", pa.int32(), "optimiser step (every grad_norm_every steps)"),
        col("group", pa.string(), "parameter group, e.g. layer1.recurrent"),
        col("norm", pa.float32(), "L2 norm of the group's gradient, before clipping"),
    ),
    "hessian": table_schema(
        "Hessian statistics of the loss: probe hessian (during training), analysis hessian_opt (at the optimum).",
        col("step", pa.int32(), "optimiser step (0 = at init)"),
        col("stat", pa.string(),
            "top | bottom (eigenvalues, idx = rank from the end), trace (Hutchinson), density (SLQ: value = node, "
            "weight = weight, idx runs over the runs' nodes concatenated), ipr | k90 (of the top-idx eigenvector: "
            "inverse participation ratio, coordinates holding 90% of its mass), sharpness_lr (top eigenvalue x lr), "
            "eig (a full spectrum, idx ascending)"),
        col("idx", pa.int32(), "index within the statistic (see stat)"),
        col("value", pa.float64(), "the statistic's value"),
        col("weight", pa.float64(), "quadrature weight of a density node; null for the other stats"),
    ),
    "attractors": table_schema(
        "Samples of the autonomous dynamics under constant inputs, after a burn-in: probe attractors, analyses "
        "bifurcation and chaotic_lstm.",
        col("step", pa.int32(), "optimiser step of the snapshot (0 = at init)"),
        col("input_id", pa.int32(), "which constant input"),
        col("input_value", pa.float32(), "its value (first input channel)"),
        col("init_id", pa.int32(), "which random initial state"),
        col("k", pa.int32(), "sample index after the burn-in"),
        col("x", pa.float32(), "the projected state or output"),
        col("dx", pa.float32(), "x_k - x_{k-1}"),
    ),
    "attractor_summary": table_schema(
        "Per snapshot, input and initial state: what the orbit settled on (same writers as attractors).",
        col("step", pa.int32(), "optimiser step of the snapshot (0 = at init)"),
        col("input_id", pa.int32(), "which constant input"),
        col("input_value", pa.float32(), "its value (first input channel)"),
        col("init_id", pa.int32(), "which random initial state; -1: over all initial states of this input"),
        col("lyapunov", pa.float64(), "largest Lyapunov exponent (per step; max over inits for -1)"),
        col("n_points", pa.int32(), "distinct points visited: 1 fixed point, p a p-cycle, many chaos"),
    ),
    "lattice": table_schema(
        "Gradient magnitude per (layer, time) cell of the unrolled network: probe lattice, analysis lattice_init.",
        col("step", pa.int32(), "optimiser step (0 = at init)"),
        col("loss", pa.string(), "last (loss on the last output) | all (on every output)"),
        col("wrt", pa.string(), "hidden (d loss / d h_t^l) | params (the cell's parameters at (l, t))"),
        col("layer", pa.int32(), "1-based layer l"),
        col("t", pa.int32(), "1-based time step"),
        col("grad_norm", pa.float32(), "norm of the gradient at (layer, t)"),
    ),
    "surface": table_schema(
        "A loss over a grid of parameter values: analyses error_surface (Pascanu Fig. 3: over (w, b)) and "
        "chaotic_lstm (Ribeiro Fig. 1: over s).",
        col("param_x", pa.string(), "name of the first swept parameter"),
        col("x", pa.float64(), "its value"),
        col("param_y", pa.string(), "name of the second, null for a 1-D sweep"),
        col("y", pa.float64(), "its value, null for a 1-D sweep"),
        col("loss", pa.float64(), "the loss at (x, y)"),
    ),
    "signal": table_schema(
        "Signal-propagation statistics per layer of a deep stack: probe signal.",
        col("step", pa.int32(), "optimiser step (0 = at init)"),
        col("layer", pa.int32(), "1-based layer"),
        col("quantity", pa.string(), "act_sq | grad_sq_recurrent | grad_sq_other | grad_sq_nu | grad_sq_theta "
            "(the last two: diagonal cells' lambda gradient split into magnitude and angle)"),
        col("value", pa.float64(), "the quantity's value at this layer"),
    ),
}


def register_table(name: str, schema: pa.Schema) -> None:
    """Add a table declared outside this file (a probe's ``schemas``) to SCHEMAS: the writer then writes it and
    the DuckDB views read it. Registering the same schema again is a no-op; a different one under a taken
    name is an error."""
    if not {"sweep_id", "trial_id"} <= set(schema.names):
        raise ValueError(f"table {name!r}: build its schema with table_schema(...) (sweep_id, trial_id first)")
    have = SCHEMAS.get(name)
    if have is None:
        SCHEMAS[name] = schema
    elif not have.equals(schema):
        raise ValueError(f"table {name!r} is already declared with another schema")
