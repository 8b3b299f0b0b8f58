"""Analysis: DuckDB views over the Parquet results, SQL queries, and the papers' figures redrawn.

Reads only the files and ``trainers.record`` (schemas, ``open_location``); never the orchestrator.
"""
from analysis.db import AnalysisError, connect

__all__ = ["AnalysisError", "connect"]
