"""Shared fixtures: one real local Ray for the whole test session (no mocks of Ray, Parquet or DuckDB)."""
from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
from typing import NamedTuple

import pytest

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# Dummy credentials for the loopback S3 server of test_storage; set before Ray starts so its workers
# inherit them, and no AWS metadata endpoint is ever asked.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def ray_session():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


class Smoke(NamedTuple):
    """A finished smoke sweep: its results location, its id and what `sweep launch` printed."""
    results: pathlib.Path
    sweep_id: str
    output: str


@pytest.fixture(scope="session")
def smoke_sweep(ray_session, tmp_path_factory):
    """The one factory of smoke sweeps: ``smoke_sweep(name, "key=value", ..., into=None)`` runs `sweep launch
    NAME --scale smoke --set key=value ...` through the CLI on the session's Ray once per distinct call for the
    whole session, and gives its ``Smoke``. Sweeps given the same ``into`` share one results folder; each other
    call gets its own. Tests only read them (a report or a verify beside them is fine)."""
    from typer.testing import CliRunner

    from orchestrator.cli import app

    done: dict = {}
    folders: dict = {}

    def launch(name: str, *sets: str, into: str | None = None) -> Smoke:
        key = (name, sets, into)
        if key not in done:
            if into is None or into not in folders:
                folders[into or key] = tmp_path_factory.mktemp(into or f"{name}-smoke")
            results = folders[into or key]
            r = CliRunner().invoke(app, ["launch", name, "--scale", "smoke", "--results", str(results),
                                         *(a for s in sets for a in ("--set", s))])
            done[key] = Smoke(results, r.output.split()[1], r.output) if r.exit_code == 0 else r
        if not isinstance(done[key], Smoke):  # a failed launch fails every test that reads it, with its output
            raise AssertionError(f"`sweep launch {name} --scale smoke {sets}` failed ({done[key].exit_code}):\n"
                                 f"{done[key].output}")
        return done[key]

    return launch


@pytest.fixture(scope="session")
def com_smoke(smoke_sweep):
    """The session's `sweep launch curse-of-memory --scale smoke`, read by test_launch, test_report_html and
    test_claims."""
    return smoke_sweep("curse-of-memory")


@pytest.fixture(scope="module")
def s3_uri():
    """A real S3-protocol server (moto) on loopback and a results URI in its bucket `sweeps`."""
    import pyarrow.fs as pafs

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        opts = f"endpoint_override=127.0.0.1:{port}&scheme=http"
        fs, _ = pafs.FileSystem.from_uri(f"s3://sweeps?{opts}&allow_bucket_creation=true")
        fs.create_dir("sweeps")
        yield f"s3://sweeps/lab/runs?{opts}"
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is fastest on a shared 2-core machine (a second thread that is not
    scheduled stalls every op: test_train took 225 s with two, 24 s with one, on the loaded box). Every test's
    own process, for the whole session; Ray's trials set theirs from cpus_per_trial."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def sweep_cli(*args: str, cwd=None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The `sweep` CLI in its own process, as a user runs it (its own local Ray unless --address is given)."""
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})


def start_cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})},
                            start_new_session=True)


# ------------------------------------------------------------------------------------------ the fast lane
# `pytest -m "not slow"` is the lane a maintainer runs often: every test that starts Ray or another process is
# marked slow. Enforced here for every test that is not: using the session's Ray, starting a process (the CLI,
# Ray, a server, a browser, a shell) or fitting a Ray Tune sweep fails it, naming what to do (an xfail mark
# does not hide that failure).
FAST_LANE = "is not marked @pytest.mark.slow but {what}: mark it slow (the fast lane runs without Ray or processes)"
BROKE_THE_LANE = pytest.StashKey[str]()


def _refused(item, what: str, original):
    def refused(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():  # Ray's own threads, left by a slow test
            return original(*args, **kwargs)
        said = what + (f" ({os.path.basename(str(args[1][0]))})" if what == "starts a process" else "")
        item.stash[BROKE_THE_LANE] = FAST_LANE.format(what=said)
        raise pytest.fail.Exception(item.stash[BROKE_THE_LANE])

    return refused


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if item.get_closest_marker("slow") is None and "ray_session" in item.fixturenames:
        pytest.fail(FAST_LANE.format(what="uses the ray_session fixture"), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if item.get_closest_marker("slow") is not None:
        yield
        return
    targets = [(subprocess.Popen, "_execute_child", "starts a process")]
    if "ray.tune" in sys.modules:  # not imported yet: Ray is not up, and starting it starts processes
        targets.append((sys.modules["ray.tune"].Tuner, "fit", "fits a Ray Tune sweep"))
    with pytest.MonkeyPatch.context() as mp:
        for owner, attr, what in targets:
            mp.setattr(owner, attr, _refused(item, what, getattr(owner, attr)))
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    said = item.stash.get(BROKE_THE_LANE, None)
    if said is not None:  # in this phase (setup, call or teardown)
        del item.stash[BROKE_THE_LANE]
        if report.outcome != "failed":  # an xfail mark took the failure
            report.outcome, report.longrepr = "failed", f"{item.nodeid} {said}"
            if hasattr(report, "wasxfail"):
                del report.wasxfail
