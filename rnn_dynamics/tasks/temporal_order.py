"""The temporal order problems: classify the order of symbols shown at marked steps.

A stream of uniform distractor symbols {c, d, e, f} carries, at a few random steps, a
symbol in {A, B}; after the last step the model must name the sequence of those symbols
(AA, BA, AB, BB for two marks; eight classes for three). Each mark falls in its own window
of width ⌊0.1T⌋ starting at ⌊(offset / 10) T⌋, so the first mark is far from the readout
and the model has to carry one bit across most of the sequence.

References:
  Hochreiter & Schmidhuber (1997), Long short-term memory, §5.6 (tasks 6a and 6b).
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, §4.1.1 and the supplementary material; docs/reference.md §3.
  Original generators: `pascanur/trainingRNNs`, `tempOrder.py` and `tempOrder3bit.py`.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rnn_dynamics.tasks.base import Batch, Task, float_dtype

__all__ = [
  "N_SYMBOLS",
  "sample_temporal_order",
  "temporal_order",
  "temporal_order_3bit",
]

N_SYMBOLS = 6
"""Input alphabet: A, B are classes 0, 1; the distractors c, d, e, f are 2..5."""

# Window starts in tenths of T. The original code uses 1 and 5 (the paper's text says
# 1 and 4; pass `offsets_tenths=(1, 4)` for that variant).
_TWO_BIT = (1, 5)
_THREE_BIT = (1, 3, 6)


def sample_temporal_order(
  key: jax.Array,
  batch_size: int,
  length: jax.typing.ArrayLike,
  buffer: int,
  *,
  offsets_tenths: Sequence[int] = _TWO_BIT,
) -> Batch:
  """Draws a padded batch of the (n-bit) temporal order problem.

  Mark i sits at a step drawn uniformly from `[s_i, s_i + ⌊0.1T⌋)` with
  `s_i = ⌊offsets_tenths[i] · T / 10⌋` (0-based, half-open) and carries `v_i ∈ {0, 1}`;
  the class is `Σ_i v_i 2^i`. Every other valid step is a uniform distractor in 2..5.

  The floors use exact integer arithmetic (`k * T // 10`). The original code computes
  `int(T * 0.k)` in float64; for k = 1, 3, 4, 5, 6 the two agree for every T below 2^53
  (the float64 constants err by less than half an ulp of the integer products), so the
  ranges are the original's.

  Args:
    key: PRNG key.
    batch_size: number of sequences B (static).
    length: nominal length T, may be traced. The windows are empty for T < 10; the
      original code raises there, this one raises for a concrete T and otherwise puts
      every mark at its window start.
    buffer: padded number of time steps (static), at least T.
    offsets_tenths: window starts in tenths of T, one per mark, in time order.
      `(1, 5)` is the original code's two-bit task; the paper's text describes
      `(1, 4)`; `(1, 3, 6)` is the three-bit task.

  Returns:
    `Batch` with inputs `[buffer, B, 6]` one-hot float32 (zero on padding), targets
    `[B]` int32 in `[0, 2^len(offsets_tenths))`, mask `[buffer, B]` (first T steps).

  Raises:
    ValueError: for a concrete `length` outside `[10, buffer]`.

  References:
    `pascanur/trainingRNNs`, `tempOrder.py` / `tempOrder3bit.py`, `generate`.
  """
  if isinstance(length, (int, np.integer)) and not 10 <= length <= buffer:
    raise ValueError(f"temporal order needs 10 <= length <= buffer, got {length=}, {buffer=}")
  length = jnp.asarray(length, jnp.int32)
  width = length // 10
  k_noise, k_val, *k_pos = jax.random.split(key, 2 + len(offsets_tenths))
  t = jnp.arange(buffer, dtype=jnp.int32)[:, None]  # [buffer, 1]

  symbols = jax.random.randint(k_noise, (buffer, batch_size), 2, N_SYMBOLS)
  values = jax.random.randint(k_val, (len(offsets_tenths), batch_size), 0, 2)
  label = jnp.zeros((batch_size,), jnp.int32)
  for i, (tenths, k) in enumerate(zip(offsets_tenths, k_pos)):
    start = (tenths * length) // 10
    pos = jax.random.randint(k, (batch_size,), start, start + width)
    symbols = jnp.where(t == pos[None, :], values[i][None, :], symbols)
    label = label + values[i] * (2**i)

  mask = jnp.broadcast_to(t < length, (buffer, batch_size))
  inputs = jnp.where(mask[..., None], jax.nn.one_hot(symbols, N_SYMBOLS, dtype=float_dtype()), 0.0)
  return Batch(inputs=inputs, targets=label.astype(jnp.int32), mask=mask)


def temporal_order(offsets_tenths: Sequence[int] = _TWO_BIT, name: str | None = None) -> Task:
  """The temporal order task with one mark per entry of `offsets_tenths`.

  Args:
    offsets_tenths: window starts in tenths of T (see `sample_temporal_order`); the
      default `(1, 5)` is the original code's task, `(1, 4)` the paper text's.
    name: registry name; defaults to `"temporal_order"` for two marks and
      `"temporal_order_{n}bit"` otherwise.

  Returns:
    A `Task` with 6 inputs, `2^n` classes and the `last_softmax` head.

  References:
    Pascanu et al. (2013), supplementary, "Temporal order problem".
  """
  offsets_tenths = tuple(int(o) for o in offsets_tenths)
  # Strictly increasing starts keep the windows disjoint (⌊aT/10⌋ + ⌊T/10⌋ ≤ ⌊(a+1)T/10⌋),
  # so no mark can overwrite another and the label is recoverable from the inputs.
  if (
    not offsets_tenths
    or any(o < 1 or o > 9 for o in offsets_tenths)
    or any(a >= b for a, b in itertools.pairwise(offsets_tenths))
  ):
    raise ValueError(
      f"offsets_tenths must be strictly increasing values in 1..9, got {offsets_tenths}"
    )
  n = len(offsets_tenths)
  if name is None:
    name = "temporal_order" if n == 2 else f"temporal_order_{n}bit"
  return Task(
    name=name,
    n_in=N_SYMBOLS,
    n_out=2**n,
    head="last_softmax",
    sample=functools.partial(sample_temporal_order, offsets_tenths=offsets_tenths),
    buffer_length=lambda length: int(length),
    min_length=10,  # each window is ⌊T/10⌋ steps wide
  )


def temporal_order_3bit() -> Task:
  """The 3-bit temporal order task: marks at ⌊0.1T⌋, ⌊0.3T⌋, ⌊0.6T⌋ + U[0, ⌊0.1T⌋).

  References:
    Pascanu et al. (2013), supplementary, "3-bit temporal order problem";
    `pascanur/trainingRNNs`, `tempOrder3bit.py`.
  """
  return temporal_order(_THREE_BIT, name="temporal_order_3bit")
