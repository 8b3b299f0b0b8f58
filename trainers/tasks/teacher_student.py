"""`teacher_student`: the linear-system identification task of Zucchet & Orvieto (2024).

The teacher is a fixed linear time-invariant system (hidden 10, input 1, output 1): A0 ~ N(0,1)/sqrt(10)
with every eigenvalue remapped to |l| <- nu0 + (1 - nu0) tanh|l| (so |l| lies in [nu0, 1)), angle kept;
B ~ N(0,1), C ~ N(0,1)/sqrt(10), D ~ N(0,1). It is drawn from its own seed (42), the same for every
student seed. Inputs are i.i.d. N(0, 1), a fresh batch every step, no noise; the teacher's outputs come
from the same FFT convolution as the students'. Loss 0.5 mean((y_hat - y)^2).
Ref: NicolasZucchet/Vanishing-and-exploding-gradients-are-not-the-end-of-the-story, LinearSystem "dense".
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..cells.base import causal_conv
from ..cells.rnn import LinearRNN
from .base import Task


class TeacherStudent(Task):
    """Identify a linear teacher whose eigenvalue magnitudes lie in [nu0, 1) (Zucchet & Orvieto)."""
    d_in = 1
    d_out = 1
    has_metric = False

    def __init__(self, nu: float, seq_len: int = 300, teacher_hidden: int = 10, teacher_seed: int = 42):
        if not 0.0 < nu < 1.0:
            raise ValueError(f"nu={nu} must lie in (0, 1)")
        self.nu, self.seq_len = nu, seq_len
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(teacher_seed)
            self.teacher = LinearRNN(self.d_in, teacher_hidden, self.d_out, nu_min=nu).requires_grad_(False)
        self._kernel: Tensor | None = None  # the frozen teacher's impulse response, computed once

    @classmethod
    def from_config(cls, cfg) -> "TeacherStudent":
        return cls(cfg.nu, cfg.seq_len, cfg.teacher_hidden)

    def to(self, device: torch.device) -> "TeacherStudent":
        self.teacher = self.teacher.to(device)
        self._kernel = None
        return self

    def sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = torch.randn(batch, self.seq_len, self.d_in, generator=generator, device=generator.device)
        return x, self._teach(x)

    def sample_seeds(self, batch: int, generators: list[torch.Generator]) -> tuple[Tensor, Tensor]:
        """Each generator's inputs as ``sample`` draws them, then one teacher pass over all of them."""
        x = torch.stack([torch.randn(batch, self.seq_len, self.d_in, generator=g, device=g.device)
                         for g in generators])
        return x, self._teach(x.flatten(0, 1)).view(*x.shape[:2], *x.shape[2:-1], self.d_out)

    def _teach(self, x: Tensor) -> Tensor:
        """The teacher's forward, less recomputing its fixed kernel at every batch."""
        if self._kernel is None:
            with torch.no_grad():
                self._kernel = self.teacher.impulse_response(self.seq_len)
        return causal_conv(self._kernel, x)

    def loss(self, y_hat: Tensor, y: Tensor) -> Tensor:
        return 0.5 * ((y_hat - y) ** 2).mean()

    def teacher_eigenvalues(self) -> Tensor:
        return torch.linalg.eigvals(self.teacher.dense_A().double())
