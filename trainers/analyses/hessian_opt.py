"""The Hessian at optimality (Zucchet & Orvieto 2024, Fig. 4): where the curse of memory shows in the loss
landscape, for a dense linear RNN against the complex diagonal one.

Teacher (float64, hidden 4, input 1, output 1): A0 ~ N(0, 1)/2 drawn from ``seed`` until its 4 eigenvalues
are two complex-conjugate pairs with |sin(angle)| >= 0.2 (both pairs clearly oscillatory, so no pair is close
to a real double eigenvalue and the eigenbasis is well conditioned); each eigenvalue's magnitude is then set to
exactly ``nu`` (0.99), its angle kept: A = Re(V diag(nu e^{i angle}) V^-1) (the paper's remap, with
|lambda| = nu instead of nu + (1 - nu) tanh|l|). B ~ N(0, 1), C ~ N(0, 1)/2, D ~ N(0, 1), as the task's
teacher (``TeacherStudent``).

Students set exactly to the teacher, each in its own parametrisation:
- ``rnn`` (``LinearRNN``, hidden 4): A, B, C, D themselves (25 parameters);
- ``blockdiag`` (``LinearRNN``, 2x2 blocks): the real modal form, P = [Re v1, Im v1, Re v2, Im v2],
  A_blk = P^-1 A P = diag([[a, b], [-b, a]]) per pair, B_blk = P^-1 B, C_blk = C P (17 parameters);
- ``cdiag`` / ``cdiag_norm`` / ``lru`` (``DiagonalLTI``, hidden 2 complex modes): one eigenvalue of each
  conjugate pair (Im > 0), B_mode = (V^-1 B)_n, C_mode = 2 (C V)_n, so Re(C_mode h) = the pair's real
  contribution (13, 15, 15 parameters). ``lru``: w_nu = log(-log|lambda|), w_theta = log(angle) (angle in
  (0, pi)), gamma = sqrt(1 - |lambda|^2) stored as log gamma, B = B_mode / gamma; ``cdiag_norm``: the same
  gamma stored as itself.

Loss: the task's 0.5 mean((y_hat - y)^2) on a fixed batch of i.i.d. N(0, 1) inputs (batch 16, T = 300, the
paper's length: 4,800 targets; the full Hessian of <= 25 parameters by ``torch.autograd.functional.hessian``
takes seconds). The teacher's outputs come from a plain time loop in float64, independent of the students'
FFT path; at the optimum the student's outputs equal them to ~1e-13 and the loss is ~1e-27. There the
Hessian is the Gauss-Newton matrix J^T J / N: positive semi-definite, of rank at most 9 (the 4 poles, 4
numerator coefficients and D of a 4-state SISO transfer function); the rest is the null space of the
reparametrisation symmetries (state-space similarity for rnn, per-mode B/C rescaling for the diagonal ones).

``python -m trainers.analyses.hessian_opt`` prints the comparison.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ..cells.cdiag import DiagonalLTI
from ..cells.rnn import LinearRNN
from ..probes.spectrum import ipr, k90

CELLS = ("rnn", "blockdiag", "cdiag", "cdiag_norm", "lru")
HIDDEN = 4  # teacher state size: two complex-conjugate pairs
SEQ_LEN = 300
BATCH = 16
TOP = 3  # top eigenvectors whose localisation is reported


def teacher(nu: float = 0.99, seed: int = 0) -> dict[str, Tensor]:
    """The float64 teacher {A (4, 4), B (4, 1), C (1, 4), D (1, 1), lam (4,) complex, V (4, 4) complex}."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(1000):
        A0 = torch.randn(HIDDEN, HIDDEN, generator=g, dtype=torch.float64) / math.sqrt(HIDDEN)
        lam, V = torch.linalg.eig(A0)
        if bool((lam.angle().sin().abs() >= 0.2).all()):
            break
    else:  # pragma: no cover -- probability ~0
        raise RuntimeError("no A0 with two well-separated complex pairs in 1000 draws")
    lam = torch.polar(torch.full_like(lam.real, nu), lam.angle())
    A = (V @ torch.diag(lam) @ torch.linalg.inv(V)).real
    B = torch.randn(HIDDEN, 1, generator=g, dtype=torch.float64)
    C = torch.randn(1, HIDDEN, generator=g, dtype=torch.float64) / math.sqrt(HIDDEN)
    D = torch.randn(1, 1, generator=g, dtype=torch.float64)
    return {"A": A, "B": B, "C": C, "D": D, "lam": lam, "V": V}


def teacher_outputs(t: dict[str, Tensor], x: Tensor) -> Tensor:
    """y_t = C h_t + D x_t, h_t = A h_{t-1} + B x_t, h_0 = 0, by a plain loop (the independent reference)."""
    h = torch.zeros(x.shape[0], HIDDEN, dtype=torch.float64)
    ys = []
    for k in range(x.shape[1]):
        h = h @ t["A"].T + x[:, k] @ t["B"].T
        ys.append(h @ t["C"].T + x[:, k] @ t["D"].T)
    return torch.stack(ys, 1)


def student(cell: str, t: dict[str, Tensor]) -> nn.Module:
    """The ``cell`` student with parameters set so that it computes exactly the teacher's map."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r} for the Hessian at optimality; valid: {', '.join(CELLS)}")
    keep = torch.nonzero(t["lam"].imag > 0).flatten()  # one eigenvalue of each conjugate pair
    lam, V = t["lam"][keep], t["V"][:, keep]
    if cell in ("rnn", "blockdiag"):
        bs = HIDDEN if cell == "rnn" else 2
        m = LinearRNN(1, HIDDEN, 1, block_size=bs).double()
        A, B, C = t["A"], t["B"], t["C"]
        if cell == "blockdiag":  # real modal form: A [Re v, Im v] = [Re v, Im v] [[a, b], [-b, a]]
            P = torch.stack([V[:, 0].real, V[:, 0].imag, V[:, 1].real, V[:, 1].imag], 1)
            Pinv = torch.linalg.inv(P)
            A, B, C = Pinv @ A @ P, Pinv @ B, C @ P
            A = torch.stack([A[:2, :2], A[2:, 2:]])
        with torch.no_grad():
            m.A.copy_(A.reshape(m.A.shape))
            m.B.copy_(B)
            m.C.copy_(C)
            m.D.copy_(t["D"])
        return m
    B_mode = (torch.linalg.inv(t["V"]) @ t["B"].to(torch.complex128))[keep]  # (2, 1)
    C_mode = 2 * (t["C"].to(torch.complex128) @ V)  # (1, 2): a pair contributes 2 Re(c b lambda^k)
    exp = cell == "lru"
    m = DiagonalLTI(1, 2, 1, parametrisation="exp" if exp else "real_imag", normalise=cell != "cdiag").double()
    with torch.no_grad():
        if exp:
            m.lam_a.copy_(torch.log(-torch.log(lam.abs())))
            m.lam_b.copy_(torch.log(lam.angle()))
        else:
            m.lam_a.copy_(lam.real)
            m.lam_b.copy_(lam.imag)
        if cell != "cdiag":
            gamma = torch.sqrt(1 - lam.abs() ** 2)
            m.gamma.copy_(torch.log(gamma) if exp else gamma)
            B_mode = B_mode / gamma[:, None]
        m.B_re.copy_(B_mode.real)
        m.B_im.copy_(B_mode.imag)
        m.C_re.copy_(C_mode.real)
        m.C_im.copy_(C_mode.imag)
        m.D.copy_(t["D"])
    return m


def coordinate_names(model: nn.Module) -> list[str]:
    """One name per coordinate of the flat parameter vector, e.g. ``A[0,3]``, ``lam_a[1]``."""
    out = []
    for name, p in model.named_parameters():
        for idx in torch.cartesian_prod(*[torch.arange(s) for s in p.shape]).reshape(p.numel(), -1).tolist():
            out.append(f"{name}[{','.join(map(str, idx))}]")
    return out


def hessian_at_optimum(cell: str, nu: float = 0.99, seed: int = 0, seq_len: int = SEQ_LEN,
                       batch: int = BATCH) -> dict:
    """The full Hessian spectrum at the teacher, for the ``cell`` student (everything in float64).

    Returns {"cell", "eigenvalues" (ascending list), "top_ipr", "top_k90" (of the TOP top eigenvectors,
    index 0 = top), "top_mass" ({parameter tensor: share of the top eigenvector's squared mass}),
    "top_coordinates" (the coordinates holding 90% of the top eigenvector's mass, largest first),
    "n_params", "loss", "grad_norm", "max_output_error" (max |student - teacher| on the batch),
    "teacher_eigenvalues" (complex, as [re, im] pairs)}.
    """
    t = teacher(nu, seed)
    model = student(cell, t)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, seq_len, 1, generator=g, dtype=torch.float64)
    y = teacher_outputs(t, x)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    theta0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss_of(theta: Tensor) -> Tensor:
        params, i = {}, 0
        for n, s in zip(names, shapes):
            params[n] = theta[i: i + s.numel()].reshape(s)
            i += s.numel()
        return 0.5 * ((functional_call(model, params, (x,)) - y) ** 2).mean()

    with torch.no_grad():
        err = (model(x) - y).abs().max().item()
    th = theta0.clone().requires_grad_(True)
    loss = loss_of(th)
    grad = torch.autograd.grad(loss, th)[0]
    H = torch.autograd.functional.hessian(loss_of, theta0, vectorize=True)
    H = 0.5 * (H + H.T)  # symmetric to round-off already; eigh reads one triangle
    evals, evecs = torch.linalg.eigh(H)
    top = [evecs[:, -1 - i] for i in range(TOP)]
    coords = coordinate_names(model)
    v2 = top[0] ** 2 / (top[0] ** 2).sum()
    mass, i = {}, 0
    for n, s in zip(names, shapes):
        mass[n] = v2[i: i + s.numel()].sum().item()
        i += s.numel()
    order = v2.argsort(descending=True)[: k90(top[0])].tolist()
    return {"cell": cell, "eigenvalues": evals.tolist(), "top_ipr": [ipr(v) for v in top],
            "top_k90": [k90(v) for v in top], "top_mass": mass, "top_coordinates": [coords[j] for j in order],
            "n_params": theta0.numel(), "loss": loss.item(), "grad_norm": grad.norm().item(),
            "max_output_error": err, "teacher_eigenvalues": [[z.real.item(), z.imag.item()] for z in t["lam"]]}


def hessian_opt_rows(result: dict, step: int = 0) -> dict[str, dict[str, list]]:
    """``hessian`` table rows of a ``hessian_at_optimum`` result: ``eig`` (the full spectrum, idx
    ascending), ``ipr`` and ``k90`` of the top eigenvectors (idx 0 = top); weight null."""
    cols: dict[str, list] = {"step": [], "stat": [], "idx": [], "value": [], "weight": []}
    for stat, values in (("eig", result["eigenvalues"]), ("ipr", result["top_ipr"]), ("k90", result["top_k90"])):
        cols["step"] += [step] * len(values)
        cols["stat"] += [stat] * len(values)
        cols["idx"] += list(range(len(values)))
        cols["value"] += [float(v) for v in values]
        cols["weight"] += [None] * len(values)
    return {"hessian": cols}


def main() -> None:
    print("| cell | params | top eigenvalues | top IPR | top k90 | top-1 mass by tensor | max |y - y*| | loss |")
    print("| --- | ---: | --- | --- | --- | --- | ---: | ---: |")
    for cell in CELLS:
        r = hessian_at_optimum(cell)
        top = ", ".join(f"{v:.3g}" for v in r["eigenvalues"][::-1][:TOP])
        mass = ", ".join(f"{k} {v:.2f}" for k, v in r["top_mass"].items() if v >= 0.01)
        print(f"| {cell} | {r['n_params']} | {top} | {', '.join(f'{v:.3f}' for v in r['top_ipr'])} | "
              f"{', '.join(map(str, r['top_k90']))} | {mass} | {r['max_output_error']:.1e} | {r['loss']:.1e} |")


if __name__ == "__main__":
    main()


def run(cfg, writer) -> dict:
    """Hessian at the optimum of a student set to a small teacher (Zucchet & Orvieto Fig. 4).

    The analysis trial (``analyses=hessian_opt:<cell>``): the Hessian at the optimum of ``cfg.cell``."""
    result = hessian_at_optimum(cfg.cell, nu=cfg.nu, seed=cfg.seed)
    for table, columns in hessian_opt_rows(result).items():
        writer.extend(table, columns)
    return dict(status="completed", steps_done=0, final_loss=result.get("loss"), device="cpu")
