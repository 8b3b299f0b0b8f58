"""The "solved" check of Pascanu, Mikolov & Bengio (2013), as their code runs it (pascanur/trainingRNNs,
RNN.py, ``jobman``): every ``checkFreq`` = 20 iterations the model is evaluated on ``ebs`` = 10,000 FRESH
sequences, drawn at that check (``task.generate(state['cbs'], length)`` in chunks of ``cbs`` = 1,000), and the
run stops as solved at the first check whose error is zero (``error < .0001``).

Here the sequences of the check at ``step`` come from a generator seeded by (trial seed, step) alone: fresh at
every check, the same for a resumed trial as for an uninterrupted one, the same in a seed bundle as solo, and
independent of the training stream (the authors draw both from one ``rng``; only the statistics matter).
"""
from __future__ import annotations

import numpy as np
import torch

CHUNK = 1000  # sequences per forward (the authors' ``cbs``): bounds memory at 10,000 sequences of length 250
_KEY = 0x5017ED  # separates these draws from every other stream seeded from the trial seed


def check_generator(seed: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of the solved check at ``step`` of the trial with ``seed``."""
    state = int(np.random.SeedSequence([_KEY, seed, step]).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator(device).manual_seed(state)


def check_sequences(task, n: int, seed: int, step: int, device: torch.device | str = "cpu"):
    """The check's ``n`` fresh sequences, as (x, y) chunks of at most ``CHUNK``."""
    g = check_generator(seed, step, device)
    for start in range(0, n, CHUNK):
        yield task.sample(min(CHUNK, n - start), g)


def is_solved(model: torch.nn.Module, task, n: int, seed: int, step: int, device: torch.device | str) -> bool:
    """Zero errors on the check's ``n`` fresh sequences (stops at the first chunk with an error)."""
    with torch.no_grad():
        for x, y in check_sequences(task, n, seed, step, device):
            if task.metric(model(x), y) != 1.0:
                return False
    return True
