"""The runs of an experiment: labels × hyper-parameters × paired PRNG keys."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Sequence, TypeVar

import jax
import numpy as np

from rnn_dynamics.runs.devices import stack

__all__ = ["Grid", "grid", "paired_keys"]

Cell = TypeVar("Cell")


def paired_keys(seed: int, seeds: Sequence[int]) -> jax.Array:
  """`[runs]` keys, `fold_in(PRNGKey(seed), s)` for each run's seed `s`: runs with the same
  seed share initial weights and data (paired comparisons across algorithms)."""
  return jax.vmap(lambda s: jax.random.fold_in(jax.random.PRNGKey(seed), s))(np.asarray(seeds))


@dataclasses.dataclass
class Grid:
  """Runs stacked along the runs axis.

  Attributes:
    labels: one dict per run, copied into its result row.
    hparams: the stacked hyper-parameters (leading axis = runs), or None.
    keys: `[runs]` paired PRNG keys.
    seeds: each run's seed.
  """

  labels: list[dict[str, Any]]
  hparams: Any
  keys: jax.Array
  seeds: list[int]

  def __len__(self) -> int:
    return len(self.labels)


def grid(
  cells: Iterable[Cell],
  seeds: int | Sequence[int],
  *,
  seed: int,
  label: Callable[[Cell, int], dict[str, Any]],
  hparams: Callable[[Cell], Any] | None = None,
) -> Grid:
  """Every cell × every seed (seeds innermost), with paired keys.

  Args:
    cells: what differs between runs of one seed (an algorithm, an init, a threshold…).
    seeds: a count (`range(seeds)`) or the seeds themselves.
    seed: the experiment's seed, from which every run key is folded.
    label: `label(cell, seed)`, a run's label dict (its key order is the results' order).
    hparams: `hparams(cell)`, a run's `HParams` (stacked into `Grid.hparams`), or None.
  """
  seeds = range(int(seeds)) if isinstance(seeds, int) else list(seeds)
  labels, hps, run_seeds = [], [], []
  for cell in cells:
    for s in seeds:
      labels.append(label(cell, s))
      if hparams is not None:
        hps.append(hparams(cell))
      run_seeds.append(int(s))
  return Grid(labels, stack(hps) if hps else None, paired_keys(seed, run_seeds), run_seeds)
