"""The acceptance check of the `deep-rnn` sweep at a scale (quick by default): launches it on a private local Ray
(or reads a finished one with --sweep-id) and runs `sweep verify` on it: the paper's claims of
orchestrator/sweeps/deep_rnn_claims.py beside this run, each with its tolerance; exits 1 when a claim expected at
the sweep's scale does not hold.

    python bench/check_deep_rnn.py [--scale quick] [--results DIR] [--sweep-id ID] [--set key=value ...]
"""
from __future__ import annotations

import sys

from sweep_check import check  # bench/, the script's own folder

if __name__ == "__main__":
    sys.exit(check("deep-rnn", __doc__.splitlines()[0]))
