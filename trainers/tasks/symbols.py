"""`symbols`: sequence classification from a few relevant, widely separated symbols (Hochreiter & Schmidhuber
1997), as Ribeiro, Tiels, Aguirre & Schön (AISTATS 2020, Sec. 5.2, Table 1) ran it (repo
antonior92/attractors-and-smoothness-RNN, sequence-classification/sequence_classification.py and train.py).

Each step is one of 6 one-hot symbols: channels 0-1 are the relevant p, q; channels 2-5 the distractors
a, b, c, d. Every step holds a uniformly drawn distractor except two: the first relevant symbol v1 in {p, q}
at t1, uniform on 0-based [9, 18], the second v2 at t2, uniform on [39, 48] (the authors'
``position_symbols_start = [9, 39]``, ``position_symbols_len = 10``; the paper's 1-based "[10, 18] and [40, 49]").
The positions do NOT scale with the length: longer sequences only add distractors after t2, so a length-L
sequence asks the model to hold the two symbols for about L - 45 steps. The class is the order, 2 v1 + v2:
(p,p) = 0, (p,q) = 1, (q,p) = 2, (q,q) = 3 (the authors' index_symbol * n_symbols^(n_positions - i - 1)).

The data are fixed sets, as in the paper: 1000 training and 1000 validation sequences, each drawn once from
its own fixed seed (the authors' seed 2 and seed + 1), the same for every trial. ``sample`` draws ``batch``
training sequences without replacement (the paper: batch 100, 10 batches per epoch); ``eval_sample`` is the
validation set (its first ``batch`` sequences), so ``final_metric`` is Table 1's validation accuracy.
Cross-entropy on the last output; the metric is its accuracy (always predicting one class: 0.25).
``constant_inputs`` (the attractor probe's ``inputs=task``) are the 6 one-hot symbols, as the authors' orbit
diagrams (``torch.eye(input_size)``).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .base import Task

N_RELEVANT = 2  # p, q: channels 0, 1
N_DISTRACTORS = 4  # a, b, c, d: channels 2-5
N_SYMBOLS = N_RELEVANT + N_DISTRACTORS
NAMES = ("p", "q", "a", "b", "c", "d")
CLASSES = ("(p,p)", "(p,q)", "(q,p)", "(q,q)")
WINDOWS = ((9, 19), (39, 49))  # 0-based half-open ranges of t1 and t2
TRAIN_SEED, VAL_SEED = 2, 3
N_TRAIN = N_VAL = 1000


def generate(n: int, seq_len: int, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` sequences of length ``seq_len`` from ``seed``: x (n, seq_len, 6) float one-hot, y (n,) int64."""
    if seq_len < WINDOWS[-1][1]:
        raise ValueError(f"symbols needs seq_len >= {WINDOWS[-1][1]} (the second symbol sits at 0-based "
                         f"positions {WINDOWS[-1][0]}..{WINDOWS[-1][1] - 1}), got seq_len={seq_len}")
    g = torch.Generator().manual_seed(seed)
    symbols = torch.randint(N_RELEVANT, N_SYMBOLS, (n, seq_len), generator=g)
    label = torch.zeros(n, dtype=torch.int64)
    rows = torch.arange(n)
    for i, (lo, hi) in enumerate(WINDOWS):
        pos = torch.randint(lo, hi, (n,), generator=g)
        v = torch.randint(0, N_RELEVANT, (n,), generator=g)
        symbols[rows, pos] = v
        label = label + v * N_RELEVANT ** (len(WINDOWS) - 1 - i)
    return torch.nn.functional.one_hot(symbols, N_SYMBOLS).float(), label


class Symbols(Task):
    """Classification from a few relevant, widely separated symbols (Hochreiter & Schmidhuber 1997)."""
    d_in = N_SYMBOLS
    d_out = N_RELEVANT ** len(WINDOWS)
    has_metric = True
    # the authors' orbit diagram for this task (sequence-classification/train.py: seq_len_orbit 800,
    # burnout_orbit 400, n_sequences_orbit 10): the attractor probe's settings under ``orbit=task``
    ORBIT = {"burn_in": 400, "keep": 400, "n_inits": 10}

    def __init__(self, seq_len: int = 100, n_train: int = N_TRAIN, n_val: int = N_VAL):
        self.seq_len = seq_len
        self.train_x, self.train_y = generate(n_train, seq_len, TRAIN_SEED)
        self.val_x, self.val_y = generate(n_val, seq_len, VAL_SEED)

    @classmethod
    def from_config(cls, cfg) -> "Symbols":
        return cls(cfg.seq_len)

    def to(self, device: torch.device) -> "Symbols":
        self.train_x, self.train_y = self.train_x.to(device), self.train_y.to(device)
        self.val_x, self.val_y = self.val_x.to(device), self.val_y.to(device)
        return self

    def sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        n = self.train_x.shape[0]
        dev = generator.device
        idx = (torch.randperm(n, generator=generator, device=dev)[:batch] if batch <= n
               else torch.randint(0, n, (batch,), generator=generator, device=dev))
        idx = idx.to(self.train_x.device)
        return self.train_x[idx], self.train_y[idx]

    def eval_sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.val_x[:batch], self.val_y[:batch]

    def loss(self, y_hat: Tensor, y: Tensor) -> Tensor:
        return torch.nn.functional.cross_entropy(y_hat[:, -1], y)

    def metric(self, y_hat: Tensor, y: Tensor) -> float:
        return (y_hat[:, -1].argmax(-1) == y).float().mean().item()

    @staticmethod
    def constant_inputs() -> Tensor:
        """(6, 6) float64: the one-hot symbols p, q, a, b, c, d (the authors' ``torch.eye(input_size)``)."""
        return torch.eye(N_SYMBOLS, dtype=torch.float64)
