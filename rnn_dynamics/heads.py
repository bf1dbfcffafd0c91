"""Readout heads: the linear readout, each task's loss and its error (docs/reference.md §1).

Shared by every network: a head reads features `h` (`[B, F]` at the last step or
`[T, B, F]` at every step) through `w_out`, `b_out` (any parameters that carry them).
The losses and errors are the original code's, per head:

* `last_softmax` — cross-entropy at the last step; wrong when the argmax is not the
  target.
* `last_linear` — squared error at the last step; wrong when it exceeds 0.04.
* `all_softmax` — cross-entropy averaged over valid steps; a sequence is wrong when any
  valid step's argmax is.
* `all_bernoulli` — per-key Bernoulli NLL averaged over valid steps (music); no
  discrete error, the NLL is the score.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnn_dynamics.tasks.base import Batch, Head

__all__ = ["head_loss", "is_last", "readout", "readout_loss", "sigmoid_bce", "wrong"]


def readout(params, h: jax.Array) -> jax.Array:
  """Output pre-activations (logits, or the linear output) for hidden states `h`."""
  return h @ params.w_out + jnp.expand_dims(params.b_out, tuple(range(h.ndim - 1)))


def wrong(head: Head, logits: jax.Array, targets: jax.Array, mask_TxB: jax.Array):
  """`[B]` bool: which sequences the head gets wrong (docs/reference.md §1 table's error column)."""
  if head == "last_softmax":
    return jnp.argmax(logits, axis=-1) != targets
  if head == "last_linear":
    return jnp.sum((logits - targets) ** 2, axis=-1) > 0.04
  if head == "all_softmax":
    # A sequence is wrong if any of its valid steps is.
    return jnp.any((jnp.argmax(logits, axis=-1) != targets) & mask_TxB, axis=0)
  raise ValueError(f"head {head!r} has no discrete error")


def head_loss(head: Head, logits: jax.Array, targets: jax.Array, mask_TxB: jax.Array):
  """(loss, error) of a readout head, as in the original code (docs/reference.md §1 table)."""
  if head == "last_softmax":
    logp = jax.nn.log_softmax(logits)
    loss = -jnp.mean(jnp.take_along_axis(logp, targets[:, None], axis=1))
  elif head == "last_linear":
    loss = jnp.mean(jnp.sum((logits - targets) ** 2, axis=-1))
  elif head == "all_softmax":
    logp = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    loss = jnp.sum(jnp.where(mask_TxB, nll, 0.0)) / jnp.maximum(jnp.sum(mask_TxB), 1)
  elif head == "all_bernoulli":
    nll = jnp.sum(sigmoid_bce(logits, targets), axis=-1)
    loss = jnp.sum(jnp.where(mask_TxB, nll, 0.0)) / jnp.maximum(jnp.sum(mask_TxB), 1)
    return loss, loss  # no discrete error for music; the per-step NLL is the score.
  else:
    raise ValueError(f"unknown head {head!r}")
  return loss, jnp.mean(wrong(head, logits, targets, mask_TxB))


def sigmoid_bce(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Bernoulli NLL per key from logits (numerically stable)."""
  return jnp.maximum(logits, 0) - logits * labels + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def is_last(head: Head) -> bool:
  return head.startswith("last")


def readout_loss(params, h_TxBxH, h_last_BxH, batch: Batch, head: Head):
  h = h_last_BxH if is_last(head) else h_TxBxH
  return head_loss(head, readout(params, h), batch.targets, batch.mask)
