"""A natural-task table's columns (SGD, SGD-C, SGD-CR) and its runs (columns × seeds).

A column is an algorithm with its hyper-parameters (`Column`, `columns`); a table runs
every column with every seed, paired across columns (same initial weights, same data
order), as one stacked program (`RunTable`). Only the learning rate and α change during
training (per epoch), so each epoch's hyper-parameters are the run table's fixed ones
with those two (`RunTable.hparams`): the program never recompiles.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import jax.numpy as jnp
import ml_collections
import numpy as np

from rnn_dynamics import algorithms, rnn, runs
from rnn_dynamics.algorithms import HParams
from rnn_dynamics.natural.schedules import alpha_at

__all__ = ["ALGORITHMS", "Column", "RunTable", "columns"]

# The algorithms of the natural-task tables (no element-wise clipping there, §4.2).
ALGORITHMS = ("sgd", "sgd_c", "sgd_cr")


@dataclasses.dataclass(frozen=True)
class Column:
  """One algorithm of a table: SGD (clip = ∞, α = 0), SGD-C (α = 0) or SGD-CR."""

  algorithm: str
  lr: float
  clip: float
  alpha0: float

  @property
  def clipping(self) -> algorithms.RunClipping:
    """Its runs' clipping kind, threshold and guard, as the algorithm table says."""
    return algorithms.clipping_of(self.algorithm, self.clip)


def columns(
  names: Sequence[str], lr: Callable[[str], float], clip: float, alpha0: float
) -> list[Column]:
  """SGD / SGD+C / SGD+CR as hyper-parameters of one program (a table's columns), as the
  algorithm table (`rnn_dynamics.algorithms`) says.

  Args:
    names: names among `ALGORITHMS`.
    lr: the learning rate of an algorithm (Table 1 shares one, Table 2 has one each).
    clip: the clipping threshold of SGD+C and SGD+CR (SGD: none).
    alpha0: Ω's weight (or its 1/t schedule's start) for SGD+CR.
  """
  for name in names:
    algorithms.get(name, allowed=ALGORITHMS)
  return [
    Column(
      name,
      lr=float(lr(name)),
      clip=algorithms.threshold_of(name, clip),
      alpha0=algorithms.alpha_of(name, alpha0),
    )
    for name in names
  ]


class RunTable:
  """The runs of a table: `columns` × `config.seeds` seeds (seeds innermost, paired across
  columns), on a runs axis sharded over every device and padded to their count with
  copies of the last run (dropped from the results).

  Attributes:
    labels: per real run, its `algorithm`, `seed` and `col` (its column's index).
    n_real, n_runs: how many runs there are, and with the padding.
    keys: `[n_runs]` PRNG keys (a seed's runs share one).
    lr0: `[n_runs]` the first epoch's learning rates.
    sharding: the runs axis' sharding (`runs.runs_sharding`).
  """

  def __init__(self, cols: Sequence[Column], config: ml_collections.ConfigDict):
    alpha_at(1.0, 1, config.alpha_schedule)  # validates the name early
    grid = runs.grid(
      enumerate(cols),
      int(config.seeds),
      seed=int(config.seed),
      label=lambda col, s: dict(algorithm=col[1].algorithm, seed=s, col=col[0]),
    )
    self.labels, self.n_real = grid.labels, len(grid)
    self.n_runs = runs.pad_to(self.n_real)
    col_of = [cols[lab["col"]] for lab in self.labels]
    col_of += [col_of[-1]] * (self.n_runs - self.n_real)
    clip_of = [c.clipping for c in col_of]
    self._clip = np.asarray([c.clip for c in clip_of], np.float32)
    self._elementwise = np.asarray([c.elementwise for c in clip_of], np.bool_)
    self._guarded = np.asarray([c.guarded for c in clip_of], np.bool_)
    self._alpha0 = np.asarray([c.alpha0 for c in col_of], np.float32)
    self._alpha_schedule, self._init = config.alpha_schedule, config.init
    self.sharding = runs.runs_sharding()
    self.lr0 = np.asarray([c.lr for c in col_of], np.float64)
    self.keys = runs.pad_runs(grid.keys, self.n_runs)

  def public_labels(self) -> list[dict[str, Any]]:
    """Each real run's labels without the internal column index."""
    return [_public(label) for label in self.labels]

  def hparams(self, lr: np.ndarray, epoch: int) -> HParams:
    """An epoch's per-run hyper-parameters, on the devices: the learning rates `lr` and
    α of the schedule at `epoch`; the rest as the columns say."""
    hp = HParams(
      lr=jnp.asarray(lr, jnp.float32),
      clip=jnp.asarray(self._clip),
      alpha=jnp.asarray(alpha_at(self._alpha0, epoch, self._alpha_schedule), jnp.float32),
      init=jnp.full((self.n_runs,), rnn.init_id(self._init), jnp.int32),
      elementwise=jnp.asarray(self._elementwise),
      guarded=jnp.asarray(self._guarded),
    )
    return runs.to_devices(hp, self.sharding)


def _public(label: Mapping[str, Any]) -> dict[str, Any]:
  return {k: v for k, v in label.items() if k != "col"}
