"""The acceptance check of the `exploding-gradients` sweep at a scale (quick by default): launches it on a
private local Ray (or reads a finished one with --sweep-id) and runs `sweep verify` on it: the paper's claims of
orchestrator/sweeps/exploding_gradients_claims.py beside this run, each with its tolerance; exits 1 when a claim
expected at the sweep's scale does not hold.

    python bench/check_exploding_gradients.py [--scale quick] [--results DIR] [--sweep-id ID] [--set key=value ...]
"""
from __future__ import annotations

import sys

from sweep_check import check  # bench/, the script's own folder

if __name__ == "__main__":
    sys.exit(check("exploding-gradients", __doc__.splitlines()[0]))
