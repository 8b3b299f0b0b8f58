"""What a trial trains, built from its config: the device, the model (initialised from its seed), the optimiser
and its rate schedule, the training-data stream, and the fixed evaluation and probe batches.

A solo run (``trainers.train``) and each seed of a bundle (``trainers.bundle``) build these the same way, so a
bundled seed starts exactly where its solo run starts.
"""
from __future__ import annotations

import torch

from .config import TrialConfig
from .stack import Stack

EVAL_SEED = 2**31 - 1  # the evaluation batch is the same for every trial of a task
PROBE_SEED = 2**31 - 2  # and so is the probe batch
OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
SCHEDULES = ("cosine", "constant", "step")


def pick_device(name: str) -> torch.device:
    """``auto``: the first CUDA device this process can see (Ray sets CUDA_VISIBLE_DEVICES to the GPUs it
    assigned the trial, none when the trial asked for none), else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_model(cfg: TrialConfig, task, device: torch.device) -> Stack:
    """The trial's model, initialised from its own seed (the global RNG, seeded here)."""
    torch.manual_seed(cfg.seed)
    return Stack(cfg.cell, task.d_in, cfg.hidden, task.d_out, depth=cfg.depth, d_model=cfg.d_model,
                 layer_norm=cfg.layer_norm, r_min=cfg.nu, r_max=cfg.nu_max, block=cfg.block,
                 init=cfg.init, t_max=cfg.seq_len).to(device)


def check_optimizer(cfg: TrialConfig) -> None:
    if cfg.optimizer not in OPTIMIZERS or cfg.schedule not in SCHEDULES:
        raise ValueError(f"optimizer={cfg.optimizer!r}, schedule={cfg.schedule!r}; valid: "
                         f"{', '.join(OPTIMIZERS)} and {', '.join(SCHEDULES)}")


def make_schedule(opt: torch.optim.Optimizer, cfg: TrialConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """The rate per step; ``step``: lr * lr_gamma^k after the k-th milestone (step m trains at the decayed rate
    from step m + 1 on: the schedule steps once per optimiser step, as the authors' MultiStepLR once per epoch)."""
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.lr_milestones), gamma=cfg.lr_gamma)
    return (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.steps, 1), eta_min=cfg.lr_min)
            if cfg.schedule == "cosine" else torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0))


def data_generator(cfg: TrialConfig, device: torch.device) -> torch.Generator:
    """The trial's training-data stream: its own, not the init's."""
    return torch.Generator(device).manual_seed(cfg.seed * 7919 + 17)


def fixed_batches(task, cfg: TrialConfig, device: torch.device, probing: bool) -> tuple:
    """(eval_x, eval_y, probe_x, probe_y): the same for every trial of a task (probe batch only if probing)."""
    eval_x, eval_y = task.eval_sample(cfg.eval_batch, torch.Generator(device).manual_seed(EVAL_SEED))
    probe_x, probe_y = (task.sample(cfg.probe_batch, torch.Generator(device).manual_seed(PROBE_SEED))
                        if probing else (None, None))
    return eval_x, eval_y, probe_x, probe_y


def evaluate(model: torch.nn.Module, task, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float | None]:
    """(loss, metric) on the fixed evaluation batch."""
    with torch.no_grad():
        y_hat = model(x)
        return task.loss(y_hat, y).item(), task.metric(y_hat, y)
