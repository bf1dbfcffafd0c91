"""The addition and multiplication problems: combine two marked real values.

Channel 1 carries U(0, 1) values on every step; channel 0 is 0 except for two marked
steps, one early (first tenth) and one before the middle. After the last step the model
regresses the mean (addition) or the product (multiplication) of the two marked values.
The sequence is a little longer than the nominal T, by a random U[0, ⌊0.1T⌋) steps, so
the readout step itself does not give the positions away.

References:
  Hochreiter & Schmidhuber (1997), Long short-term memory, §5.4 and §5.5.
  Pascanu, Mikolov & Bengio (2013), supplementary material, "Addition problem",
  "Multiplication problem"; docs/reference.md §3.
  Original generators: `pascanur/trainingRNNs`, `addition.py` and `multiplication.py`.
"""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from rnn_dynamics.tasks.base import Batch, Task, float_dtype

__all__ = [
  "addition",
  "buffer_length",
  "multiplication",
  "sample_arithmetic",
]

Op = Literal["add", "mul"]


def buffer_length(length: int) -> int:
  """Longest actual length `T' = T + U[0, ⌊0.1T⌋)` can take: `T + max(⌊0.1T⌋ - 1, 0)`."""
  length = int(length)
  return length + max(length // 10 - 1, 0)


def sample_arithmetic(
  key: jax.Array,
  batch_size: int,
  length: jax.typing.ArrayLike,
  buffer: int,
  *,
  op: Op,
  per_sequence_length: bool = False,
) -> Batch:
  """Draws a padded batch of the addition (`op="add"`) or multiplication problem.

  With actual length `T' = T + U[0, ⌊0.1T⌋)`, the marks sit at `p0 ∈ [0, ⌊0.1T'⌋)` and
  `p1 ∈ [⌊0.1T'⌋, ⌊0.1T'⌋ + ⌊0.4T'⌋)` (0-based, half-open; exact integer floors, which
  equal the original's float64 `int(T' * 0.1)`, `int(T' * 0.4)` for every T' < 2^53).
  The target is `(v[p0] + v[p1]) / 2` or `v[p0] · v[p1]`.

  The original code draws T' once per batch (the default here); the paper's text says
  "for each generated sequence", which `per_sequence_length=True` gives: the mask then
  has a different prefix per sequence.

  Args:
    key: PRNG key.
    batch_size: number of sequences B (static).
    length: nominal length T, may be traced. For T < 10 the original code raises; this
      one raises for a concrete T and otherwise uses T' = T and p0 = p1 = ⌊0.1T'⌋ = 0.
    buffer: padded number of time steps (static), at least `buffer_length(T)`.
    op: `"add"` for the mean of the two values, `"mul"` for their product.
    per_sequence_length: draw T' per sequence instead of per batch.

  Returns:
    `Batch` with inputs `[buffer, B, 2]` float32 (channel 0 the marks, channel 1 the
    values, zero on padding), targets `[B, 1]` float32, mask `[buffer, B]` (first T').

  Raises:
    ValueError: for a concrete `length` below 10 or above what `buffer` holds.

  References:
    `pascanur/trainingRNNs`, `addition.py` / `multiplication.py`, `generate`.
  """
  if isinstance(length, (int, np.integer)) and not (
    10 <= length and buffer_length(length) <= buffer
  ):
    raise ValueError(
      f"{op} needs length >= 10 and buffer >= {buffer_length(max(int(length), 0))}, "
      f"got {length=}, {buffer=}"
    )
  length = jnp.asarray(length, jnp.int32)
  k_len, k_p0, k_p1, k_val = jax.random.split(key, 4)
  extra_shape = (batch_size,) if per_sequence_length else ()
  actual = length + jax.random.randint(k_len, extra_shape, 0, length // 10)
  actual = jnp.broadcast_to(actual, (batch_size,))
  first = actual // 10
  p0 = jax.random.randint(k_p0, (batch_size,), 0, first)
  p1 = jax.random.randint(k_p1, (batch_size,), first, first + (4 * actual) // 10)

  values = jax.random.uniform(k_val, (buffer, batch_size), float_dtype())
  t = jnp.arange(buffer, dtype=jnp.int32)[:, None]  # [buffer, 1]
  mask = t < actual[None, :]
  marks = (t == p0[None, :]) | (t == p1[None, :])
  inputs = jnp.stack([marks.astype(float_dtype()), values], axis=-1)
  inputs = jnp.where(mask[..., None], inputs, 0.0)

  v0 = jnp.take_along_axis(values, p0[None, :], axis=0)[0]
  v1 = jnp.take_along_axis(values, p1[None, :], axis=0)[0]
  target = (v0 + v1) / 2 if op == "add" else v0 * v1
  return Batch(inputs=inputs, targets=target[:, None].astype(float_dtype()), mask=mask)


def _task(op: Op, name: str, per_sequence_length: bool) -> Task:
  return Task(
    name=name,
    n_in=2,
    n_out=1,
    head="last_linear",
    sample=functools.partial(sample_arithmetic, op=op, per_sequence_length=per_sequence_length),
    buffer_length=buffer_length,
    min_length=10,  # the first mark's window is ⌊T'/10⌋ steps wide
  )


def addition(per_sequence_length: bool = False) -> Task:
  """The addition problem: regress the mean of the two marked values.

  Args:
    per_sequence_length: draw the actual length per sequence (the paper's text) rather
      than per batch (the original code, default).

  Returns:
    A `Task` with 2 inputs, 1 output and the `last_linear` head.

  References:
    Pascanu et al. (2013), supplementary, "Addition problem"; `addition.py`.
  """
  return _task("add", "addition", per_sequence_length)


def multiplication(per_sequence_length: bool = False) -> Task:
  """The multiplication problem: regress the product of the two marked values.

  Args:
    per_sequence_length: as for `addition`.

  Returns:
    A `Task` with 2 inputs, 1 output and the `last_linear` head.

  References:
    Pascanu et al. (2013), supplementary, "Multiplication problem"; `multiplication.py`.
  """
  return _task("mul", "multiplication", per_sequence_length)
