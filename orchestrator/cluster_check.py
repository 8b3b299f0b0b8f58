"""What the Ray cluster can run, checked before a sweep writes anything: a trial asking for GPUs needs a node
that has that many (else Ray would keep it pending forever)."""
from __future__ import annotations

import os
import sys
import threading

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


LOST_AFTER = 2  # consecutive checks with no node alive before the driver gives up on the cluster
CHECK_S = 5.0


def watch_cluster(sweep_id: str, results_hint: str = "") -> threading.Event:
    """A daemon thread that ends the driver with one line when the Ray cluster has no alive node (a killed
    raylet of the only node left Tune waiting forever). Each trial's rows up to its last checkpoint are in
    Parquet, so `sweep resume` then finishes the sweep. Set the returned event to stop watching."""
    stop = threading.Event()

    def run() -> None:
        misses = 0
        while not stop.wait(CHECK_S):
            try:
                alive = any(n.get("Alive") for n in ray.nodes())
            except Exception:  # the GCS itself is gone
                alive = False
            misses = 0 if alive else misses + 1
            if misses >= LOST_AFTER and not stop.is_set():
                sys.stderr.write(f"error: the Ray cluster was lost (no node alive); `sweep resume {sweep_id}"
                                 f"{results_hint}` continues the sweep\n")
                sys.stderr.flush()
                os._exit(2)

    threading.Thread(target=run, name="cluster-watch", daemon=True).start()
    return stop
