"""`temporal_order`: the temporal order problem (Hochreiter & Schmidhuber 1997, task 6a) as Pascanu, Mikolov &
Bengio (2013) ran it for their Fig. 7 (repo pascanur/trainingRNNs, tempOrder.py).

Every time step is a one-hot vector over 6 symbols: channels 0 and 1 are the relevant symbols A and B, channels
2-5 the distractors c, d, e, f. With k = floor(0.1 L), one relevant symbol v0 in {A, B} sits at p0, uniform on
[k, 2k) (about [0.1 L, 0.2 L)), a second one v1 at p1, uniform on [floor(0.5 L), floor(0.5 L) + k); every other
step holds a distractor drawn uniformly from {c, d, e, f}. The label is the order of the two, v0 + 2 v1 (AA = 0,
BA = 1, AB = 2, BB = 3): a softmax on the last output, cross-entropy. The metric is the accuracy on the last
output; Pascanu's "solved" is zero errors on 10,000 fresh sequences, which the trainer checks with
``solve_every`` on an ``eval_batch`` of fresh sequences from its own generator.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .base import Task

N_SYMBOLS = 6  # A, B (relevant, channels 0-1) and c, d, e, f (distractors, channels 2-5)
N_CLASSES = 4  # AA, BA, AB, BB as v0 + 2 v1


class TemporalOrder(Task):
    """Temporal order problem: classify the order of two marked symbols (Hochreiter 1997, 6a)."""
    d_in = N_SYMBOLS
    d_out = N_CLASSES
    has_metric = True

    def __init__(self, seq_len: int):
        if seq_len < 10:
            raise ValueError(f"temporal_order needs seq_len >= 10 (relevant-symbol windows of floor(0.1 L) >= 1 "
                             f"steps), got seq_len={seq_len}")
        self.seq_len = seq_len

    @classmethod
    def from_config(cls, cfg) -> "TemporalOrder":
        return cls(cfg.seq_len)

    def positions(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """The half-open ranges [lo, hi) of p0 and p1."""
        L = self.seq_len
        k = int(0.1 * L)
        return (k, 2 * k), (int(0.5 * L), int(0.5 * L) + k)

    def sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """x: (batch, L, 6) float one-hot; y: (batch,) int64 labels v0 + 2 v1."""
        dev, L = generator.device, self.seq_len
        (lo0, hi0), (lo1, hi1) = self.positions()
        symbols = torch.randint(2, N_SYMBOLS, (batch, L), generator=generator, device=dev)  # distractors
        p0 = torch.randint(lo0, hi0, (batch,), generator=generator, device=dev)
        p1 = torch.randint(lo1, hi1, (batch,), generator=generator, device=dev)
        v0 = torch.randint(0, 2, (batch,), generator=generator, device=dev)
        v1 = torch.randint(0, 2, (batch,), generator=generator, device=dev)
        rows = torch.arange(batch, device=dev)
        symbols[rows, p0] = v0
        symbols[rows, p1] = v1
        x = torch.nn.functional.one_hot(symbols, N_SYMBOLS).float()
        return x, v0 + 2 * v1

    def loss(self, y_hat: Tensor, y: Tensor) -> Tensor:
        return torch.nn.functional.cross_entropy(y_hat[:, -1], y)

    def metric(self, y_hat: Tensor, y: Tensor) -> float:
        return (y_hat[:, -1].argmax(-1) == y).float().mean().item()
