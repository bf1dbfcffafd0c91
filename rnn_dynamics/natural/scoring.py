"""How a natural task scores parameters on a split: the metric's unit over the whole split.

A split is laid out in `config.eval_batch_size` lanes of `segment_length` steps, each lane
from the zero state, padded to whole chunks of `chunk_size` segments, and its chained
segments are scored chunk by chunk by the trainer's own `evaluate` program: the same
numbers whether a fit scores its epochs (`SplitScores`, each split's layout built once)
or trained parameters are scored afterwards (`score`, e.g. on a split a table truncated).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rnn_dynamics import rnn, runs
from rnn_dynamics.algorithms import HParams
from rnn_dynamics.natural.segments import Segments, pad_segments, split_chunks
from rnn_dynamics.natural.task import NaturalTask
from rnn_dynamics.natural.trainer import Trainer, make_trainer

__all__ = ["SPLITS", "SplitScores", "evaluate_program", "score"]

SPLITS = ("train", "valid", "test")


def evaluate_program(trainer: Trainer) -> Callable:
  """The trainer's `evaluate`, vmapped over the runs axis (the segments are shared)."""
  return jax.jit(jax.vmap(trainer.evaluate, in_axes=(0, 0, 0, None)))


class SplitScores:
  """A fit's scores of every split (`SPLITS`) after an epoch: each split laid out once;
  the training split on at most `train_eval_limit` songs / symbols (0: all)."""

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    task: NaturalTask,
    data: Mapping[str, Any],
    trainer: Trainer,
    sharding,
  ):
    self.task, self.sharding = task, sharding
    self.k, self.n_hidden = int(config.chunk_size), int(config.n_hidden)
    self.evaluate = evaluate_program(trainer)
    train_eval = data["train"]
    limit = int(config.get("train_eval_limit", 0) or 0)
    if limit:
      train_eval = train_eval[:limit]
    splits = (("train", train_eval), ("valid", data["valid"]), ("test", data["test"]))
    self.layouts = {s: _eval_layout(config, task, d) for s, d in splits}

  def __call__(self, params: rnn.Params, hp: HParams) -> dict[str, np.ndarray]:
    """Split → `[runs]` score of the stacked `params` (on the devices)."""
    return {split: self._score(params, hp, split) for split in SPLITS}

  def _score(self, params, hp: HParams, split: str) -> np.ndarray:
    segs = self.layouts[split]
    args = (self.k, self.task, self.n_hidden, self.sharding)
    scores, _ = _score_segments(self.evaluate, params, hp, segs, *args)
    return scores


def score(
  config: ml_collections.ConfigDict,
  task: NaturalTask,
  params: Mapping[str, np.ndarray],
  split: Any,
) -> tuple[np.ndarray, int]:
  """`[runs]` score of stacked parameters on one whole split, as `fit` scores an epoch,
  and the number of scored steps (frames, or symbols with a target).

  The split is laid out in `config.eval_batch_size` lanes of `segment_length` steps, each
  lane from the zero state, and scored by the trainer's own `evaluate` program; `params`
  are `FitResult.best_params` (or a workdir's `best_params.npz`). This is how a table
  trained with a truncated evaluation split (`max_eval_symbols`) is scored in full.
  """
  n_real = len(next(iter(params.values())))
  n_runs, sharding = runs.pad_to(n_real), runs.runs_sharding()
  stacked = rnn.Params(**{k: jnp.asarray(v) for k, v in params.items()})
  stacked = runs.to_devices(runs.pad_runs(stacked, n_runs), sharding)
  evaluate = evaluate_program(make_trainer(config, task))
  hp = runs.to_devices(np.zeros(n_runs, np.float32), sharding)  # evaluate ignores it
  segs, k = _eval_layout(config, task, split), int(config.chunk_size)
  scores, steps = _score_segments(
    evaluate, stacked, hp, segs, k, task, int(config.n_hidden), sharding
  )
  return scores[:n_real], steps


def _eval_layout(config, task: NaturalTask, split: Any) -> Segments:
  """A split as it is scored: `eval_batch_size` lanes, padded to whole chunks."""
  lanes, seg_len = int(config.eval_batch_size), int(config.segment_length)
  return pad_segments(task.segments(split, lanes, seg_len), int(config.chunk_size))


def _score_segments(evaluate, params, hp, segments: Segments, k, task, n_hidden, sharding):
  """`[runs]` score of the chained segments, chunk by chunk (the metric's unit), and the
  scored steps."""
  n_runs, lanes = len(jax.tree.leaves(params)[0]), segments.mask.shape[2]
  h = runs.to_devices(np.zeros((n_runs, lanes, n_hidden), np.float32), sharding)
  total, count = np.zeros(n_runs), np.zeros(n_runs)
  for seg in split_chunks(segments, k):
    h, nll, n = evaluate(params, h, hp, seg)
    total += runs.host(nll).astype(np.float64)
    count += runs.host(n).astype(np.float64)
  return total / np.maximum(count, 1) * task.score_scale, int(count[0])
