"""Shared fixtures: one real local Ray for the whole test session (no mocks of Ray, Parquet or DuckDB)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

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


@pytest.fixture(scope="session")
def com_smoke(ray_session, tmp_path_factory):
    """One `sweep launch curse-of-memory --scale smoke` for the session, read by test_launch and
    test_report_html: (results dir, sweep id, the launch's output). Tests only read it (a report is fine)."""
    from typer.testing import CliRunner

    from orchestrator.cli import app

    results = tmp_path_factory.mktemp("com-smoke")
    r = CliRunner().invoke(app, ["launch", "curse-of-memory", "--scale", "smoke", "--results", str(results)])
    assert r.exit_code == 0, r.output
    return results, r.output.split()[1], r.output


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


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is fastest on a shared 2-core machine (a second thread that is not
    scheduled stalls every op)."""
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
