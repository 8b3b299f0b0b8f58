"""Analysis: DuckDB views over the Parquet results, SQL queries, and the papers' figures redrawn.

Reads only the files, through ``layout`` (the results layout: locations, schemas, table readers); never
``trainers`` or the orchestrator.
For notebooks (docs/api.md): ``connect``, ``frame``, ``trials``, ``curve``, ``sweep_id``, ``sweeps``.
The names load on first use (PEP 562), so ``import analysis.errors`` (the CLI) costs no DuckDB or pyarrow.
"""
from __future__ import annotations

import importlib

_WHERE = {"curve": "api", "frame": "api", "sweep_id": "api", "trials": "api", "AnalysisError": "errors",
          "connect": "db", "resolve_sweep": "db", "sweeps": "db"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(f"analysis.{_WHERE[name]}"), name)
