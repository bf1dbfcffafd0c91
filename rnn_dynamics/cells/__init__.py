"""Recurrent networks the synthetic trainer can run, by name (`get_model`).

`rnn` is the paper's network with its hand-written BPTT (`cells.paper`), the default of
every experiment. Every other entry is a `Cell` (`cells.base`) trained by autodiff
through the same scan (`cells.autodiff`), with Ω computed from the VJP of its transition
(`regularizers.omega_of_transition`): `tanh`, `irnn` and `orthogonal` are plain cells
(`cells.vanilla`), `lstm` and `gru` Flax's cells through one adapter
(`cells.flax_adapter`), `exprnn` the orthogonal expRNN (`cells.exprnn`) and `lru` the
Linear Recurrent Unit (`cells.lru`); docs/reference.md §6 gives each one's source and
initialisation.

Adding a cell: write its `Cell` (init, initial carry, step, features) in a module here,
register it in `_CELLS`, cite its source in docs/reference.md §6; the trainer, the
sweep, checkpoints, traces and Ω need nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

from rnn_dynamics.cells import autodiff, exprnn, flax_adapter, lru, paper, vanilla
from rnn_dynamics.cells.base import Cell, CellParams, Model, OmegaSettings, Update

__all__ = [
  "CELLS",
  "Cell",
  "CellParams",
  "Model",
  "OmegaSettings",
  "Update",
  "get_cell",
  "get_model",
]

_CELLS: dict[str, Callable[[], Cell]] = {
  "tanh": vanilla.tanh,
  "irnn": vanilla.irnn,
  "orthogonal": vanilla.orthogonal,
  "lstm": flax_adapter.lstm,
  "gru": flax_adapter.gru,
  "exprnn": exprnn.exprnn,
  "lru": lru.lru,
}
CELLS = ("rnn", *_CELLS)


def get_cell(name: str) -> Cell:
  """The `Cell` registered as `name` (not `rnn`, which is the hand-written model)."""
  if name not in _CELLS:
    raise ValueError(f"unknown cell {name!r}; choose one of {tuple(_CELLS)}")
  return _CELLS[name]()


def get_model(name: str) -> Model:
  """The `Model` the trainer runs for `name`, one of `CELLS`."""
  if name == "rnn":
    return paper.model()
  if name not in _CELLS:
    raise ValueError(f"unknown cell {name!r}; choose one of {CELLS}")
  return autodiff.model(get_cell(name))
