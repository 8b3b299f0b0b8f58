"""The claims registry: sweep name -> the paper's claims its runs are judged against (``sweep verify``, the
first table of ``sweep report``). Each named sweep declares them beside its sweep file, in
``<name>_claims.py``; a spec-file sweep takes its base's. Kept out of ``orchestrator.sweeps`` so that a launch
does not import the analysis side (DuckDB, matplotlib)."""
from __future__ import annotations

from analysis.claims import Claim

from . import (attractors, attractors_claims, curse_of_memory, curse_of_memory_claims, deep_rnn, deep_rnn_claims,
               exploding_gradients, exploding_gradients_claims, signal_propagation, signal_propagation_claims)

CLAIMS: dict[str, tuple[Claim, ...]] = {
    attractors.NAME: attractors_claims.CLAIMS,
    curse_of_memory.NAME: curse_of_memory_claims.CLAIMS,
    deep_rnn.NAME: deep_rnn_claims.CLAIMS,
    exploding_gradients.NAME: exploding_gradients_claims.CLAIMS,
    signal_propagation.NAME: signal_propagation_claims.CLAIMS,
}
