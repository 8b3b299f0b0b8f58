"""Figure registry: sweep name -> ``draw(con, sweep, out_dir) -> list[str]`` (the paths written).

One module per named sweep, named after it; ``analysis.report`` picks the draw function by the sweep's
name and lists these names when a sweep has none.
"""
from __future__ import annotations

from typing import Callable

import duckdb

from analysis.figures import curse_of_memory

FIGURES: dict[str, Callable[[duckdb.DuckDBPyConnection, dict, str], list[str]]] = {
    curse_of_memory.NAME: curse_of_memory.draw,
}
