"""Faults, for real: a SIGKILLed driver then `sweep resume`, a node lost from a two-node Ray cluster, failing
and diverging trials, two sweeps at once. Every check is an exact row count: no row lost, none duplicated."""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analysis.db import query_arrow
from conftest import start_cli
from orchestrator.cli import app
from sweepcheck import assert_exact, counts

runner = CliRunner()
SMALL = ["--scale", "smoke", "--set", "cells=rnn,lru", "--set", "nus=0.9", "--set", "seeds=3",
         "--set", "batch=16", "--set", "grad_norm_every=5"]


def wait_for(cond, timeout: float, what: str):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = cond()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def session_ended(leader: int) -> bool:
    """Whether every process of the session that ``leader`` (a start_cli process) led has ended. Ray's trial
    workers run in process groups of their own: a SIGKILL of the driver's group leaves them to notice their
    raylet is gone and exit by themselves, a few seconds later (longer on a loaded machine)."""
    import ray  # noqa: F401 - Ray's bundled psutil
    import psutil

    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == leader and p.status() != psutil.STATUS_ZOMBIE:
                return False
        except (OSError, psutil.Error):
            pass
    return True


def sigkill_driver(proc: subprocess.Popen) -> None:
    """SIGKILL a driver started by start_cli with its local Ray, and wait until its trial workers have ended
    too: until then they may still write rows into the folder the driver was given."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    wait_for(lambda: session_ended(proc.pid), 120, "the killed driver's Ray workers to end")


def finished_trials(results: Path) -> list[dict]:
    try:
        return query_arrow(str(results), "SELECT trial_id, status, ended_at, node FROM trials "
                                         "WHERE status <> 'running'").to_pylist()
    except Exception:  # nothing written yet
        return []


@pytest.mark.slow
def test_sigkill_launch_then_resume(ray_session, tmp_path):
    results = tmp_path / "results"
    steps = 150
    proc = start_cli("launch", "curse-of-memory", *SMALL, "--set", f"steps={steps}", "--set", "checkpoint_every=30",
                     "--set", "lr_search=tpe", "--set", "lr_search_trials=2",
                     "--set", "lr_ranges=lru:1e-3:0.01,rnn:1e-4:1e-3",  # stable: every seed completes
                     "--results", str(results))
    # kill the driver once some trials are done and others are under way
    wait_for(lambda: len(finished_trials(results)) >= 3, 240, "3 finished trials")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    sweep_id = json.loads(next(results.glob("*/sweep.json")).read_text())["sweep_id"]
    before = {r["trial_id"]: r["ended_at"] for r in finished_trials(results)}
    assert json.loads((results / sweep_id / "sweep.json").read_text())["status"] == "running"

    t0 = time.monotonic()
    r = runner.invoke(app, ["resume", sweep_id, "--results", str(results)])
    resume_s = time.monotonic() - t0
    assert r.exit_code == 0, r.output
    n_trials = 2 * 2 * 3  # (2 cells x 1 nu) x 2 Optuna trials x 3 seeds (tpe: every seed per Optuna trial)
    # the progress line counts what the killed run finished once, and the rest as it finishes
    assert [ln for ln in r.output.splitlines() if "elapsed" in ln][-1].startswith("seed 12/12 done")
    c = assert_exact(str(results), sweep_id, n_trials=n_trials, steps=steps)
    after = {r["trial_id"]: r["ended_at"] for r in finished_trials(results)}
    rerun = [t for t in before if after[t] != before[t]]
    assert rerun == []  # finished trials were not rerun
    meta = json.loads((results / sweep_id / "sweep.json").read_text())
    rows = query_arrow(str(results), "SELECT group_key, regexp_extract(trial_id, '-tpe([0-9]+)-', 1) AS k, lr, "
                                     "status, final_loss, selected FROM trials WHERE stage = 'seed'").to_pylist()
    assert meta["status"] == "completed" and len(rows) == n_trials
    trials: dict[tuple, list[dict]] = {}  # (group, Optuna trial) -> its seeds' rows
    for x in rows:
        trials.setdefault((x["group_key"], x["k"]), []).append(x)
    assert len(trials) == 4 and all(len({x["lr"] for x in v}) == 1 and len(v) == 3 for v in trials.values())
    for g in {x["group_key"] for x in rows}:  # the selected Optuna trial: its group's lowest mean, all its seeds
        mine = {k: v for (gk, k), v in trials.items() if gk == g}
        ok = {k: sum(x["final_loss"] for x in v) / 3 for k, v in mine.items()
              if all(x["status"] == "completed" and math.isfinite(x["final_loss"]) for x in v)}
        best = min(ok, key=ok.get)
        assert {k: [x["selected"] for x in v] for k, v in mine.items()} == {
            k: [k == best] * 3 for k in mine}
    print(f"\nresume: {resume_s:.1f} s, trials finished before kill {len(before)}, rerun {len(rerun)}, "
          f"rows {c['rows']} = {n_trials} x {steps}, lost 0, duplicated {c['rows'] - c['uniq']}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_node_cluster(tmp_path):
    """A head and a second node as separate `ray start` processes, 1 CPU each, token auth off for the test."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    port = free_port()
    ray_bin = shutil.which("ray") or str(Path(os.sys.executable).parent / "ray")
    head = subprocess.Popen([ray_bin, "start", "--head", "--port", str(port), "--num-cpus", "1",
                             "--include-dashboard", "false", "--block", "--node-ip-address", "127.0.0.1"],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(4)
    worker = subprocess.Popen([ray_bin, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1", "--block",
                               "--node-ip-address", "127.0.0.1"],
                              env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # both nodes registered before the sweep starts (else every trial may be placed on the head alone)
        wait = ("import ray, time; ray.init(address=%r, logging_level='ERROR'); t = time.monotonic()\n"
                "while sum(n['Alive'] for n in ray.nodes()) < 2:\n"
                "    assert time.monotonic() - t < 120, ray.nodes()\n"
                "    time.sleep(0.5)") % f"127.0.0.1:{port}"
        subprocess.run([os.sys.executable, "-c", wait], env=env, check=True, timeout=180,
                       stdout=subprocess.DEVNULL)
        yield {"address": f"127.0.0.1:{port}", "worker": worker, "env": {"RAY_AUTH_MODE": "disabled"}}
    finally:
        for p in (worker, head):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(30)


@pytest.mark.slow
def test_node_lost_mid_sweep(two_node_cluster, tmp_path):
    results = tmp_path / "results"
    steps = 200
    # 12 solo Ray trials (no seed bundles: 2 bundles would be the whole sweep, done by the time both nodes have
    # finished one), 1 CPU each on two 1-CPU nodes: each node runs one at a time, so both take trials, and the
    # second node is lost with trials still to run
    proc = start_cli("launch", "curse-of-memory", *SMALL, "--set", f"steps={steps}", "--set", "checkpoint_every=40",
                     "--set", "lr_search=none", "--set", "seeds=6", "--set", "bundle_seeds=false",
                     "--results", str(results),
                     "--address", two_node_cluster["address"], env=two_node_cluster["env"])
    # trials run on both nodes (the node is recorded), then the second node's processes are killed
    wait_for(lambda: len({r["node"] for r in finished_trials(results)}) >= 2, 240, "trials on both nodes")
    os.killpg(two_node_cluster["worker"].pid, signal.SIGKILL)
    lost_at = len(finished_trials(results))
    assert lost_at < 2 * 6, "the sweep had finished before the node was lost"
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, out
    sweep_id = json.loads(next(results.glob("*/sweep.json")).read_text())["sweep_id"]
    c = assert_exact(str(results), sweep_id, n_trials=2 * 6, steps=steps)
    nodes = query_arrow(str(results), "SELECT count(DISTINCT node) AS n FROM trials").to_pylist()[0]["n"]
    assert nodes == 2
    print(f"\nnode loss: rows {c['rows']} = 12 x {steps}, nodes used {nodes}, trials finished when lost {lost_at}")


@pytest.mark.slow
def test_failed_and_diverged_trials_do_not_stop_the_sweep(ray_session, tmp_path):
    results = tmp_path / "results"
    # hidden=63 cannot be cut into 2x2 blocks: blockdiag raises at build time -> failed;
    # rnn searched at learning rates of 10..100 -> NaN within a few steps -> diverged; lru completes
    r = runner.invoke(app, ["launch", "curse-of-memory", "--scale", "smoke", "--results", str(results),
                            "--set", "cells=rnn,lru,blockdiag", "--set", "hidden=63", "--set", "nus=0.9",
                            "--set", "seeds=2", "--set", "lr_search=tpe", "--set", "lr_search_trials=1",
                            "--set", "lr_ranges=rnn:10:100,lru:1e-3:0.01"])
    assert r.exit_code == 0, r.output
    sweep_id = r.output.split()[1]
    rows = query_arrow(str(results),
                       "SELECT cell, stage, status, error, steps_done FROM trials ORDER BY ALL").to_pylist()
    by_cell = {}
    for row in rows:
        by_cell.setdefault(row["cell"], set()).add(row["status"])
    assert by_cell == {"blockdiag": {"failed"}, "rnn": {"diverged"}, "lru": {"completed"}}
    assert all("hidden=63 is not a multiple of block_size=2" in row["error"]
               for row in rows if row["cell"] == "blockdiag")
    assert all(row["error"].startswith("non-finite loss at step") for row in rows if row["cell"] == "rnn")
    c = counts(str(results), sweep_id)
    assert c["rows"] == c["uniq"] == c["steps_done"] and c["trials"] == 6  # 3 cells x 1 Optuna trial x 2 seeds


@pytest.mark.slow
def test_two_sweeps_at_once_do_not_mix(tmp_path):
    results = tmp_path / "results"
    args = ["launch", "curse-of-memory", "--scale", "smoke", "--results", str(results), "--set", "cells=lru",
            "--set", "lr_search=none", "--set", "steps=20"]
    a = start_cli(*args, "--set", "nus=0.5", "--set", "seeds=2")
    b = start_cli(*args, "--set", "nus=0.95", "--set", "seeds=3")
    out_a, _ = a.communicate(timeout=400)
    out_b, _ = b.communicate(timeout=400)
    assert a.returncode == 0 and b.returncode == 0, out_a + out_b
    id_a, id_b = out_a.split()[1], out_b.split()[1]
    assert id_a != id_b
    assert_exact(str(results), id_a, n_trials=2, steps=20)
    assert_exact(str(results), id_b, n_trials=3, steps=20)
    nus = query_arrow(str(results), "SELECT sweep_id, list(DISTINCT nu) AS nus FROM trials GROUP BY ALL").to_pylist()
    assert {r["sweep_id"]: r["nus"] for r in nus} == {id_a: [0.5], id_b: [0.95]}


@pytest.mark.slow
def test_resume_a_sweep_killed_before_tunes_first_snapshot(ray_session, tmp_path):
    """A driver killed before Tune's first experiment-state file: the searcher's own state (written before each
    trial is handed to Tune) says what ran; the resumed sweep issues nothing twice, reruns no finished trial."""
    results = tmp_path / "results"
    r = runner.invoke(app, ["launch", "curse-of-memory", "--scale", "smoke", "--results", str(results),
                            "--set", "cells=lru", "--set", "nus=0.9", "--set", "lr_search=none",
                            "--set", "steps=20", "--set", "seeds=3"])
    assert r.exit_code == 0, r.output
    sweep_id = r.output.split()[1]
    before = {t["trial_id"]: t["ended_at"] for t in finished_trials(results)}
    meta_path = results / sweep_id / "sweep.json"
    meta_path.write_text(json.dumps(dict(json.loads(meta_path.read_text()), status="running")))
    states = list((results / sweep_id / "_tune" / "sweep").glob("experiment_state-*.json"))
    assert states
    for state in states:
        state.unlink()
    r = runner.invoke(app, ["resume", sweep_id, "--results", str(results)])
    assert r.exit_code == 0, r.output
    assert_exact(str(results), sweep_id, n_trials=3, steps=20)
    assert {t["trial_id"]: t["ended_at"] for t in finished_trials(results)} == before
    assert json.loads(meta_path.read_text())["status"] == "completed"
