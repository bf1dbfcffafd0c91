"""The noiseless memorization problem: reproduce a pattern after a long blank gap.

A pattern of P symbols from an alphabet of K is shown in the first P steps; then a
"blank" channel is on for T steps; then a "go" marker; the model must output "blank"
(class K) on every step until the last P steps, where it must output the pattern.

Layout of one sequence (total `T + 2P` steps, 0-based; input channels 0..K-1 are the
symbols, K the blank, K+1 the go marker), as in the original code:

| steps | input | target |
|---|---|---|
| `[0, P)` | pattern symbol | blank (K) |
| `[P, P+T)` | blank | blank (K) |
| `P+T` | go | `pattern[0]` |
| `(P+T, T+2P)` | blank | `pattern[t - P - T]` |

So the first pattern symbol is due on the very step the go marker arrives.

References:
  Hochreiter & Schmidhuber (1997), Long short-term memory, §5 (the long-lag tasks).
  Martens & Sutskever (2011), Learning recurrent neural networks with Hessian-free
  optimization (the task as used here, and the K = 5, P = 10 extension).
  Pascanu, Mikolov & Bengio (2013), supplementary material, "Noiseless memorization
  problem"; docs/reference.md §3.
  Original generator: `pascanur/trainingRNNs`, `memorization.py`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from rnn_dynamics.tasks.base import Batch, Task, float_dtype

__all__ = ["memorization", "sample_memorization"]


def sample_memorization(
  key: jax.Array,
  batch_size: int,
  length: jax.typing.ArrayLike,
  buffer: int,
  *,
  n_symbols: int,
  pattern_length: int,
) -> Batch:
  """Draws a padded batch of the noiseless memorization problem.

  The original code draws a pattern index uniform in `[0, K^P)` and writes its base-K
  digits; drawing the P symbols independently and uniformly is the same distribution
  (and avoids K^P overflowing int32).

  Args:
    key: PRNG key.
    batch_size: number of sequences B (static).
    length: nominal length T of the blank gap, may be traced.
    buffer: padded number of time steps (static), at least `T + 2P`.
    n_symbols: alphabet size K (static).
    pattern_length: pattern length P (static).

  Returns:
    `Batch` with inputs `[buffer, B, K + 2]` one-hot float32 (zero on padding), targets
    `[buffer, B]` int32 in `[0, K]` (0 on padding), mask `[buffer, B]` (first
    `T + 2P` steps).

  Raises:
    ValueError: for a concrete `length` below 0 or above `buffer - 2P`.

  References:
    `pascanur/trainingRNNs`, `memorization.py`, `MemTask.generate`.
  """
  k, p = n_symbols, pattern_length
  if isinstance(length, (int, np.integer)) and not 0 <= length <= buffer - 2 * p:
    raise ValueError(
      f"memorization needs 0 <= length <= buffer - 2P = {buffer - 2 * p}, got {length=}"
    )
  length = jnp.asarray(length, jnp.int32)
  pattern = jax.random.randint(key, (p, batch_size), 0, k)  # [P, B]
  t = jnp.arange(buffer, dtype=jnp.int32)  # [buffer]
  go = p + length  # the go marker's step, also where the recall starts

  shown = pattern[jnp.clip(t, 0, p - 1)]  # [buffer, B], the symbol on steps < P
  recalled = pattern[jnp.clip(t - go, 0, p - 1)]  # [buffer, B], the symbol on steps >= go
  t = t[:, None]  # [buffer, 1]
  mask = jnp.broadcast_to(t < go + p, (buffer, batch_size))
  symbols = jnp.where(t < p, shown, jnp.where(t == go, k + 1, k))
  inputs = jnp.where(mask[..., None], jax.nn.one_hot(symbols, k + 2, dtype=float_dtype()), 0.0)
  targets = jnp.where(t < go, k, recalled)
  targets = jnp.where(mask, targets, 0).astype(jnp.int32)
  return Batch(inputs=inputs, targets=targets, mask=mask)


def memorization(n_symbols: int, pattern_length: int, name: str | None = None) -> Task:
  """The noiseless memorization task for a pattern of P symbols from an alphabet of K.

  The published variants are K=2, P=5 ("5 bits") and K=5, P=10 ("over 20 bits",
  log2 5^10 ≈ 23.2; the original code's default).

  Args:
    n_symbols: alphabet size K >= 1.
    pattern_length: pattern length P >= 1.
    name: registry name; defaults to `"memorization_k{K}_p{P}"`.

  Returns:
    A `Task` with K + 2 inputs, K + 1 classes and the `all_softmax` head; a batch of
    nominal length T occupies `T + 2P` steps.

  References:
    Pascanu et al. (2013), supplementary, "Noiseless memorization problem";
    Martens & Sutskever (2011).
  """
  if n_symbols < 1 or pattern_length < 1:
    raise ValueError(
      f"need n_symbols >= 1 and pattern_length >= 1, got {n_symbols}, {pattern_length}"
    )
  return Task(
    name=name or f"memorization_k{n_symbols}_p{pattern_length}",
    n_in=n_symbols + 2,
    n_out=n_symbols + 1,
    head="all_softmax",
    sample=functools.partial(
      sample_memorization, n_symbols=n_symbols, pattern_length=pattern_length
    ),
    buffer_length=lambda length: int(length) + 2 * pattern_length,
  )
