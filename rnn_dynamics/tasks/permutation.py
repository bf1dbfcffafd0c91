"""The random permutation problem: recall the first symbol of a long random stream.

Symbols `s_0 .. s_T` with `s_0 = s_T ∈ {0, 1}` and every other symbol uniform in
`[2, n_symbols)`. The model reads `s_0 .. s_{T-1}` and predicts `s_T` after the last
step: framed as next-symbol prediction, only this last symbol is predictable, and only
from the first input.

References:
  Hochreiter & Schmidhuber (1997), Long short-term memory, §5.2 (experiment 2a,
  noise-free sequences with long time lags).
  Pascanu, Mikolov & Bengio (2013), supplementary material, "Random permutation
  problem"; docs/reference.md §3.
  Original generator: `pascanur/trainingRNNs`, `permutation.py`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from rnn_dynamics.tasks.base import Batch, Task, float_dtype

__all__ = ["N_SYMBOLS", "permutation", "sample_permutation"]

N_SYMBOLS = 100
"""Alphabet size of the published task (inputs and classes)."""


def sample_permutation(
  key: jax.Array,
  batch_size: int,
  length: jax.typing.ArrayLike,
  buffer: int,
  *,
  n_symbols: int = N_SYMBOLS,
) -> Batch:
  """Draws a padded batch of the random permutation problem.

  The paper's text numbers the symbols from 1 ({1, 2} and [3, 100]); these are the
  original code's 0-based ids {0, 1} and [2, 100).

  Args:
    key: PRNG key.
    batch_size: number of sequences B (static).
    length: nominal length T (number of input steps), may be traced.
    buffer: padded number of time steps (static), at least T.
    n_symbols: alphabet size (static), at least 3.

  Returns:
    `Batch` with inputs `[buffer, B, n_symbols]` one-hot float32 (`s_0 .. s_{T-1}`,
    zero on padding), targets `[B]` int32 in {0, 1} (`s_T = s_0`), mask `[buffer, B]`
    (first T steps).

  Raises:
    ValueError: for a concrete `length` outside `[1, buffer]`.

  References:
    `pascanur/trainingRNNs`, `permutation.py`, `generate`.
  """
  if isinstance(length, (int, np.integer)) and not 1 <= length <= buffer:
    raise ValueError(f"permutation needs 1 <= length <= buffer, got {length=}, {buffer=}")
  length = jnp.asarray(length, jnp.int32)
  k_first, k_noise = jax.random.split(key)
  first = jax.random.randint(k_first, (batch_size,), 0, 2)
  symbols = jax.random.randint(k_noise, (buffer, batch_size), 2, n_symbols)
  t = jnp.arange(buffer, dtype=jnp.int32)[:, None]  # [buffer, 1]
  symbols = jnp.where(t == 0, first[None, :], symbols)
  mask = jnp.broadcast_to(t < length, (buffer, batch_size))
  inputs = jnp.where(mask[..., None], jax.nn.one_hot(symbols, n_symbols, dtype=float_dtype()), 0.0)
  return Batch(inputs=inputs, targets=first.astype(jnp.int32), mask=mask)


def permutation(n_symbols: int = N_SYMBOLS) -> Task:
  """The random permutation task (100 symbols in the paper).

  Args:
    n_symbols: alphabet size, at least 3.

  Returns:
    A `Task` with `n_symbols` inputs and classes and the `last_softmax` head.

  References:
    Pascanu et al. (2013), supplementary, "Random permutation problem".
  """
  if n_symbols < 3:
    raise ValueError(f"permutation needs n_symbols >= 3, got {n_symbols}")
  return Task(
    name="permutation" if n_symbols == N_SYMBOLS else f"permutation_{n_symbols}",
    n_in=n_symbols,
    n_out=n_symbols,
    head="last_softmax",
    sample=functools.partial(sample_permutation, n_symbols=n_symbols),
    buffer_length=lambda length: int(length),
  )
