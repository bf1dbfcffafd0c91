"""The sampler interface shared by every synthetic task.

A task is a pure function of a PRNG key that draws a padded, time-major batch on the
device, so data generation happens inside the compiled training program, per run.

References:
  Hochreiter & Schmidhuber (1997), Long short-term memory, §5.
  Martens & Sutskever (2011), Learning recurrent neural networks with Hessian-free
  optimization — the generators the paper reuses (docs/reference.md §3).
"""

from __future__ import annotations

from typing import Callable, Literal, NamedTuple

import jax
import jax.numpy as jnp


def float_dtype() -> jnp.dtype:
  """The floating dtype of data and parameters: float32, or float64 when
  `jax_enable_x64` is on (read at trace time, so a float64 run is a float64 run
  throughout, e.g. to check a float32 result)."""
  return jax.dtypes.canonicalize_dtype(jnp.float64)


Head = Literal["last_softmax", "all_softmax", "last_linear", "all_bernoulli"]


class Batch(NamedTuple):
  """A padded, time-major batch.

  Attributes:
    inputs: `[T, B, n_in]` float32, zero on padded steps.
    targets: `[B]` int32 class ids (`last_softmax`), `[B, n_out]` float32
      (`last_linear`), `[T, B]` int32 class ids (`all_softmax`) or `[T, B, n_out]`
      float32 (`all_bernoulli`).
    mask: `[T, B]` bool, True on the steps that belong to the sequence. Valid steps
      always form a prefix: the readout of `last_*` heads is at the last True step.
  """

  inputs: jax.Array
  targets: jax.Array
  mask: jax.Array


class Task(NamedTuple):
  """A synthetic task: sizes, readout head and an on-device sampler.

  Attributes:
    name: registry name.
    n_in: input size.
    n_out: output size (classes for softmax heads).
    head: which readout and loss the model uses (see `rnn_dynamics.rnn`).
    sample: `sample(key, batch_size, length, buffer) -> Batch`. `batch_size` and
      `buffer` are static Python ints; `length` (the nominal length T) may be a traced
      int32 scalar, so one compiled program serves every length up to the buffer.
    buffer_length: `buffer_length(T) -> int`, the number of time steps a batch of
      nominal length up to T occupies (e.g. `T + T // 10` for addition, `T + 2P` for
      memorization).
    min_length: the shortest nominal length T whose sequences are well formed. Shorter
      ones are not refused inside a compiled program (T is traced there): they come out
      degenerate (empty marker windows), so configs are checked against this up front.
  """

  name: str
  n_in: int
  n_out: int
  head: Head
  sample: Callable[..., Batch]
  buffer_length: Callable[[int], int]
  min_length: int = 1


def sample_per_sequence_lengths(
  task: Task, key: jax.Array, lengths_B: jax.Array, buffer: int
) -> Batch:
  """A batch whose sequences each have their own nominal length.

  `task.sample` draws one length per batch (what a training update uses). A test of a
  model trained on mixed lengths should cover that mix sequence by sequence, so every
  length in the range is tested, not only the few a handful of batches would draw.

  Args:
    task: the task.
    key: PRNG key.
    lengths_B: `[B]` int32 nominal lengths (traced).
    buffer: static time steps of the batch (`task.buffer_length` of the largest length).
  """
  keys = jax.random.split(key, lengths_B.shape[0])
  one = jax.vmap(lambda k, n: task.sample(k, 1, n, buffer))(keys, lengths_B)
  # Each field of `one` has a new leading sequence axis and its own batch axis of size 1:
  # axis 1 of inputs and mask, axis 0 of last-step targets, axis 1 of per-step targets.
  target_axis = 0 if task.head.startswith("last") else 1

  def merge(x: jax.Array, axis: int) -> jax.Array:
    return jnp.moveaxis(jnp.squeeze(x, axis + 1), 0, axis)

  return Batch(merge(one.inputs, 1), merge(one.targets, target_axis), merge(one.mask, 1))
