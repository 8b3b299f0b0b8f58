"""The task interface every trainer relies on."""
from __future__ import annotations

import torch
from torch import Tensor


class Task:
    d_in: int  # input features per time step
    d_out: int  # model outputs per time step
    has_metric: bool  # whether ``metric`` means something (accuracy for classification tasks)

    @classmethod
    def from_config(cls, cfg) -> "Task":
        """Build from a ``TrialConfig`` (each task reads the fields it needs)."""
        raise NotImplementedError

    def to(self, device: torch.device) -> "Task":
        return self

    def sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """A fresh batch (x, y) drawn from ``generator`` (which lives on the trial's device)."""
        raise NotImplementedError

    def sample_seeds(self, batch: int, generators: list[torch.Generator]) -> tuple[Tensor, Tensor]:
        """One batch per generator, stacked on a new leading axis (a seed bundle's step): each batch is the one
        ``sample`` draws from that generator. Tasks whose targets cost a model's forward may batch it."""
        xs, ys = zip(*(self.sample(batch, g) for g in generators))
        return torch.stack(xs), torch.stack(ys)

    def eval_sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """The fixed evaluation batch (final_loss, final_metric, solved checks). Tasks with a held-out split
        return it here (up to ``batch`` examples); generated tasks draw a fresh batch like ``sample``."""
        return self.sample(batch, generator)

    def loss(self, y_hat: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError

    def metric(self, y_hat: Tensor, y: Tensor) -> float | None:
        """Accuracy in [0, 1] for classification tasks (1.0 = solved, see ``TrialConfig.solve_every``)."""
        return None
