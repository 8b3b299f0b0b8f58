"""Issue 14 on real Ray: a sweep folder moved or copied after a SIGKILL of its driver resumes where it is now,
a trial Tune gave up on reads failed and is retried by resume, and one driver per sweep (the lease, local and
S3). Exact row counts: 0 lost, 0 duplicated."""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import ray  # noqa: F401 - puts Ray's bundled psutil on the path
import psutil  # noqa: E402
from typer.testing import CliRunner

from analysis.db import query_arrow
from conftest import start_cli, sweep_cli
from orchestrator.cli import app
from orchestrator.lease import Lease, LeaseHeld
from sweepcheck import assert_exact
from test_faults import SMALL, finished_trials, sigkill_driver, wait_for

runner = CliRunner()
N_TRIALS = 2 * 2 * 3  # (2 cells x 1 nu) x (2 smoke grid rates x 3 seeds): the grid protocol


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file()}


@pytest.mark.slow
def test_moved_and_copied_sweep_resume_where_they_are_now(ray_session, tmp_path):
    results, steps = tmp_path / "results", 240
    # 12 solo trials, 2 at a time: some finish while later ones checkpoint (two bundles of 6 would end together,
    # and a finished sweep has no checkpoint left to see)
    proc = start_cli("launch", "curse-of-memory", *SMALL, "--set", f"steps={steps}", "--set", "checkpoint_every=40",
                     "--set", "bundle_seeds=false", "--results", str(results))
    wait_for(lambda: len(finished_trials(results)) >= 2 and list(results.glob("*/_checkpoints/*.pt")), 300,
             "2 finished trials and a checkpoint")
    sigkill_driver(proc)  # and its Ray workers ended: `mv` / `cp -a` of a folder nothing writes into any more
    sweep_id = json.loads(next(results.glob("*/sweep.json")).read_text())["sweep_id"]
    copy, moved = tmp_path / "copy", tmp_path / "moved"
    shutil.copytree(results, copy, symlinks=True)  # cp -a
    shutil.move(results, moved)  # mv
    before = snapshot(moved)

    r = runner.invoke(app, ["resume", sweep_id, "--results", str(copy)])
    assert r.exit_code == 0, r.output
    assert_exact(str(copy), sweep_id, n_trials=N_TRIALS, steps=steps)
    assert not results.exists()  # the old location was not recreated
    assert snapshot(moved) == before  # resuming the copy never wrote into the original

    r = runner.invoke(app, ["resume", sweep_id, "--results", str(moved)])
    assert r.exit_code == 0, r.output
    assert_exact(str(moved), sweep_id, n_trials=N_TRIALS, steps=steps)
    assert not results.exists()


def trial_workers() -> list[psutil.Process]:
    """This session's Ray worker processes running a trial (Ray titles them ray::ImplicitFunc...)."""
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "ImplicitFunc" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:
            pass
    return out


@pytest.mark.slow
def test_a_trial_tune_gives_up_on_reads_failed_and_resume_retries_it(ray_session, tmp_path):
    results, steps = tmp_path / "results", 150  # checkpoints at 50 and 100: a worker is killed between
    killed = []

    def kill_one_worker():
        def busy():
            running = list(results.glob("*/_checkpoints/*.pt"))
            return running and trial_workers()
        workers = wait_for(busy, 300, "a trial with a checkpoint")
        workers[0].kill()
        killed.append(workers[0].pid)

    t = threading.Thread(target=kill_one_worker, daemon=True)
    t.start()
    r = runner.invoke(app, ["launch", "curse-of-memory", *SMALL, "--set", f"steps={steps}", "--set",
                            "checkpoint_every=50", "--set", "max_failures=0", "--results", str(results)])
    t.join(10)
    assert r.exit_code == 0 and killed, r.output
    sweep_id = r.output.split()[1]
    failed = query_arrow(str(results), "SELECT trial_id, error FROM trials WHERE status = 'failed'").to_pylist()
    assert len(failed) >= 1 and all(f["error"].startswith("gave up: ") for f in failed), failed
    assert f"failed: {failed[0]['trial_id']}: gave up" in r.output  # the launch summary names it
    st = runner.invoke(app, ["status", sweep_id, "--results", str(results)])
    assert failed[0]["trial_id"] in st.output and "gave up" in st.output, st.output

    r = runner.invoke(app, ["resume", sweep_id, "--results", str(results)])
    assert r.exit_code == 0, r.output
    assert_exact(str(results), sweep_id, n_trials=N_TRIALS, steps=steps)


def test_a_second_driver_is_refused_naming_the_first(tmp_path):
    (tmp_path / "S").mkdir()
    first = Lease(str(tmp_path), "S", ttl_s=30)
    first.acquire()
    try:
        with pytest.raises(LeaseHeld, match=f"pid {os.getpid()}"):
            Lease(str(tmp_path), "S", ttl_s=30).acquire()
    finally:
        first.release()
    assert not (tmp_path / "S" / "_lease").exists()
    again = Lease(str(tmp_path), "S", ttl_s=30)
    again.acquire()  # free once released
    again.release()


@pytest.mark.slow
def test_the_lease_works_on_s3(s3_uri):
    first = Lease(s3_uri, "S3SWEEP", ttl_s=30)
    first.acquire()
    try:
        with pytest.raises(LeaseHeld, match="driven by another driver"):
            Lease(s3_uri, "S3SWEEP", ttl_s=30).acquire()
    finally:
        first.release()
    Lease(s3_uri, "S3SWEEP", ttl_s=30).acquire()  # released: free again (and left to expire)


def write_meta(folder: Path, status: str) -> None:
    from orchestrator.sweeps import resolve

    folder.mkdir(parents=True, exist_ok=True)
    spec = resolve("curse-of-memory", "smoke").to_dict()
    (folder / "sweep.json").write_text(json.dumps({"sweep_id": folder.name, "name": spec["name"], "status": status,
                                                   "created_at": "2026-01-01T00:00:00+00:00", "spec": spec,
                                                   "scale": "smoke"}))


def test_an_expired_lease_reads_stale_in_ls_and_status(tmp_path):
    write_meta(tmp_path / "S", "running")
    lease = Lease(str(tmp_path), "S", ttl_s=0.5)
    lease._write()  # a driver that took its lease and was then SIGKILLed: never renewed
    r = runner.invoke(app, ["ls", "--results", str(tmp_path)])
    assert r.exit_code == 0 and "running" in r.output, r.output
    time.sleep(1.0)
    r = runner.invoke(app, ["ls", "--results", str(tmp_path)])
    assert r.exit_code == 0 and "stale" in r.output, r.output
    r = runner.invoke(app, ["status", "S", "--results", str(tmp_path)])
    assert "stale" in r.output, r.output


@pytest.mark.slow
def test_two_resumes_at_once_one_is_refused(tmp_path):
    results = tmp_path / "results"
    write_meta(results / "S", "interrupted")
    Lease(str(results), "S", ttl_s=60)._write()  # a live driver (renewed just now)
    r = sweep_cli("resume", "S", "--results", str(results), timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: sweep S is driven by another driver"), r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
