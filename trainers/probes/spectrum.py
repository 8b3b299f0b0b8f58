"""Matrix-free spectral estimates of a symmetric operator given only as ``matvec``: v -> H v on flat vectors of
length ``dim`` (the Hessian probe's HVP, trainers.probes.hessian; any symmetric matrix in tests):

- ``lanczos``: the Lanczos tridiagonalisation with full reorthogonalisation (every new vector is
  orthogonalised twice against all earlier ones, so no spurious copies of converged Ritz values; on a
  breakdown, i.e. an exhausted Krylov space, it restarts with a fresh random vector orthogonal to all earlier
  ones, so m = dim steps give the whole spectrum, multiplicities included);
- ``top_bottom``: grows one Lanczos run until the top-k and bottom-k Ritz values pass ARPACK's test
  |beta_m s_mi| <= tol |theta_i| (the residual norm of the Ritz pair bounds the distance to an eigenvalue);
- ``hutchinson_trace``: tr H ~ mean of z^T H z over Rademacher z;
- ``slq_density``: stochastic Lanczos quadrature, nodes = Ritz values of an m-step run from a normalised
  Rademacher vector, weights = squared first components of the tridiagonal's eigenvectors, divided by the
  number of runs (so all weights sum to 1). Raw nodes and weights are stored; Gaussian smoothing is a
  plotting concern. The density's mean sum(w * node) is (1/dim) x the Hutchinson estimate of the same
  start vectors, exactly (e1^T T e1 = alpha_1 = z^T H z / dim);
- ``ipr`` / ``k90``: localisation of an eigenvector, sum v^4 / (sum v^2)^2 and the number of coordinates
  holding 90% of sum v^2 (Zucchet & Orvieto Fig. 4: diagonal models concentrate their top eigenvectors);
- ``power_iteration_top_k``: PyHessian's method (amirgholami/PyHessian ``hessian.eigenvalues``: power
  iteration with deflation by Gram-Schmidt, stop when the relative change of the Rayleigh quotient is below
  tol, at most max_iter products per eigenvalue), the baseline of ``bench/hessian.py``. Like PyHessian it
  finds the eigenvalues of largest *magnitude*, which are the top ones only when no negative eigenvalue is
  larger in magnitude.

Random vectors come from the caller's ``torch.Generator`` (drawn on the CPU in float64, then moved), so a
seeded generator gives the same vectors on CPU and CUDA.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

Matvec = Callable[[Tensor], Tensor]


def _normal(dim: int, generator: torch.Generator, dtype: torch.dtype, device) -> Tensor:
    return torch.randn(dim, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)


def rademacher(dim: int, generator: torch.Generator, dtype: torch.dtype, device) -> Tensor:
    z = torch.randint(0, 2, (dim,), generator=generator, dtype=torch.int64) * 2 - 1
    return z.to(dtype=dtype, device=device)


class _Lanczos:
    """An incremental Lanczos run: ``extend()`` does one HVP and appends alpha_j, beta_j and q_j.

    After j steps: Q[:j] (j, dim) has orthonormal rows, T_j = tridiag(betas[:j-1], alphas, betas[:j-1]) =
    Q H Q^T up to round-off, and betas[j-1] = ||w_j|| is the norm of the next (unnormalised) vector, so the
    residual of a Ritz pair (theta_i, Q^T s_i) is |betas[j-1] * s_i[-1]|. A breakdown (beta ~ 0 before
    j = dim: the Krylov space is invariant) restarts from a random vector orthogonal to Q, with beta = 0.
    """

    def __init__(self, matvec: Matvec, dim: int, m: int, generator: torch.Generator, dtype, device,
                 v0: Tensor | None = None):
        self.matvec, self.dim, self.gen, self.dtype, self.device = matvec, dim, generator, dtype, device
        self.m = min(m, dim)
        self.Q = torch.zeros(self.m, dim, dtype=dtype, device=device)
        self.alphas: list[float] = []
        self.betas: list[float] = []
        self.breakdowns: list[int] = []  # steps j after which the run restarted
        v = _normal(dim, generator, dtype, device) if v0 is None else v0.to(dtype=dtype, device=device)
        self.Q[0] = v / torch.linalg.vector_norm(v)
        self.scale = 0.0  # running estimate of ||H|| (largest |alpha| + |beta| seen)

    @property
    def steps(self) -> int:
        return len(self.alphas)

    def _orthogonalise(self, w: Tensor, j: int) -> Tensor:
        Qj = self.Q[: j + 1]
        for _ in range(2):  # "twice is enough" (Kahan, Parlett)
            w = w - Qj.T @ (Qj @ w)
        return w

    def extend(self) -> None:
        j = self.steps
        q = self.Q[j]
        w = self.matvec(q)
        alpha = torch.dot(q, w)
        w = w - alpha * q
        if j > 0 and self.betas[-1] != 0.0:
            w = w - self.betas[-1] * self.Q[j - 1]
        w = self._orthogonalise(w, j)
        beta = torch.linalg.vector_norm(w)
        a, b = alpha.item(), beta.item()  # one device sync per step
        self.alphas.append(a)
        self.scale = max(self.scale, abs(a) + b)
        eps = torch.finfo(self.dtype).eps
        if j + 1 == self.dim:
            self.betas.append(b)
            return
        # invariant subspace (to sqrt(eps) ||H||, 1.5e-8 in float64; dropping such a beta moves the Ritz
        # values by no more than that): restart
        if b <= math.sqrt(eps) * max(self.scale, 1e-300):
            self.betas.append(0.0)
            self.breakdowns.append(j + 1)
            if j + 1 < self.m:
                for _ in range(3):  # a fresh random direction orthogonal to everything so far
                    w = self._orthogonalise(_normal(self.dim, self.gen, self.dtype, self.device), j)
                    n = torch.linalg.vector_norm(w)
                    if n > 1e-8:
                        break
                self.Q[j + 1] = w / n
            return
        self.betas.append(b)
        if j + 1 < self.m:
            self.Q[j + 1] = w / beta

    def tridiagonal(self) -> Tensor:
        """T_j as a dense (j, j) float64 CPU matrix."""
        j = self.steps
        T = torch.diag(torch.tensor(self.alphas, dtype=torch.float64))
        if j > 1:
            off = torch.tensor(self.betas[: j - 1], dtype=torch.float64)
            T = T + torch.diag(off, 1) + torch.diag(off, -1)
        return T


def lanczos(matvec: Matvec, dim: int, m: int, generator: torch.Generator, dtype=torch.float64, device="cpu",
            v0: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """m (<= dim) Lanczos steps with full reorthogonalisation from v0 (default: a Gaussian vector).

    Returns (alphas (m,), betas (m - 1,), Q (m, dim)): the tridiagonal T = Q H Q^T's diagonal and
    off-diagonal (float64, CPU) and the orthonormal Lanczos vectors as rows. A zero beta marks a restart.
    """
    run = _Lanczos(matvec, dim, m, generator, dtype, device, v0)
    for _ in range(run.m):
        run.extend()
    a = torch.tensor(run.alphas, dtype=torch.float64)
    b = torch.tensor(run.betas[: run.m - 1], dtype=torch.float64)
    return a, b, run.Q


def tridiagonal_eigh(alphas: Tensor, betas: Tensor) -> tuple[Tensor, Tensor]:
    """Eigenvalues (ascending) and eigenvectors (columns) of tridiag(betas, alphas, betas)."""
    T = torch.diag(alphas.double())
    if len(betas):
        T = T + torch.diag(betas.double(), 1) + torch.diag(betas.double(), -1)
    return torch.linalg.eigh(T)


def lanczos_eigs(matvec: Matvec, dim: int, m: int, generator: torch.Generator, dtype=torch.float64,
                 device="cpu", v0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Ritz values (ascending, float64 CPU) and Ritz vectors (dim, m columns, unit norm) of an m-step run."""
    a, b, Q = lanczos(matvec, dim, m, generator, dtype, device, v0)
    theta, S = tridiagonal_eigh(a, b)
    return theta, Q.T @ S.to(dtype=Q.dtype, device=Q.device)


@dataclass
class Extremes:
    """What ``top_bottom`` found. Values are float64 on the CPU; vectors are (dim, k) columns on the device."""

    top: Tensor  # (k_top,) descending
    bottom: Tensor  # (k_bottom,) ascending
    top_vectors: Tensor
    bottom_vectors: Tensor
    n_hvp: int  # Hessian-vector products used
    converged: bool  # whether every requested Ritz pair passed the residual test (else max_iter was hit)
    residuals: Tensor  # |beta_m s_mi| of the top then the bottom pairs
    history: list[tuple[Tensor, Tensor]]  # per step j = 1..n_hvp: (top-k Ritz values, bottom-k Ritz values)


def top_bottom(matvec: Matvec, dim: int, k_top: int = 3, k_bottom: int = 1, tol: float = 1e-4,
               max_iter: int = 100, generator: torch.Generator | None = None, dtype=torch.float64,
               device="cpu") -> Extremes:
    """The k_top largest and k_bottom smallest eigenvalues by one Lanczos run, grown one HVP at a time until
    every requested Ritz pair has residual |beta_j s_ji| <= tol * max(|theta_i|, 1e-8 * spectral radius)
    (ARPACK's test; the floor lets an exactly-zero eigenvalue converge), j = dim (exact), or j = max_iter.
    After a breakdown (the Krylov space of the start vector is exhausted: all its Ritz pairs have residual 0)
    the test waits until the restarted block has k_top + k_bottom steps, so that further copies of a repeated
    eigenvalue can appear. Single-vector Lanczos sees one copy of a repeated eigenvalue per Krylov block:
    multiplicities are certain only when the run reaches j = dim; at a generic point of a trained network's
    loss the extreme eigenvalues are simple."""
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    run = _Lanczos(matvec, dim, max(1, min(max_iter, dim)), generator, dtype, device)
    k_top, k_bottom = min(k_top, dim), min(k_bottom, dim)
    history: list[tuple[Tensor, Tensor]] = []
    converged = False
    while run.steps < run.m:
        run.extend()
        j = run.steps
        theta, S = torch.linalg.eigh(run.tridiagonal())
        history.append((theta.flip(0)[:k_top].clone(), theta[:k_bottom].clone()))
        idx = list(range(j - 1, max(j - 1 - k_top, -1), -1)) + list(range(min(k_bottom, j)))
        res = abs(run.betas[-1]) * S[-1, idx].abs()
        if j == dim:
            converged = True
            break
        since_restart = j - (run.breakdowns[-1] if run.breakdowns else 0)  # = j without a breakdown
        if since_restart < k_top + k_bottom:
            continue
        floor = 1e-8 * theta.abs().max()
        if bool((res <= tol * torch.maximum(theta[idx].abs(), floor)).all()):
            converged = True
            break
    j = run.steps
    theta, S = torch.linalg.eigh(run.tridiagonal())
    top_i = list(range(j - 1, max(j - 1 - k_top, -1), -1))
    bot_i = list(range(min(k_bottom, j)))
    Sd = S.to(dtype=dtype, device=run.Q.device)
    Y = run.Q[:j].T @ Sd  # Ritz vectors, (dim, j)
    res = abs(run.betas[-1]) * S[-1, top_i + bot_i].abs()
    return Extremes(top=theta[top_i], bottom=theta[bot_i], top_vectors=Y[:, top_i], bottom_vectors=Y[:, bot_i],
                    n_hvp=j, converged=converged, residuals=res, history=history)


def hutchinson_trace(matvec: Matvec, dim: int, n_samples: int, generator: torch.Generator, dtype=torch.float64,
                     device="cpu") -> float:
    """tr H ~ (1/n) sum_s z_s^T H z_s with Rademacher z_s (unbiased; exact when H is diagonal, since z_i^2 = 1
    and then z^T H z = sum_i H_ii)."""
    total = 0.0
    for _ in range(n_samples):
        z = rademacher(dim, generator, dtype, device)
        total += torch.dot(z, matvec(z)).item()
    return total / max(n_samples, 1)


def slq_density(matvec: Matvec, dim: int, n_vectors: int, m: int, generator: torch.Generator,
                dtype=torch.float64, device="cpu") -> tuple[Tensor, Tensor]:
    """Stochastic Lanczos quadrature: (nodes, weights), float64 CPU, n_vectors * min(m, dim) of each.

    Run r starts from z_r / sqrt(dim), z_r Rademacher; its nodes are the Ritz values theta_i of the m-step
    tridiagonal T_r = S diag(theta) S^T and its weights S[0, i]^2 / n_vectors, so each run's weights sum to
    1 / n_vectors and all of them to 1. With m = dim the nodes are the exact eigenvalues.
    """
    nodes, weights = [], []
    for _ in range(n_vectors):
        z = rademacher(dim, generator, dtype, device)
        a, b, _ = lanczos(matvec, dim, m, generator, dtype, device, v0=z)
        theta, S = tridiagonal_eigh(a, b)
        nodes.append(theta)
        weights.append(S[0] ** 2 / n_vectors)
    return torch.cat(nodes), torch.cat(weights)


def ipr(v: Tensor) -> float:
    """Inverse participation ratio sum v^4 / (sum v^2)^2: 1 for a basis vector, 1/n for a flat one."""
    v2 = v.detach().double() ** 2
    return (v2.square().sum() / v2.sum().square()).item()


def k90(v: Tensor, mass: float = 0.9) -> int:
    """The smallest number of coordinates whose squared entries hold ``mass`` of ||v||^2 (ties in the
    cumulative sum are resolved with a relative slack of 1e-12, so a flat vector of length n gives
    ceil(0.9 n) rather than one more by round-off)."""
    v2 = (v.detach().double() ** 2).sort(descending=True).values
    cum = v2.cumsum(0)
    return int((cum < mass * cum[-1] * (1 - 1e-12)).sum().item()) + 1


def power_iteration_top_k(matvec: Matvec, dim: int, k: int, max_iter: int = 100, tol: float = 1e-3,
                          generator: torch.Generator | None = None, dtype=torch.float64, device="cpu") -> dict:
    """PyHessian's ``eigenvalues(maxIter, tol, top_n)``: for each of k eigenvalues, a Gaussian start, then
    up to max_iter rounds of [Gram-Schmidt against the eigenvectors found, v <- H v / ||H v||], stopping when
    |lambda - lambda_prev| / (|lambda_prev| + 1e-6) < tol for the Rayleigh quotient lambda = v^T H v.

    Returns {"eigenvalues": [k], "eigenvectors": (dim, k), "n_hvp": int, "history": [[lambda per HVP]] * k}.
    (PyHessian keeps the previous round's estimate on exit; here the last one, which is no worse.)
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    vals, vecs, history, n_hvp = [], [], [], 0
    for _ in range(k):
        v = _normal(dim, generator, dtype, device)
        v = v / torch.linalg.vector_norm(v)
        lam, hist = None, []
        for _ in range(max_iter):
            for u in vecs:
                v = v - torch.dot(u, v) * u
            v = v / torch.linalg.vector_norm(v)
            hv = matvec(v)
            n_hvp += 1
            new = torch.dot(v, hv).item()
            hist.append(new)
            v = hv / torch.linalg.vector_norm(hv)
            done = lam is not None and abs(lam - new) / (abs(lam) + 1e-6) < tol
            lam = new
            if done:
                break
        vals.append(lam)
        vecs.append(v)
        history.append(hist)
    return {"eigenvalues": vals, "eigenvectors": torch.stack(vecs, 1), "n_hvp": n_hvp, "history": history}
