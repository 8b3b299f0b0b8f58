"""What the Ray cluster can run, checked before a sweep writes anything: a trial asking for GPUs needs a node
that has that many (else Ray would keep it pending forever)."""
from __future__ import annotations

import ray

from .spec import UserError


def check_gpus(gpus_per_trial: float) -> None:
    """Raise UserError unless some alive node of the connected cluster has ``gpus_per_trial`` GPUs."""
    if gpus_per_trial <= 0:
        return
    per_node = [n.get("Resources", {}).get("GPU", 0.0) for n in ray.nodes() if n.get("Alive")]
    if not any(g >= gpus_per_trial for g in per_node):
        most = max(per_node, default=0.0)
        what = "no node of the Ray cluster has a GPU" if most == 0 else \
            f"no node of the Ray cluster has {gpus_per_trial:g} GPUs (at most {most:g})"
        raise UserError(f"--gpus-per-trial {gpus_per_trial:g}: {what}; use --gpus-per-trial 0, or --address a "
                        "cluster with GPUs")
