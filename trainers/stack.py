"""A depth-L model built from one registered cell, with the same uniform interface as a cell.

depth 1 is the paper's model: the bare cell, d_in -> hidden -> d_out.
depth L > 1 is a residual stack: an input projection d_in -> d_model, L blocks, and an output projection
d_model -> d_out. A block is u <- u + cell(norm(u)) (``block="linear"``) or, as in the deep SSMs of
Zucchet & Orvieto Fig. 5, u <- u + GLU(GELU(cell(norm(u)))) (``block="glu"``); cell maps
d_model -> hidden -> d_model and norm is a LayerNorm or the identity.
The stepwise state is one tensor: the layers' states stacked on a leading axis.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .cells import Cell, CellSpec, build_cell


BLOCKS = ("linear", "glu")


class GLUBlock(nn.Module):
    """GELU then a gated linear unit: out1(v) * sigmoid(out2(v)) with v = gelu(u)."""

    def __init__(self, d: int):
        super().__init__()
        self.out1, self.out2 = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, u: Tensor) -> Tensor:
        v = torch.nn.functional.gelu(u)
        return self.out1(v) * torch.sigmoid(self.out2(v))


class Stack(Cell):
    def __init__(self, cell: str, d_in: int, hidden: int, d_out: int, depth: int = 1, d_model: int = 16,
                 layer_norm: bool = False, r_min: float = 0.0, r_max: float = 1.0, block: str = "linear"):
        super().__init__(d_in, hidden, d_out)
        if depth < 1:
            raise ValueError(f"depth={depth} must be >= 1")
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; valid: {', '.join(BLOCKS)}")
        self.depth = depth
        if depth == 1:
            self.layers = nn.ModuleList([build_cell(cell, CellSpec(d_in, hidden, d_out, r_min=r_min, r_max=r_max))])
            self.encoder = self.decoder = None
            self.norms = nn.ModuleList([nn.Identity()])
            self.mixers = nn.ModuleList([nn.Identity()])
        else:
            self.encoder = nn.Linear(d_in, d_model)
            self.layers = nn.ModuleList(
                [build_cell(cell, CellSpec(d_model, hidden, d_model, r_min=r_min, r_max=r_max)) for _ in range(depth)])
            self.norms = nn.ModuleList(
                [nn.LayerNorm(d_model) if layer_norm else nn.Identity() for _ in range(depth)])
            self.mixers = nn.ModuleList(
                [GLUBlock(d_model) if block == "glu" else nn.Identity() for _ in range(depth)])
            self.decoder = nn.Linear(d_model, d_out)

    def _run(self, x: Tensor, pure: bool) -> Tensor:
        run = (lambda layer, v: layer.forward_pure(v)) if pure else (lambda layer, v: layer(v))
        if self.encoder is None:
            return run(self.layers[0], x)
        u = self.encoder(x)
        for norm, layer, mix in zip(self.norms, self.layers, self.mixers):
            u = u + mix(run(layer, norm(u)))
        return self.decoder(u)

    def forward(self, x: Tensor) -> Tensor:
        return self._run(x, pure=False)

    def forward_pure(self, x: Tensor) -> Tensor:
        return self._run(x, pure=True)

    def unroll(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The stepwise form, returning every stacked state S_t (depth, batch, state) with its graph.
        S_t carries only the route into step t+1 (each layer's output at t comes from the cell's own state
        tensor): the lattice probe hooks the cells to differentiate through both routes."""
        state, ys, states = self.init_state(x.shape[0]), [], []
        for t in range(x.shape[1]):
            state, y = self.step(state, x[:, t])
            states.append(state)
            ys.append(y)
        return torch.stack(ys, dim=1), states

    def init_state(self, batch: int) -> Tensor:
        return torch.stack([layer.init_state(batch) for layer in self.layers])

    def step(self, state: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.encoder is None:
            s, y = self.layers[0].step(state[0], x)
            return s[None], y
        u, new = self.encoder(x), []
        for l, (norm, layer, mix) in enumerate(zip(self.norms, self.layers, self.mixers)):
            s, y = layer.step(state[l], norm(u))
            u = u + mix(y)
            new.append(s)
        return torch.stack(new), self.decoder(u)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Groups named ``layer<l>.<group>`` (1-based l), plus ``encoder``, ``decoder``, ``norm``, ``mixer``."""
        groups: dict[str, list[nn.Parameter]] = {}
        for l, layer in enumerate(self.layers, start=1):
            for g, ps in layer.param_groups().items():
                groups[f"layer{l}.{g}"] = ps
        for name, mod in (("encoder", self.encoder), ("decoder", self.decoder), ("norm", self.norms),
                          ("mixer", self.mixers)):
            ps = list(mod.parameters()) if mod is not None else []
            if ps:
                groups[name] = ps
        return groups
