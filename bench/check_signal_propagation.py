"""The acceptance check of the `signal-propagation` sweep at a scale (quick by default): launches it on a
private local Ray (or reads a finished one with --sweep-id) and runs `sweep verify` on it: the paper's claims of
orchestrator/sweeps/signal_propagation_claims.py beside this run, each with its tolerance; exits 1 when a claim
expected at the sweep's scale does not hold.

    python bench/check_signal_propagation.py [--scale quick] [--results DIR] [--sweep-id ID] [--set key=value ...]
"""
from __future__ import annotations

import sys

from sweep_check import check  # bench/, the script's own folder

if __name__ == "__main__":
    sys.exit(check("signal-propagation", __doc__.splitlines()[0]))
