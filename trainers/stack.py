"""A depth-L model built from one registered cell, with the same uniform interface as a cell.

depth 1 is the paper's model: the bare cell, d_in -> hidden -> d_out.
depth L > 1 is a residual stack: an input projection d_in -> d_model, L blocks u <- u + cell(norm(u)) with
cell d_model -> hidden -> d_model and norm a LayerNorm or the identity, and an output projection
d_model -> d_out. The stepwise state is one tensor: the layers' states stacked on a leading axis.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .cells import Cell, CellSpec, build_cell


class Stack(Cell):
    def __init__(self, cell: str, d_in: int, hidden: int, d_out: int, depth: int = 1, d_model: int = 16,
                 layer_norm: bool = False, r_min: float = 0.0):
        super().__init__(d_in, hidden, d_out)
        if depth < 1:
            raise ValueError(f"depth={depth} must be >= 1")
        self.depth = depth
        if depth == 1:
            self.layers = nn.ModuleList([build_cell(cell, CellSpec(d_in, hidden, d_out, r_min=r_min))])
            self.encoder = self.decoder = None
            self.norms = nn.ModuleList([nn.Identity()])
        else:
            self.encoder = nn.Linear(d_in, d_model)
            self.layers = nn.ModuleList(
                [build_cell(cell, CellSpec(d_model, hidden, d_model, r_min=r_min)) for _ in range(depth)])
            self.norms = nn.ModuleList(
                [nn.LayerNorm(d_model) if layer_norm else nn.Identity() for _ in range(depth)])
            self.decoder = nn.Linear(d_model, d_out)

    def forward(self, x: Tensor) -> Tensor:
        if self.encoder is None:
            return self.layers[0](x)
        u = self.encoder(x)
        for norm, layer in zip(self.norms, self.layers):
            u = u + layer(norm(u))
        return self.decoder(u)

    def init_state(self, batch: int) -> Tensor:
        return torch.stack([layer.init_state(batch) for layer in self.layers])

    def step(self, state: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.encoder is None:
            s, y = self.layers[0].step(state[0], x)
            return s[None], y
        u, new = self.encoder(x), []
        for l, (norm, layer) in enumerate(zip(self.norms, self.layers)):
            s, y = layer.step(state[l], norm(u))
            u = u + y
            new.append(s)
        return torch.stack(new), self.decoder(u)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Groups named ``layer<l>.<group>`` (1-based l), plus ``encoder``, ``decoder`` and ``norm``."""
        groups: dict[str, list[nn.Parameter]] = {}
        for l, layer in enumerate(self.layers, start=1):
            for g, ps in layer.param_groups().items():
                groups[f"layer{l}.{g}"] = ps
        for name, mod in (("encoder", self.encoder), ("decoder", self.decoder), ("norm", self.norms)):
            ps = list(mod.parameters()) if mod is not None else []
            if ps:
                groups[name] = ps
        return groups
