"""Figure registry: sweep name -> ``draw(con, sweep, out_dir) -> list[str]`` (the paths written).

One module per named sweep, named after it; ``analysis.report`` picks the draw function by the sweep's
name and lists these names when a sweep has none.
"""
from __future__ import annotations

from typing import Callable

import duckdb

from analysis.figures import attractors, curse_of_memory, deep_rnn, exploding_gradients, signal_propagation

FIGURES: dict[str, Callable[[duckdb.DuckDBPyConnection, dict, str], list[str]]] = {
    attractors.NAME: attractors.draw,
    curse_of_memory.NAME: curse_of_memory.draw,
    deep_rnn.NAME: deep_rnn.draw,
    exploding_gradients.NAME: exploding_gradients.draw,
    signal_propagation.NAME: signal_propagation.draw,
}
