"""`digits` / `pdigits`: pixel-by-pixel digit classification, the sequential and permuted MNIST tasks of
Turkoglu et al. (STAR, Sec. 5.1, Tables 3-4), with an offline stand-in.

Offline (``data_dir`` empty): scikit-learn's 8x8 digits (``sklearn.datasets.load_digits``, 1,797 images
that ship with the package), each image a sequence of 64 one-pixel steps (row-major, scaled from 0..16 to
[0, 1]), 10 classes. A fixed split (its own seed, the same for every trial): 360 test images, 1,437 train.
A longer ``seq_len`` that is a square s x s (256, 784, ...) upsamples the 8x8 images bilinearly to s x s first:
the same digits as s^2-step sequences, so the length of the paper's 784-step pixel MNIST can be studied
offline.
With ``data_dir`` set: the real MNIST IDX files there (train-images-idx3-ubyte, train-labels-idx1-ubyte,
t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally .gz), 784 steps (pixels / 255), the
official 60,000 / 10,000 split. ``pdigits`` applies one fixed random pixel permutation (its own seed) to
every image before it becomes a sequence: nearby pixels become far-apart steps (pMNIST).

``sample`` draws a training minibatch (with replacement) from the train split with the trial's generator;
``eval_sample`` returns the test split (its first ``batch`` images). The model reads all steps and is
scored on its last output: cross-entropy of y_hat[:, -1] against the label; the metric is top-1 accuracy.
"""
from __future__ import annotations

import gzip
import importlib.util
import math
import os
import struct

import numpy as np
import torch
from torch import Tensor

from .base import Task

SPLIT_SEED = 1234  # the train/test split of the 8x8 digits
PERM_SEED = 4321  # the pixel permutation of pdigits / pMNIST
TEST_SIZE = 360  # 8x8 digits held out for evaluation (20%)
MNIST_FILES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
               "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str) -> np.ndarray:
    """An IDX file (LeCun's MNIST format; gzip when the name ends in .gz): 2 zero bytes, a dtype code byte,
    a byte with the number of dimensions n, n big-endian uint32 sizes, then the values row-major."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (magic bytes {data[:4].hex()})")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4: 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    count = int(np.prod(shape)) if ndim else 1
    body = data[4 + 4 * ndim:]
    if len(body) != count * dtype.itemsize:
        raise ValueError(f"{path}: header says shape {shape} ({count * dtype.itemsize} bytes), "
                         f"the file holds {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def _find(data_dir: str, name: str) -> str:
    for candidate in (name, name + ".gz"):
        path = os.path.join(data_dir, candidate)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"MNIST file {name}[.gz] not found in data_dir={data_dir!r}; expected "
                            f"{', '.join(MNIST_FILES.values())} (each optionally .gz)")


def load_mnist(data_dir: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(train images (N, 784) in [0, 1], train labels, test images, test labels) from the IDX files."""
    arrays = {k: read_idx(_find(data_dir, name)) for k, name in MNIST_FILES.items()}
    images = lambda a: torch.from_numpy(a.reshape(a.shape[0], -1).astype(np.float32) / 255.0)
    labels = lambda a: torch.from_numpy(a.astype(np.int64))
    out = images(arrays["train_x"]), labels(arrays["train_y"]), images(arrays["test_x"]), labels(arrays["test_y"])
    if out[0].shape[0] != out[1].shape[0] or out[2].shape[0] != out[3].shape[0]:
        raise ValueError(f"MNIST files in {data_dir!r}: image and label counts differ")
    return out


def digits_8x8() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 64) with values 0..16, labels): the file ``sklearn.datasets.load_digits`` reads
    (sklearn/datasets/data/digits.csv.gz, one image per row, the label last), read without importing
    scikit-learn, whose import costs seconds per trial process (tests check it equals ``load_digits()``)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the digits tasks need scikit-learn (its 8x8 digits file) when data_dir is empty")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1], table[:, -1].astype(np.int64)


def load_8x8(side: int = 8) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """scikit-learn's 8x8 digits as (train images (1437, side^2) in [0, 1], labels, test images (360, side^2),
    labels); ``side`` > 8 upsamples each image bilinearly to side x side."""
    images, labels = digits_8x8()
    x = torch.from_numpy(images.astype(np.float32) / 16.0)
    if side != 8:
        x = torch.nn.functional.interpolate(x.view(-1, 1, 8, 8), size=(side, side), mode="bilinear",
                                            align_corners=False).reshape(len(x), side * side)
    y = torch.from_numpy(labels)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    test, train = order[:TEST_SIZE], order[TEST_SIZE:]
    return x[train], y[train], x[test], y[test]


class Digits(Task):
    """Sequential digits: one pixel per step, the label scored on the last output."""

    d_in = 1
    d_out = 10
    has_metric = True
    permuted = False

    def __init__(self, data_dir: str = "", side: int = 8):
        self.source = "mnist" if data_dir else f"sklearn-8x8 digits at {side}x{side}"
        train_x, self.train_y, test_x, self.test_y = load_mnist(data_dir) if data_dir else load_8x8(side)
        self.seq_len = train_x.shape[1]
        if self.permuted:
            perm = torch.randperm(self.seq_len, generator=torch.Generator().manual_seed(PERM_SEED))
            train_x, test_x = train_x[:, perm], test_x[:, perm]
        self.train_x, self.test_x = train_x[..., None], test_x[..., None]  # (N, T, 1)

    @classmethod
    def from_config(cls, cfg) -> "Digits":
        side = math.isqrt(cfg.seq_len)
        if not cfg.data_dir and (side * side != cfg.seq_len or side < 8):
            raise ValueError(f"seq_len={cfg.seq_len} is not a valid length for task {cfg.task!r} on the 8x8 "
                             f"digits; valid: squares of 8 or more (64, 256, 784, ...)")
        task = cls(cfg.data_dir, side)
        if cfg.seq_len != task.seq_len:
            raise ValueError(f"seq_len={cfg.seq_len} does not match task {cfg.task!r} on {task.source} "
                             f"images, which are {task.seq_len} steps; set seq_lens={task.seq_len}")
        return task

    def to(self, device: torch.device) -> "Digits":
        for name in ("train_x", "train_y", "test_x", "test_y"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        idx = torch.randint(0, len(self.train_y), (batch,), generator=generator, device=generator.device)
        return self.train_x[idx], self.train_y[idx]

    def eval_sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.test_x[:batch], self.test_y[:batch]

    def loss(self, y_hat: Tensor, y: Tensor) -> Tensor:
        return torch.nn.functional.cross_entropy(y_hat[:, -1], y)

    def metric(self, y_hat: Tensor, y: Tensor) -> float:
        return (y_hat[:, -1].argmax(dim=-1) == y).float().mean().item()


class PermutedDigits(Digits):
    """Permuted digits: sequential digits under one fixed pixel permutation (pMNIST)."""

    permuted = True
