"""Cell registry: name -> factory(CellSpec) -> Cell. One file per cell; add yours with one line here."""
from __future__ import annotations

from typing import Callable

from . import blockdiag, cdiag, gru, lru, lstm, lstmf, rnn, star, vrnn
from . import ornn, slstm
from .base import Cell, LTICell
from .spec import CellSpec
from ..registry import lookup

CELLS: dict[str, Callable[[CellSpec], Cell]] = {
    "rnn": rnn.build,
    "blockdiag": blockdiag.build,
    "cdiag": cdiag.build,
    "cdiag_norm": cdiag.build_norm,
    "cdiag_exp": cdiag.build_exp,
    "lru": lru.build,
    "gru": gru.build,
    "lstm": lstm.build,
    "vrnn": vrnn.build,
    "lstmf": lstmf.build,
    "star": star.build,
    "slstm": slstm.build,
    "ornn": ornn.build,
}


def build_cell(name: str, spec: CellSpec) -> Cell:
    """Build a registered cell and apply ``spec.init`` (an init the cell does not support is an error)."""
    cell = lookup(CELLS, "cell", name)(spec)
    if spec.init not in cell.INITS:
        raise ValueError(f"cell {name!r} does not support init={spec.init!r}; valid: {', '.join(cell.INITS)}")
    cell.init_weights(spec.init, spec.t_max)
    return cell


def supported_inits(name: str) -> tuple[str, ...]:
    """The inits cell ``name`` supports (its ``INITS``), read off a tiny instance."""
    return lookup(CELLS, "cell", name)(CellSpec(1, 4, 1, t_max=4)).INITS


__all__ = ["CELLS", "Cell", "CellSpec", "LTICell", "build_cell", "supported_inits"]
