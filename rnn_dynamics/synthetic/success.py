"""The paper's success test of a group's runs, on the host-selected runs only.

After every chunk each run the program holds takes a cheap screen (error on
`screen_size` fresh sequences, in the compiled chunk); the runs that pass it are
confirmed with the paper's test (`eval_size` fresh sequences, error < `success_error`,
counted as integer mistakes: `train.success_limit`), gathered into a batch padded to a
power of two so that only a few shapes are ever compiled. The test counts mistakes per
nominal length, so each run's last test also names its worst length (mixed lengths).
Once every run is decided, the runs still unsolved take the test once more, for the table.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, §4.1.1 (success criterion).
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rnn_dynamics import runs
from rnn_dynamics.synthetic.record import Bookkeeping
from rnn_dynamics.synthetic.resident import GroupRuns, Resident

__all__ = ["SuccessTest"]


class SuccessTest:
  """The full test (`full_eval`: `[runs]` params, hparams and keys → per-length mistakes
  and sequences) of a group whose bookkeeping is `book`, where every test is recorded.

  `screen_limit` and `full_limit` are the most mistakes that pass the screen and the test;
  `min_length` is the first nominal length; `while_training` False: no run is tested
  (nor so frozen) before every run is decided (the config's `stop_on_success`).
  """

  def __init__(
    self,
    full_eval: Callable,
    book: Bookkeeping,
    *,
    screen_limit: int,
    full_limit: int,
    min_length: int,
    while_training: bool = True,
  ):
    self.full_eval, self.book = full_eval, book
    self.screen_limit, self.full_limit, self.min_length = screen_limit, full_limit, min_length
    self.while_training = while_training

  def confirm(self, resident: Resident, screen: np.ndarray) -> None:
    """Confirms the screen passes (`screen`: mistakes per program row) of the program's
    live runs with the full test; the runs that pass are marked solved in its flags."""
    if not self.while_training:
      return
    flags, slots = resident.flags, resident.slots
    candidates = np.flatnonzero(slots.real & ~flags["done"] & (screen <= self.screen_limit))
    if not candidates.size:
      return
    on_host = jax.tree.map(runs.host, (resident.state.params, resident.hparams, resident.state.key))
    totals = self.test(*on_host, candidates, slots.index[candidates])
    passed = candidates[totals <= self.full_limit]
    flags["solved"][passed] = True
    flags["solved_at"][passed] = flags["step"][passed]
    flags["done"][passed] = True

  def test_unsolved(self, group: GroupRuns, n_runs: int) -> None:
    """Tests the real runs (the first `n_runs`) of `group.full` (synced) not solved."""
    full = group.full
    unsolved = np.flatnonzero(~np.asarray(full.solved)[:n_runs])
    if unsolved.size:
      self.test(full.params, group.hparams_full, full.key, unsolved, unsolved)

  def test(self, params, hparams, keys, rows: np.ndarray, group_runs: np.ndarray) -> np.ndarray:
    """The test of `rows` of host arrays, recorded for the group's `group_runs`; returns
    each one's mistakes."""
    mistakes, counts = self._evaluate(params, hparams, keys, rows)
    for run, m, c in zip(group_runs, mistakes, counts, strict=True):
      self.book.record_test(run, m, c, self.min_length)
    return mistakes.sum(axis=1)

  def _evaluate(self, params, hparams, keys, idx: np.ndarray):
    """`(mistakes, sequences)`, `[len(idx), bins]` int arrays per nominal length, of the
    runs `idx` of host arrays, gathered into a batch padded to a power of two."""
    size = 1 << int(math.ceil(math.log2(max(len(idx), 1))))
    take = np.concatenate([idx, np.repeat(idx[-1:], size - len(idx))])
    pick = lambda tree: jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[take]), tree)
    mistakes, counts = self.full_eval(pick(params), pick(hparams), pick(keys))
    return np.asarray(mistakes)[: len(idx)], np.asarray(counts)[: len(idx)]
