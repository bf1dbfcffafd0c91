"""The generalization test: trained models on fresh sequences at fixed lengths.

Both experiments that test beyond the training lengths use it: `experiments/generalization.py`
(one model for many lengths, docs/reference.md §4 "One model for many lengths") and
`experiments/pathological.py` (docs/reference.md §4 "The other pathological tasks"). The
test sequences at a length come from one key per (config seed, length), apart from every
training key, so all models of a config see the same sequences (a paired comparison).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping

import jax
import ml_collections
import numpy as np

from rnn_dynamics import rnn
from rnn_dynamics.synthetic import train
from rnn_dynamics.tasks import get_task

__all__ = ["STREAM", "errors_at_lengths", "eval_block", "model_errors", "test_key"]

STREAM = 1_000_003
"""Tag folded into the config's base key for the test sequences; the training keys fold in
the seed index (0, 1, ...), so the two never meet."""


def test_key(seed: int, length: int) -> jax.Array:
  """The key of the test sequences at `length` for a config with `seed`."""
  return jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), STREAM), length)


def eval_block(
  task,
  length: int,
  n_hidden: int,
  n_sequences: int,
  max_block: int,
  *,
  memory_mb: float | None = None,
  block_steps: int | None = None,
) -> int:
  """Sequences per evaluation block at `length`: the largest divisor of `n_sequences` up
  to `max_block` whose activations (inputs, states, σ', outputs) fit in `memory_mb`, and
  with `sequences × length ≤ block_steps` (each bound only where given)."""
  fit = min(max_block, n_sequences)
  if memory_mb is not None:
    per_sequence = 4 * task.buffer_length(length) * (task.n_in + 3 * n_hidden + 2 * task.n_out)
    fit = min(fit, int(memory_mb * 2**20 // per_sequence))
  if block_steps is not None:
    fit = min(fit, block_steps // length)
  fit = max(1, fit)
  return max(d for d in range(1, fit + 1) if n_sequences % d == 0)


def model_errors(
  config: ml_collections.ConfigDict,
  params: rnn.Params | Mapping[str, np.ndarray],
  hparams: train.HParams,
  length: int,
  n_sequences: int,
  eval_batch: int,
  *,
  vmapped: bool = True,
) -> np.ndarray:
  """Test error of each model (`[models, ...]` params and hparams) at `length`.

  Args:
    config: the models' training config (task, seed, ...).
    params: the models' parameters, stacked on a leading axis.
    hparams: their hyper-parameters, stacked likewise (only the init is used).
    length: the evaluation length (for memorization: the gap).
    n_sequences: fresh sequences per model, the same for every model (`test_key`).
    eval_batch: sequences per block (`eval_block`).
    vmapped: evaluate all models in one vmapped program (True), or one model at a time
      (one compiled program per length, reused); the two may round differently in the
      last bit, and each experiment keeps the one its published results were made with.

  Returns:
    The errors (share of the sequences wrong), float64, one per model.
  """
  ecfg = config.copy_and_resolve_references()
  ecfg.eval_batch = int(eval_batch)
  evaluate = train.make_train(ecfg).evaluate
  key = test_key(int(config.seed), int(length))
  if not isinstance(params, rnn.Params):
    params = rnn.Params(**params)
  if vmapped:
    per_model = functools.partial(evaluate, key=key, n_sequences=n_sequences, length=length)
    return np.asarray(jax.jit(jax.vmap(per_model))(params, hparams), dtype=np.float64)
  one = jax.jit(evaluate, static_argnums=3, static_argnames="length")
  models = len(jax.tree.leaves(params)[0])
  at = lambda tree, i: jax.tree.map(lambda v: v[i], tree)
  return np.asarray(
    [
      float(one(at(params, i), at(hparams, i), key, n_sequences, length=length))
      for i in range(models)
    ],
    dtype=np.float64,
  )


def errors_at_lengths(
  config: ml_collections.ConfigDict,
  params: rnn.Params | Mapping[str, np.ndarray],
  hparams: train.HParams,
  lengths: Iterable[int],
  n_sequences: int,
  max_block: int,
  *,
  vmapped: bool,
  memory_mb: float | None = None,
  block_steps: int | None = None,
) -> Iterator[tuple[int, np.ndarray, int]]:
  """`(length, errors, block)` for each length in turn: `model_errors` of every model on
  `n_sequences` fresh sequences, evaluated `block` sequences at a time (`eval_block`), so
  a caller can store each length's rows before the next, longer one starts."""
  task = get_task(config.task)
  for length in map(int, lengths):
    block = eval_block(
      task,
      length,
      int(config.n_hidden),
      n_sequences,
      int(max_block),
      memory_mb=memory_mb,
      block_steps=block_steps,
    )
    errors = model_errors(config, params, hparams, length, n_sequences, block, vmapped=vmapped)
    yield length, errors, block
