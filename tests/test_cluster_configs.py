"""The cluster recipes: `cluster.yaml` (AWS), `cluster/onprem.yaml` (Ray's local provider) and
`cluster/slurm.sbatch`.

The two YAML files are checked the way `ray up` checks them before it touches a cloud: against the JSON
schema shipped in the installed Ray package, then through Ray's own `prepare_config` (defaults filled in,
`setup_commands` merged into the head's and workers' lists) and `validate_config`. On top of that, the facts
a reviewer would check by hand: an autoscaling GPU pool, a head without GPUs, the project installed on every
node (CUDA torch first on GPU nodes), results on shared storage, the checkout mounted where it is installed.
Every shell command must parse with `bash -n` (a YAML slip such as an unquoted ' #' or ': ' shows up here).
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
AWS = ROOT / "cluster.yaml"
ONPREM = ROOT / "cluster" / "onprem.yaml"
SLURM = ROOT / "cluster" / "slurm.sbatch"
SCHEMA_PATH = Path(os.path.dirname(ray.autoscaler.__file__)) / "ray-schema.json"
COMMAND_LISTS = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
                 "head_start_ray_commands", "worker_start_ray_commands")
PROJECT_INSTALL = re.compile(r"pip install\b.*\s-e\s+(\S+)")   # `pip install ... -e <path>`


def load(path: Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def schema_errors(config: dict) -> list[str]:
    schema = json.loads(SCHEMA_PATH.read_text())
    # Ray calls jsonschema.validate, which picks the validator from "$schema": draft 7.
    assert schema["$schema"].startswith("http://json-schema.org/draft-07/")
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}" for e in validator.iter_errors(config)]


def prepared(config: dict) -> dict:
    """What `ray up` validates: Ray's defaults filled in and setup commands merged (no cloud calls)."""
    config = prepare_config(copy.deepcopy(config))
    validate_config(config)
    return config


def all_commands(config: dict) -> list[str]:
    cmds = [c for key in COMMAND_LISTS for c in config.get(key) or []]
    for node_type in (config.get("available_node_types") or {}).values():
        cmds += [c for key in ("initialization_commands", "worker_setup_commands") for c in node_type.get(key) or []]
    return cmds


def installs_project(commands: list[str], mounted: str) -> bool:
    return any(m and m.group(1) == mounted for m in map(PROJECT_INSTALL.search, commands))


def first_index(commands: list[str], pattern: str) -> int:
    return next(i for i, c in enumerate(commands) if re.search(pattern, c))


def mounted_project(config: dict) -> str:
    """The remote path the checkout (local ".") is copied to."""
    remote = [r for r, local in config["file_mounts"].items() if local in (".", "./")]
    assert len(remote) == 1, f"file_mounts must map one remote path to the checkout '.': {config['file_mounts']}"
    return remote[0]


def results_exports(config: dict) -> list[str]:
    return [m.group(1) for c in all_commands(config)
            for m in re.finditer(r"export SWEEP_RESULTS=(\S+?)['\"]?(?:;|\s|$)", c)]


# ---------------------------------------------------------------------------------------------- both YAMLs

@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_config_matches_rays_schema_as_written(path):
    errors = schema_errors(load(path))
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_config_passes_rays_own_preparation_and_validation(path):
    config = prepared(load(path))
    assert config["head_node_type"] in config["available_node_types"]
    assert not schema_errors(config)


@pytest.mark.slow
@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_every_shell_command_parses(path):
    for cmd in all_commands(load(path)):
        assert isinstance(cmd, str), f"not a string (YAML read ': ' as a mapping?): {cmd!r}"
        r = subprocess.run(["bash", "-n", "-c", cmd], capture_output=True, text=True)
        assert r.returncode == 0, f"{cmd!r}: {r.stderr}"


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_checkout_is_mounted_and_installed_on_every_node(path):
    raw = load(path)
    config = prepared(raw)
    project = mounted_project(raw)
    for excluded in (".venv", "results", ".git"):
        assert excluded in raw["rsync_exclude"], excluded
    # After Ray merges setup_commands into both lists, head and workers each install the mounted checkout,
    # unless a node type overrides its worker_setup_commands (which replaces the merged list).
    assert installs_project(config["head_setup_commands"], project)
    for name, node_type in config["available_node_types"].items():
        if name != config["head_node_type"]:
            commands = node_type.get("worker_setup_commands", config["worker_setup_commands"])
            assert installs_project(commands, project), name


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_ray_is_started_by_the_launchers_conventions(path):
    raw = load(path)
    head = " ".join(raw["head_start_ray_commands"])
    worker = " ".join(raw["worker_start_ray_commands"])
    assert raw["head_start_ray_commands"][0] == "ray stop" and raw["worker_start_ray_commands"][0] == "ray stop"
    assert re.search(r"ray start --head --port=6379 .*--autoscaling-config=~/ray_bootstrap_config\.yaml", head)
    assert "ray start --address=$RAY_HEAD_IP:6379" in worker


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_token_auth_is_consistent(path):
    # Ray 2.60 refuses a node or driver whose auth mode differs from the head's; the launcher hands out no
    # token, so a config that turns token mode on must also ship the token to every node.
    raw = load(path)
    if any("RAY_AUTH_MODE=token" in c for c in all_commands(raw)):
        assert "~/.ray/auth_token" in raw["file_mounts"]


# ---------------------------------------------------------------------------------------------- AWS

def test_aws_provider_and_auth():
    raw = load(AWS)
    provider = raw["provider"]
    assert provider["type"] == "aws"
    assert re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", provider["region"])
    assert all(z.startswith(provider["region"]) for z in provider["availability_zone"].split(","))
    assert isinstance(provider["cache_stopped_nodes"], bool)
    assert raw["auth"]["ssh_user"] == "ubuntu"
    assert raw["idle_timeout_minutes"] > 0


def test_aws_gpu_workers_autoscale_and_head_has_no_gpu():
    raw = load(AWS)
    types = raw["available_node_types"]
    head = types[raw["head_node_type"]]
    assert head["max_workers"] == 0
    assert "CPU" in head["resources"] and head["resources"].get("GPU", 0) == 0
    gpu_types = {name: t for name, t in types.items() if t["resources"].get("GPU", 0) >= 1}
    assert gpu_types, "no worker type offers GPUs"
    for name, t in gpu_types.items():
        assert name != raw["head_node_type"]
        assert t["min_workers"] == 0 < t["max_workers"] <= raw["max_workers"], name   # scales from zero
        assert t["resources"]["CPU"] >= 1
    for t in types.values():
        node = t["node_config"]
        assert node["InstanceType"] and node["ImageId"].startswith("ami-")
        assert node["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] >= 100
    # Workers write Parquet to S3 themselves, so they need an instance profile (the head gets Ray's default).
    for t in gpu_types.values():
        assert t["node_config"]["IamInstanceProfile"]["Arn"].startswith("arn:aws:iam::")


def test_aws_placeholders_are_marked_edit():
    lines = AWS.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("#"):
            continue
        if re.search(r"^\s*(region|ImageId|InstanceType|Arn):", line):
            assert "EDIT" in line, line
        if "YOUR-BUCKET" in line:
            assert any("EDIT" in prev for prev in lines[max(0, i - 3):i + 1]), line


def test_aws_results_go_to_s3():
    raw = load(AWS)
    exports = results_exports(raw)
    assert exports and all(e.startswith("s3://") for e in exports), exports


def test_aws_gpu_workers_get_cuda_torch_before_the_project():
    raw = load(AWS)
    config = prepared(raw)
    workers = config["worker_setup_commands"]       # setup_commands + worker_setup_commands, as Ray merges them
    cuda = first_index(workers, r"pip install .*torch==2\.13\.0.*--index-url https://download\.pytorch\.org/whl/cu\d+")
    assert cuda < first_index(workers, PROJECT_INSTALL.pattern)
    head = config["head_setup_commands"]
    assert not any("/whl/cu" in c for c in head), "the CPU head needs no CUDA build"
    assert any("boto3" in c for c in head), "the autoscaler on the head drives EC2 through boto3"


# ---------------------------------------------------------------------------------------------- on-prem

def test_onprem_provider_and_auth():
    raw = load(ONPREM)
    provider = raw["provider"]
    assert provider["type"] == "local"
    assert isinstance(provider["head_ip"], str) and provider["head_ip"]
    assert isinstance(provider["worker_ips"], list) and provider["worker_ips"]
    assert provider["head_ip"] not in provider["worker_ips"]
    assert raw["auth"]["ssh_user"] and raw["auth"]["ssh_private_key"]
    # Ray's local provider aborts `ray up` when these are given; it makes its own single node type.
    assert "available_node_types" not in raw and "head_node_type" not in raw
    config = prepared(raw)
    (node_type,) = config["available_node_types"].values()
    assert node_type["max_workers"] == len(provider["worker_ips"])


def test_onprem_results_on_shared_storage_and_cuda_torch_first():
    raw = load(ONPREM)
    exports = results_exports(raw)
    assert exports and all(e.startswith("s3://") or (e.startswith("/") and not e.startswith("/tmp")) for e in exports)
    cmds = raw["setup_commands"]
    cuda = first_index(cmds, r"torch==2\.13\.0.*--index-url https://download\.pytorch\.org/whl/cu\d+")
    assert cuda < first_index(cmds, PROJECT_INSTALL.pattern)


# ---------------------------------------------------------------------------------------------- SLURM

def slurm_code() -> str:
    """The script without its comment lines (so a command mentioned only in a comment does not count)."""
    return "\n".join(line for line in SLURM.read_text().splitlines() if not line.lstrip().startswith("#"))


@pytest.mark.slow
def test_slurm_script_parses():
    r = subprocess.run(["bash", "-n", str(SLURM)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_slurm_directives():
    text = SLURM.read_text()
    assert text.startswith("#!/bin/bash")
    directives = dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(\S+))?", text, re.M))
    assert directives["ntasks-per-node"] == "1"      # one Ray node per machine
    for key in ("nodes", "cpus-per-task", "gpus-per-task", "time"):
        assert directives.get(key), key


def test_slurm_starts_ray_head_then_workers_then_runs_the_sweep():
    code = slurm_code()
    assert "set -euo pipefail" in code
    assert re.search(r"source .*bin/activate", code)
    assert "scontrol show hostnames" in code
    head = re.search(r"srun [^\n]*-w \"\$head\"[^\n]*\\\n\s*ray start --head[^\n]*--port[^\n]*"
                     r"(\\\n[^\n]*)*--block &", code)
    assert head, "head: srun -w $head ray start --head ... --block &"
    worker = re.search(r"srun [^\n]*-w \"\$node\"[^\n]*\\\n\s*ray start --address [^\n]*--block &", code)
    assert worker, "workers: srun -w $node ray start --address ... --block &"
    launch = re.search(r"sweep launch [^\n]*--address [^\n]*--results", code)
    assert launch and code.index("ray start --head") < code.index("ray start --address") < launch.start()
    assert re.search(r"^ray stop$", code, re.M) and code.rindex("ray stop") > launch.start()
    # Token auth set for the whole job, so srun's steps and the driver agree.
    assert "export RAY_AUTH_MODE=token" in code and "--export=ALL" in code
