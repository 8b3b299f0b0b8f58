"""The deep-rnn sweep (Turkoglu et al., STAR): the star and lstmf cells against hand-written float64 equations,
their inits, the digits tasks and the IDX parser, the lattice-at-init analysis, and one smoke-scale launch
through the CLI with its query and report."""
from __future__ import annotations

import gzip
import math
import os
import struct

import numpy as np
import pytest
import torch
from sweepcheck import cli_rows
from typer.testing import CliRunner

from analysis.db import query_arrow
from orchestrator.cli import app
from orchestrator.spec import SpecError
from orchestrator.specfile import SpecFileError, load_file
from orchestrator.spec_records import CellInit
from orchestrator.sweeps import resolve
from orchestrator.trial_configs import trial_config
from trainers.analyses import lattice_init
from trainers.build import build_model
from trainers.cells import CellSpec, build_cell
from trainers.config import TrialConfig
from trainers.record import TrialWriter
from trainers.stack import Stack
from trainers.tasks import task_class
from trainers.tasks.digits import MNIST_FILES, PERM_SEED, digits_8x8, read_idx

pytestmark = pytest.mark.usefixtures("one_thread")
T, BATCH, D_IN, H, D_OUT = 20, 3, 2, 5, 4


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def star_reference(W_Kx, W_Kh, b_K, W_z, b_z, R, x):
    """STAR Eqs. 10-12 unit by unit with Python floats (float64): K = sig(W_Kx x + W_Kh h + b_K),
    z = tanh(W_z x + b_z), h' = tanh((1 - K) h + K z), y = R h."""
    out = []
    for b in range(x.shape[0]):
        h, ys = [0.0] * H, []
        for t in range(x.shape[1]):
            xt = x[b, t].tolist()
            new = []
            for i in range(H):
                k = sig(sum(W_Kx[i][j] * xt[j] for j in range(D_IN)) + sum(W_Kh[i][j] * h[j] for j in range(H))
                        + b_K[i])
                z = math.tanh(sum(W_z[i][j] * xt[j] for j in range(D_IN)) + b_z[i])
                new.append(math.tanh((1 - k) * h[i] + k * z))
            h = new
            ys.append([sum(R[o][i] * h[i] for i in range(H)) for o in range(D_OUT)])
        out.append(ys)
    return torch.tensor(out, dtype=torch.float64)


def lstmf_reference(W_xf, W_hf, b_f, W_xz, W_hz, b_z, R, x):
    """STAR Appendix A.3 (Eqs. 22-24): f = sig(W_xf x + W_hf h + b_f), z = tanh(W_xz x + W_hz h + b_z),
    h' = tanh(f h + (1 - f) z), y = R h."""
    out = []
    for b in range(x.shape[0]):
        h, ys = [0.0] * H, []
        for t in range(x.shape[1]):
            xt = x[b, t].tolist()
            new = []
            for i in range(H):
                f = sig(sum(W_xf[i][j] * xt[j] for j in range(D_IN)) + sum(W_hf[i][j] * h[j] for j in range(H))
                        + b_f[i])
                z = math.tanh(sum(W_xz[i][j] * xt[j] for j in range(D_IN)) + sum(W_hz[i][j] * h[j] for j in range(H))
                              + b_z[i])
                new.append(math.tanh(f * h[i] + (1 - f) * z))
            h = new
            ys.append([sum(R[o][i] * h[i] for i in range(H)) for o in range(D_OUT)])
        out.append(ys)
    return torch.tensor(out, dtype=torch.float64)


def random_cell(name: str, seed: int = 0):
    torch.manual_seed(seed)
    cell = build_cell(name, CellSpec(D_IN, H, D_OUT)).double()
    with torch.no_grad():
        for p in cell.parameters():  # larger than the default init, so the gates leave their linear range
            p.copy_(torch.randn(p.shape, dtype=torch.float64))
    return cell


# ---------------------------------------------------------------- cells
def test_star_matches_hand_written_equations():
    cell = random_cell("star")
    x = torch.randn(BATCH, T, D_IN, dtype=torch.float64)
    Wi, bi, Wh, R = (cell.input.weight.tolist(), cell.input.bias.tolist(), cell.recurrent.weight.tolist(),
                     cell.readout.weight.tolist())
    ref = star_reference(Wi[:H], Wh, bi[:H], Wi[H:], bi[H:], R, x)  # gate order K, z
    with torch.no_grad():
        assert torch.allclose(cell(x), ref, rtol=1e-12, atol=1e-12)
        assert torch.allclose(cell.forward_stepwise(x), ref, rtol=1e-12, atol=1e-12)


def test_lstmf_matches_hand_written_equations():
    cell = random_cell("lstmf")
    x = torch.randn(BATCH, T, D_IN, dtype=torch.float64)
    Wi, bi, Wh, R = (cell.input.weight.tolist(), cell.input.bias.tolist(), cell.recurrent.weight.tolist(),
                     cell.readout.weight.tolist())
    ref = lstmf_reference(Wi[:H], Wh[:H], bi[:H], Wi[H:], Wh[H:], bi[H:], R, x)  # gate order f, z
    with torch.no_grad():
        assert torch.allclose(cell(x), ref, rtol=1e-12, atol=1e-12)
        assert torch.allclose(cell.forward_stepwise(x), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["star", "lstmf"])
def test_forward_equals_stepwise_with_gradients(name):
    cell = random_cell(name, seed=3)
    x = torch.randn(BATCH, T, D_IN, dtype=torch.float64)
    w = torch.randn(BATCH, T, D_OUT, dtype=torch.float64)
    params = list(cell.parameters())
    g_fast = torch.autograd.grad((w * cell(x)).sum(), params)
    g_loop = torch.autograd.grad((w * cell.forward_stepwise(x)).sum(), params)
    for a, b in zip(g_fast, g_loop):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["star", "lstmf"])
def test_plain_stack_of_new_cells_feeds_h_upward(name):
    # block="plain": inner readouts are the identity, so layer 2 of the stack == the cell run on layer 1's h
    torch.manual_seed(0)
    stack = Stack(name, D_IN, H, D_OUT, depth=2, block="plain").double()
    x = torch.randn(BATCH, T, D_IN, dtype=torch.float64)
    with torch.no_grad():
        h1 = stack.layers[0](x)
        assert h1.shape == (BATCH, T, H)
        assert torch.allclose(stack(x), stack.layers[1](h1), rtol=1e-12, atol=1e-12)
        assert torch.allclose(stack(x), stack.forward_stepwise(x), rtol=1e-12, atol=1e-12)


def assert_orthogonal(w: torch.Tensor):
    """Rows orthonormal when w is wide or square, columns when tall (nn.init.orthogonal_'s semi-orthogonality)."""
    g = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    assert torch.allclose(g, torch.eye(g.shape[0], dtype=g.dtype), atol=1e-6), (g - torch.eye(g.shape[0])).abs().max()


@pytest.mark.parametrize("init", ["orthogonal", "chrono"])
def test_star_init(init):
    torch.manual_seed(1)
    hidden, t_max = 16, 64
    cell = build_cell("star", CellSpec(3, hidden, 10, init=init, t_max=t_max))
    W_Kx, W_z = cell.input.weight.split(hidden)
    for w in (W_Kx, W_z, cell.recurrent.weight):
        assert_orthogonal(w.double())
    b_K, b_z = cell.input.bias.split(hidden)
    assert torch.all(b_z == 0)
    if init == "orthogonal":
        assert torch.all(b_K == 0)
    else:  # b_K = -log U(1, t_max - 1): in [-log 63, 0], K = sigmoid(b_K) starts below 1/2
        assert torch.all(b_K <= 0) and torch.all(b_K >= -math.log(t_max - 1) - 1e-6)
        assert b_K.std() > 0.3  # drawn per unit, not one constant
        assert torch.all(torch.sigmoid(b_K) <= 0.5)


@pytest.mark.parametrize("init", ["orthogonal", "chrono"])
def test_lstmf_init(init):
    torch.manual_seed(2)
    hidden, t_max = 16, 64
    cell = build_cell("lstmf", CellSpec(1, hidden, 10, init=init, t_max=t_max))
    for w in (*cell.input.weight.split(hidden), *cell.recurrent.weight.split(hidden)):
        assert_orthogonal(w.double())
    b_f, b_z = cell.input.bias.split(hidden)
    assert torch.all(b_z == 0)
    if init == "orthogonal":
        assert torch.all(b_f == 0)
    else:  # forget bias log U(1, t_max - 1): the gate starts open (f >= 1/2), memory ~ U(1, t_max) steps
        assert torch.all(b_f >= 0) and torch.all(b_f <= math.log(t_max - 1) + 1e-6) and b_f.std() > 0.3


def test_chrono_needs_a_sequence_length():
    with pytest.raises(ValueError, match="t_max >= 2"):
        build_cell("star", CellSpec(1, 4, 1, init="chrono", t_max=0))


# ---------------------------------------------------------------- digits tasks
def test_digits_split_sequences_and_permutation():
    seq, perm = task_class("digits")(), task_class("pdigits")()
    assert seq.train_x.shape == (1437, 64, 1) and seq.test_x.shape == (360, 64, 1)
    assert 0.0 <= seq.train_x.min() and seq.train_x.max() == 1.0
    assert set(seq.test_y.tolist()) == set(range(10))
    # the split is fixed: the same images in a second instance, and no test image is also a train image
    again = task_class("digits")()
    assert torch.equal(again.test_x, seq.test_x) and torch.equal(again.train_y, seq.train_y)
    train_rows = {tuple(r) for r in seq.train_x[..., 0].tolist()}
    assert sum(tuple(r) in train_rows for r in seq.test_x[..., 0].tolist()) < 5  # the 8x8 set has a few duplicates
    # pdigits: one fixed permutation of the 64 steps (seeded by PERM_SEED), the same for every image
    a, b = seq.train_x[..., 0], perm.train_x[..., 0]
    assert torch.equal(perm.train_y, seq.train_y) and not torch.equal(a, b)
    assert torch.equal(a.sort(dim=1).values, b.sort(dim=1).values)  # each image keeps its pixels
    order = torch.randperm(64, generator=torch.Generator().manual_seed(PERM_SEED))
    assert torch.equal(b, a[:, order]) and torch.equal(perm.test_x[..., 0], seq.test_x[:, order, 0])
    informative = [j for j in range(64) if a[:, j].std() > 0]  # the 8x8 set has a few all-zero pixels
    assert sum(torch.equal(b[:, j], a[:, j]) for j in informative) < 5  # most steps moved


def test_digits_upsampled_to_a_longer_sequence():
    base = task_class("digits")()
    cfg = lambda T: TrialConfig(sweep="s", sweep_id="s", trial_id="t", results="r", task="digits", seq_len=T)
    long = task_class("digits").from_config(cfg(256))
    assert long.seq_len == 256 and long.train_x.shape == (1437, 256, 1)
    assert torch.equal(long.train_y, base.train_y)
    img8, img16 = base.train_x[0, :, 0].view(8, 8), long.train_x[0, :, 0].view(16, 16)
    # output pixel (2i+1, 2j+1) sits at source coordinate (i + 0.25, j + 0.25): weights 0.75/0.25 per axis
    i, j = 3, 4
    want = (0.5625 * img8[i, j] + 0.1875 * img8[i + 1, j] + 0.1875 * img8[i, j + 1] + 0.0625 * img8[i + 1, j + 1])
    assert torch.allclose(img16[2 * i + 1, 2 * j + 1], want, atol=1e-6)
    assert task_class("pdigits").from_config(cfg(100)).train_x.shape == (1437, 100, 1)  # any square >= 64
    for bad in (48, 65):
        with pytest.raises(ValueError, match=f"seq_len={bad} is not a valid length .* valid: squares of 8 or more"):
            task_class("digits").from_config(cfg(bad))


def test_digits_file_is_load_digits():
    from sklearn.datasets import load_digits

    images, labels = digits_8x8()
    ref = load_digits()
    assert np.array_equal(images, ref.data) and np.array_equal(labels, ref.target)


def test_digits_sampling_loss_and_accuracy():
    task = task_class("digits")()
    x1, y1 = task.sample(32, torch.Generator().manual_seed(5))
    x2, y2 = task.sample(32, torch.Generator().manual_seed(5))
    assert x1.shape == (32, 64, 1) and torch.equal(x1, x2) and torch.equal(y1, y2)
    ex, ey = task.eval_sample(100, torch.Generator().manual_seed(0))
    assert torch.equal(ex, task.test_x[:100]) and torch.equal(ey, task.test_y[:100])
    # the loss and the accuracy read only the last output
    y_hat = torch.randn(32, 64, 10)
    y_hat[:, -1] = -5.0
    y_hat[torch.arange(32), -1, y1] = 5.0  # the last step predicts every label
    assert task.metric(y_hat, y1) == 1.0
    expected = -torch.log_softmax(y_hat[:, -1], dim=-1)[torch.arange(32), y1].mean()
    assert torch.allclose(task.loss(y_hat, y1), expected)
    y_hat[:, :-1] = 100.0 * torch.randn(32, 63, 10)  # earlier steps do not count
    assert task.metric(y_hat, y1) == 1.0 and torch.allclose(task.loss(y_hat, y1), expected)


def write_idx(path: str, array: np.ndarray, gz: bool = False) -> None:
    """IDX by hand: 0, 0, dtype code 0x08 (ubyte), ndim, big-endian sizes, then the bytes."""
    head = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = head + array.astype(np.uint8).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(data)


def test_idx_parser_and_mnist_loader(tmp_path):
    rng = np.random.default_rng(0)
    imgs = {"train": rng.integers(0, 256, (7, 28, 28)), "test": rng.integers(0, 256, (3, 28, 28))}
    labels = {"train": rng.integers(0, 10, 7), "test": rng.integers(0, 10, 3)}
    write_idx(str(tmp_path / MNIST_FILES["train_x"]), imgs["train"])
    write_idx(str(tmp_path / (MNIST_FILES["train_y"] + ".gz")), labels["train"], gz=True)
    write_idx(str(tmp_path / (MNIST_FILES["test_x"] + ".gz")), imgs["test"], gz=True)
    write_idx(str(tmp_path / MNIST_FILES["test_y"]), labels["test"])
    back = read_idx(str(tmp_path / MNIST_FILES["train_x"]))
    assert back.shape == (7, 28, 28) and back.dtype == np.uint8 and np.array_equal(back, imgs["train"])
    assert np.array_equal(read_idx(str(tmp_path / (MNIST_FILES["train_y"] + ".gz"))), labels["train"])

    task = task_class("digits")(str(tmp_path))
    assert task.seq_len == 784 and task.train_x.shape == (7, 784, 1) and task.test_x.shape == (3, 784, 1)
    assert torch.allclose(task.train_x[2, :, 0],
                          torch.tensor(imgs["train"][2].reshape(-1) / 255.0, dtype=torch.float32))
    assert task.test_y.tolist() == labels["test"].tolist()
    cfg = TrialConfig(sweep="s", sweep_id="s", trial_id="t", results="r", task="digits", data_dir=str(tmp_path),
                      seq_len=64)
    with pytest.raises(ValueError, match="784 steps; set seq_lens=784"):
        task_class("digits").from_config(cfg)


def test_idx_errors_are_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*not found in data_dir"):
        task_class("pdigits")(str(tmp_path))
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(str(bad))
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 4)
    with pytest.raises(ValueError, match="header says shape"):
        read_idx(str(short))


# ---------------------------------------------------------------- lattice at init
def corner_ratio(g: torch.Tensor) -> float:
    """(layer 1, t = 1) over (layer L, t = T): > 1 when the gradient grows toward early and shallow cells."""
    return (g[0, 0] / g[-1, -1]).item()


def test_lattice_init_rows(tmp_path):
    cfg = TrialConfig(sweep="deep-rnn", sweep_id="sid", trial_id="lattice_init-star", results=str(tmp_path),
                      stage="analysis", analysis="lattice_init", cell="star", depth=3, hidden=6, probe_batch=4)
    writer = TrialWriter(cfg.results, cfg.sweep_id, cfg.trial_id)
    out = lattice_init.run(cfg, writer)
    writer.flush()
    assert out["status"] == "completed" and out["steps_done"] == 0
    rows = query_arrow(str(tmp_path), "SELECT loss, wrt, count(*) AS n, min(layer) AS l0, max(layer) AS l1, "
                                      "min(t) AS t0, max(t) AS t1, min(grad_norm) AS g FROM lattice GROUP BY ALL "
                                      "ORDER BY ALL").to_pylist()
    assert [(r["loss"], r["wrt"]) for r in rows] == [("all", "hidden"), ("all", "params"), ("last", "hidden"),
                                                     ("last", "params")]
    assert all(r["n"] == 9 and (r["l0"], r["l1"], r["t0"], r["t1"]) == (1, 3, 1, 3) and r["g"] > 0 for r in rows)


def test_correlated_inputs_recurrence():
    g = torch.Generator().manual_seed(0)
    x = lattice_init.correlated_inputs(2, 5, 3, 0.5, g)
    z = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    expected = [0.5 * z[:, 0]]
    for t in range(1, 5):
        expected.append(0.5 * expected[-1] + 0.5 * z[:, t])  # x_t = a x_{t-1} + (1 - a) z_t, a = 1/2
    assert torch.allclose(x, torch.stack(expected, dim=1))


def test_lattice_vrnn_grows_lstm_shrinks():
    # STAR Fig. 2 at a small size: 6 x 6 lattice, 16 units, 4 draws. The vanilla RNN's gradient is larger at
    # the early, shallow corner than where the loss enters; the LSTM's is orders of magnitude smaller there.
    grids = {c: lattice_at(c) for c in ("vrnn", "lstm", "star")}
    assert corner_ratio(grids["vrnn"]) > 1.5, grids["vrnn"]
    assert corner_ratio(grids["lstm"]) < 0.05, grids["lstm"]
    star_diag = torch.diagonal(grids["star"])
    assert star_diag.max() / star_diag.min() < 10, star_diag  # the diagonal stays of one order


def lattice_at(cell: str) -> torch.Tensor:
    return lattice_init.lattice_at_init(cell, 6, 6, 16, 16, seed=0, runs=4, params=False)[("last", "hidden")]


# ---------------------------------------------------------------- the sweep, end to end
def test_sweep_spec_scales():
    for scale in ("smoke", "quick", "paper"):
        spec = resolve("deep-rnn", scale)
        assert spec.block == "plain" and spec.clips == (5.0,) and spec.optimizer == "adam"
        assert set(spec.tasks) == {"digits", "pdigits"} and spec.depths[0] == max(spec.depths)
        assert {a.cell for a in spec.analyses} == set(spec.cells)
        assert {a.name for a in spec.analyses} == {"lattice_init"}
    assert resolve("deep-rnn", "paper").depths == (16, 12, 8, 4, 2, 1)


def test_paper_scale_gives_each_cell_its_own_init_at_784_steps():
    """One paper-scale sweep: vrnn orthogonal, the gated cells chrono; each trial's config and built model
    carry its own cell's init (vrnn: zero biases; star: b_K = -log U(1, 783) < 0)."""
    spec = resolve("deep-rnn", "paper")
    assert spec.seq_lens == (784,)
    inits = {}
    for group in spec.grid():
        cfg = TrialConfig.from_dict(trial_config(spec, "s", "/tmp/unused", group, seed=0, lr=1e-3, trial_id="t"))
        inits.setdefault(group["cell"], set()).add(cfg.init)
        assert cfg.seq_len == 784  # the chrono init's t_max
    assert inits == {"vrnn": {"orthogonal"}, "lstm": {"chrono"}, "lstmf": {"chrono"}, "gru": {"chrono"},
                     "star": {"chrono"}}
    models = {}
    for cell in ("vrnn", "star"):
        group = dict(spec.grid()[0], cell=cell, depth=1)
        cfg = TrialConfig.from_dict(trial_config(spec, "s", "/tmp/unused", group, seed=0, lr=1e-3, trial_id="t"))
        models[cell] = build_model(cfg, task_class(cfg.task).from_config(cfg), torch.device("cpu")).layers[0]
    vrnn, star = models["vrnn"], models["star"]
    assert torch.all(vrnn.core.bias_hh_l0 == 0) and torch.all(vrnn.core.bias_ih_l0 == 0)
    assert_orthogonal(vrnn.core.weight_hh_l0.detach().double())
    b_K = star.input.bias[:star.hidden]
    assert torch.all(b_K < 0) and torch.all(b_K >= -math.log(783) - 1e-6) and b_K.min() < -math.log(100)


def test_cell_inits_from_set_and_spec_files_and_bad_values(tmp_path):
    spec = resolve("deep-rnn", "smoke", ["cell_inits=star:chrono"])
    assert (spec.init_for("star"), spec.init_for("vrnn")) == ("chrono", "orthogonal")
    toml = tmp_path / "inits.toml"
    toml.write_text('base = "deep-rnn"\nscale = "smoke"\n[train]\ncell_inits = { star = "chrono", '
                    'vrnn = "default" }\n')
    spec = load_file(str(toml)).spec
    assert spec.cell_inits == (CellInit("star", "chrono"), CellInit("vrnn", "default"))
    assert spec.init_for("vrnn") == "default"
    yaml_file = tmp_path / "inits.yaml"
    yaml_file.write_text("base: deep-rnn\nscale: smoke\ntrain:\n  cell_inits: [star:chrono]\n")
    assert load_file(str(yaml_file)).spec.init_for("star") == "chrono"
    for sets, needle in ((["cell_inits=vrnn:chrono"],
                          "invalid cell_inits='vrnn:chrono'; valid: vrnn:INIT with INIT one of default, orthogonal, "
                          "smart_tanh"),
                         (["cell_inits=xlstm:chrono"], "invalid cell_inits='xlstm:chrono'; valid: entries cell:init "
                                                       "with a cell in blockdiag, cdiag"),
                         (["cell_inits=star"], "invalid cell_inits='star'; valid: entries cell:init"),
                         (["init=chrono"], "invalid init='chrono'; valid: for cell vrnn: default, orthogonal, "
                                           "smart_tanh (--set cell_inits=vrnn:INIT gives one cell its own)")):
        with pytest.raises(SpecError) as e:
            resolve("deep-rnn", "smoke", sets)
        assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "deep-rnn"\nscale = "smoke"\n[train]\ncell_inits = ["star:chrono", "vrnn:chrono"]\n')
    with pytest.raises(SpecFileError, match=r":4: train\.cell_inits: 'vrnn:chrono' is not valid; valid: vrnn:INIT"):
        load_file(str(bad))


@pytest.fixture(scope="module")
def smoke(smoke_sweep):
    return smoke_sweep("deep-rnn")


@pytest.mark.slow
def test_smoke_sweep_rows(smoke):
    results, sid, _ = smoke
    spec = resolve("deep-rnn", "smoke")
    w = f"WHERE sweep_id = '{sid}'"
    trials = cli_rows(results, f"SELECT stage, task, cell, depth, status, steps_done, final_metric FROM trials {w}")
    seed = [t for t in trials if t["stage"] == "seed"]
    assert len(seed) == len(spec.tasks) * len(spec.cells) * len(spec.depths) * spec.seeds
    assert all(t["status"] == "completed" and int(t["steps_done"]) == spec.steps for t in seed)
    assert all(0.0 <= float(t["final_metric"]) <= 1.0 for t in seed)
    analyses = [t for t in trials if t["stage"] == "analysis"]
    assert sorted(t["cell"] for t in analyses) == sorted(spec.cells)
    L = max(spec.depths)
    rows = cli_rows(results, f"SELECT trial_id, loss, wrt, count(*) AS n FROM lattice {w} GROUP BY ALL")
    assert len(rows) == 4 * len(spec.cells) and all(int(r["n"]) == L * L for r in rows)


@pytest.mark.slow
def test_smoke_report(smoke):
    results, _, _ = smoke
    r = CliRunner().invoke(app, ["report", "deep-rnn", "--results", str(results), "--out", str(results / "rep")])
    assert r.exit_code == 0, r.output
    names = sorted(os.listdir(results / "rep"))
    assert {"fig2_lattice_last.png", "fig2_lattice_all.png", "accuracy_vs_depth.png", "deep-rnn.md"} <= set(names)
    for n in names:
        if n.endswith(".png"):
            assert (results / "rep" / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (results / "rep" / "deep-rnn.md").read_text()
    assert "Table 3" in md and "Table 4" in md and "| star |" in md
