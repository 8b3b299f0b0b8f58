"""Shared storage: a sweep writes straight to an S3-protocol server (moto's real server on loopback, not a
mock of the client), and `sweep query` reads from there. Nothing lands in the local working directory."""
from __future__ import annotations

import pyarrow.fs as pafs
import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from sweepcheck import assert_exact

runner = CliRunner()


@pytest.mark.slow
def test_sweep_writes_to_and_queries_from_s3(ray_session, s3_uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["launch", "curse-of-memory", "--scale", "smoke", "--results", s3_uri,
                            "--set", "cells=lru", "--set", "nus=0.9", "--set", "lr_search=none",
                            "--set", "steps=20", "--set", "seeds=2"])
    assert r.exit_code == 0, r.output
    sweep_id = r.output.split()[1]
    assert_exact(s3_uri, sweep_id, n_trials=2, steps=20)
    fs, root = pafs.FileSystem.from_uri(s3_uri)
    names = {f.base_name for f in fs.get_file_info(pafs.FileSelector(f"{root}/{sweep_id}", recursive=True))}
    assert {"sweep.json", "part-00000.parquet", "trial.parquet"} <= names
    r = runner.invoke(app, ["query", "SELECT count(*) AS n FROM steps", "--format", "csv", "--results", s3_uri])
    assert r.exit_code == 0 and r.output.split() == ["n", "40"]
    r = runner.invoke(app, ["ls", "--results", s3_uri])
    assert r.exit_code == 0 and sweep_id in r.output
    r = runner.invoke(app, ["compact", sweep_id, "--results", s3_uri])  # merged on S3: a copy, then deletes
    assert r.exit_code == 0 and "2 finished trials merged" in r.output, r.output
    assert_exact(s3_uri, sweep_id, n_trials=2, steps=20)
    names = [f.base_name for f in fs.get_file_info(pafs.FileSelector(f"{root}/{sweep_id}/steps", recursive=True))]
    assert "part-00000.parquet" not in names and any(n.startswith("merged-") for n in names)
    assert list(tmp_path.iterdir()) == []  # trials wrote straight to S3, not into a local folder
