"""`cdiag` / `cdiag_norm` / `cdiag_exp`: complex diagonal linear recurrences (Zucchet & Orvieto Fig. 3B ablation).

h_t = lambda * h_t-1 + diag(gamma) B x_t, y_t = Re(C h_t) + D x_t, lambda complex and diagonal.
``parametrisation`` picks how lambda is stored:
- ``real_imag`` (`cdiag`): lambda = a + i b, both trained directly, no normalisation;
- ``exp`` (`lru`): lambda = exp(-exp(w_nu) + i exp(w_theta)).
``normalise`` adds the learned input normalisation gamma, initialised to sqrt(1 - |lambda|^2) (stored as
log gamma under ``exp``, as gamma itself otherwise, as in the authors' code). `cdiag_norm` is the
"+gamma" step between `cdiag` and `lru`; `cdiag_exp` is the other path, the exp parametrisation without gamma
(the authors' ``ablation_LRU_p1.yaml`` crosses the two).
Init: |lambda| uniform in area on the ring [r_min, r_max], angle uniform in [0, 2 pi); B, C complex with
real and imaginary parts N(0, 1)/sqrt(rows) (the authors' ``matrix_init``), D real likewise.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import LTICell, normal_init, ring_init
from .spec import CellSpec

PARAMETRISATIONS = ("real_imag", "exp")


class DiagonalLTI(LTICell):
    GROUPS = {"lam": "recurrent", "B": "input", "gamma": "input", "C": "output", "D": "output"}

    def __init__(self, d_in: int, hidden: int, d_out: int, r_min: float = 0.0, r_max: float = 1.0,
                 max_phase: float = 2 * math.pi, parametrisation: str = "real_imag", normalise: bool = False):
        super().__init__(d_in, hidden, d_out)
        if parametrisation not in PARAMETRISATIONS:
            raise ValueError(f"parametrisation {parametrisation!r} is not one of {PARAMETRISATIONS}")
        self.parametrisation, self.normalise = parametrisation, normalise
        nu, theta = ring_init(hidden, r_min, r_max, max_phase)
        if parametrisation == "exp":
            # theta = 0 would make log(theta) = -inf; nudge it (probability zero in exact arithmetic)
            a, b = torch.log(-torch.log(nu)), torch.log(theta.clamp_min(1e-8))
        else:
            a, b = nu * torch.cos(theta), nu * torch.sin(theta)
        self.lam_a, self.lam_b = nn.Parameter(a.float()), nn.Parameter(b.float())
        if normalise:
            g = torch.sqrt(1 - nu**2)
            self.gamma = nn.Parameter((torch.log(g) if parametrisation == "exp" else g).float())
        self.B_re = nn.Parameter(normal_init(hidden, d_in, scale_dim=hidden))
        self.B_im = nn.Parameter(normal_init(hidden, d_in, scale_dim=hidden))
        self.C_re = nn.Parameter(normal_init(d_out, hidden, scale_dim=d_out))
        self.C_im = nn.Parameter(normal_init(d_out, hidden, scale_dim=d_out))
        self.D = nn.Parameter(normal_init(d_out, d_in, scale_dim=d_out))

    def lam(self) -> Tensor:
        if self.parametrisation == "exp":
            return torch.exp(self.log_lam())
        return torch.complex(self.lam_a, self.lam_b)

    def log_lam(self) -> Tensor:
        if self.parametrisation == "exp":
            return torch.complex(-torch.exp(self.lam_a), torch.exp(self.lam_b))
        return torch.log(self.lam())

    def input_matrix(self) -> Tensor:
        B = torch.complex(self.B_re, self.B_im)
        if self.normalise:
            g = torch.exp(self.gamma) if self.parametrisation == "exp" else self.gamma
            B = g[:, None] * B
        return B

    def output_matrix(self) -> Tensor:
        return torch.complex(self.C_re, self.C_im)

    def modal_powers(self, V: Tensor, T: int) -> Tensor:
        log_lam = self.log_lam()
        k = torch.arange(T, device=log_lam.device, dtype=log_lam.real.dtype)
        # lambda^k = exp(k log lambda): exact at k = 0, no loop over k
        powers = torch.exp(k[:, None] * log_lam[None, :])  # (T, hidden)
        return powers[:, :, None] * V[None]

    def transition_apply(self, h: Tensor) -> Tensor:
        return self.lam() * h

    def impulse_response(self, T: int) -> Tensor:
        """K[k] = Re(C diag(lambda^k) B) + [k == 0] D, as ``LTICell.impulse_response`` but in real arithmetic:
        with log lambda = log r + i theta, K[k] = sum_n r_n^k (cos(k theta_n) Re W_n - sin(k theta_n) Im W_n),
        W_n = C[:, n] B[n, :]. A complex exp over (T, hidden) and the complex products after it cost about twice
        as much, forward and backward (at T = 300, hidden 64 the kernel was 2/3 of an lru training step)."""
        log_lam = self.log_lam()
        k = torch.arange(T, device=log_lam.device, dtype=log_lam.real.dtype)[:, None]
        mag, angle = torch.exp(k * log_lam.real), k * log_lam.imag  # (T, hidden) each
        W = self.output_matrix().T[:, :, None] * self.input_matrix()[:, None, :]  # (hidden, d_out, d_in)
        K = (torch.einsum("tn,noi->toi", mag * torch.cos(angle), W.real)
             - torch.einsum("tn,noi->toi", mag * torch.sin(angle), W.imag))
        return torch.cat([K[:1] + self.D, K[1:]], dim=0)


def build(spec: CellSpec) -> DiagonalLTI:
    """Complex diagonal linear recurrence without input normalisation (Fig. 3B ablation).

    Complex diagonal, lambda as real and imaginary parts, no normalisation; ring init on [r_min, r_max]."""
    return DiagonalLTI(spec.d_in, spec.hidden, spec.d_out, spec.r_min, spec.r_max)


def build_norm(spec: CellSpec) -> DiagonalLTI:
    """Complex diagonal linear recurrence with the learned input normalisation gamma.

    `cdiag` plus the learned input normalisation gamma (the ablation step before `lru`)."""
    return DiagonalLTI(spec.d_in, spec.hidden, spec.d_out, spec.r_min, spec.r_max, normalise=True)


def build_exp(spec: CellSpec) -> DiagonalLTI:
    """Complex diagonal linear recurrence, exponential parametrisation, no input normalisation.

    `lru` without gamma: the "+exp" step of the Fig. 3B ablation (ablation_LRU_p1.yaml)."""
    return DiagonalLTI(spec.d_in, spec.hidden, spec.d_out, spec.r_min, spec.r_max, parametrisation="exp")
