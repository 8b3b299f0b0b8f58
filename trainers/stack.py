"""A depth-L model built from one registered cell, with the same uniform interface as a cell.

depth 1 is the paper's model: the bare cell, d_in -> hidden -> d_out.
depth L > 1 is a residual stack: an input projection d_in -> d_model, L blocks, and an output projection
d_model -> d_out. A block is u <- u + cell(norm(u)) (``block="linear"``) or, as in the deep SSMs of
Zucchet & Orvieto Fig. 5, u <- u + GLU(GELU(cell(norm(u)))) (``block="glu"``); cell maps
d_model -> hidden -> d_model and norm is a LayerNorm or the identity.
``block="plain"`` is the stacking of STAR (Turkoglu et al.) and of classic deep RNNs: no residual stream,
layer l + 1 reads layer l's hidden state (the inner layers' readouts are the identity) and the top layer's
readout is the output; it needs cells with a ``readout`` (the nonlinear ones).
The stepwise state is one tensor: the layers' states stacked on a leading axis.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from .cells import Cell, CellSpec, build_cell


BLOCKS = ("linear", "glu", "plain")


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
                 layer_norm: bool = False, r_min: float = 0.0, r_max: float = 1.0, block: str = "linear",
                 init: str = "default", t_max: int = 0):
        super().__init__(d_in, hidden, d_out)
        if depth < 1:
            raise ValueError(f"depth={depth} must be >= 1")
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; valid: {', '.join(BLOCKS)}")
        self.depth = depth

        def spec(i: int, o: int) -> CellSpec:
            return CellSpec(i, hidden, o, r_min=r_min, r_max=r_max, init=init, t_max=t_max)

        if depth == 1 or block == "plain":
            self.layers = nn.ModuleList(
                [build_cell(cell, spec(d_in if l == 0 else hidden, d_out if l == depth - 1 else hidden))
                 for l in range(depth)])
            for layer in self.layers[:-1]:
                if not isinstance(getattr(layer, "readout", None), nn.Module):
                    raise ValueError(f"block='plain' needs a cell with a readout (a nonlinear cell), not {cell!r}")
                layer.readout = nn.Identity()  # y_t = h_t feeds the next layer
            self.encoder = self.decoder = None
            self.norms = nn.ModuleList([nn.Identity() for _ in range(depth)])
            self.mixers = nn.ModuleList([nn.Identity() for _ in range(depth)])
        else:
            self.encoder = nn.Linear(d_in, d_model)
            self.layers = nn.ModuleList([build_cell(cell, spec(d_model, d_model)) for _ in range(depth)])
            self.norms = nn.ModuleList(
                [nn.LayerNorm(d_model) if layer_norm else nn.Identity() for _ in range(depth)])
            self.mixers = nn.ModuleList(
                [GLUBlock(d_model) if block == "glu" else nn.Identity() for _ in range(depth)])
            self.decoder = nn.Linear(d_model, d_out)

    def _run(self, x: Tensor, pure: bool) -> Tensor:
        run = (lambda layer, v: layer.forward_pure(v)) if pure else (lambda layer, v: layer(v))
        if self.encoder is None:
            for layer in self.layers:
                x = run(layer, x)
            return x
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
        with parametrize.cached():  # parametrised weights (ornn's W) once per call, not once per time step
            for x_t in x.unbind(1):
                state, y = self.step(state, x_t)
                states.append(state)
                ys.append(y)
        return torch.stack(ys, dim=1), states

    def init_state(self, batch: int) -> Tensor:
        return torch.stack([layer.init_state(batch) for layer in self.layers])

    def step(self, state: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.encoder is None:
            new = []
            for l, layer in enumerate(self.layers):
                s, x = layer.step(state[l], x)
                new.append(s)
            return torch.stack(new), x
        u, new = self.encoder(x), []
        for l, (norm, layer, mix) in enumerate(zip(self.norms, self.layers, self.mixers)):
            s, y = layer.step(state[l], norm(u))
            u = u + mix(y)
            new.append(s)
        return torch.stack(new), self.decoder(u)

    def constrain(self) -> None:
        for layer in self.layers:
            layer.constrain()

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
