"""Analysis: DuckDB views over the Parquet results, SQL queries, and the papers' figures redrawn.

Reads only the files and ``trainers.record`` (schemas, ``open_location``); never the orchestrator.
For notebooks (docs/api.md): ``connect``, ``frame``, ``trials``, ``curve``, ``sweep_id``, ``sweeps``.
"""
from analysis.api import curve, frame, sweep_id, trials
from analysis.db import AnalysisError, connect, resolve_sweep, sweeps

__all__ = ["AnalysisError", "connect", "curve", "frame", "resolve_sweep", "sweep_id", "sweeps", "trials"]
