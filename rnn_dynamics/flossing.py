"""Gradient flossing as a regularizer: `weight · Σ_{i≤k} λ_i²` added to an update's loss.

The top-k Lyapunov exponents of the network driven by the update's first few sequences
(`Model.exponents`, repeated QR) are a differentiable function of the parameters; the
gradient of their squares, times the run's weight (`HParams.floss`, per run like Ω's α),
is added to the error gradient before the optimizer chain, so the run's clipping and
non-finite guard see the sum, as they see Ω's (Algorithm 1 on the full gradient).

Unlike Ω, flossing needs nothing from the backward pass: it is a function of the
parameters and the inputs alone, so it is added here, outside every model's
`loss_and_grads`, and the paper's hand-written BPTT and the autodiff cells take it alike.

It is applied in phases, as the source does (docs/reference.md §6, "Gradient flossing"):
on the updates whose index `i` (the group's update count, shared by its runs like the
length schedule) has `i mod every < for_` and `i div every < phases` (`phases` 0: no
limit). Outside the phases the penalty is not computed at all: the phase test is on an
unbatched index, so under `vmap` it stays a real branch.

References:
  docs/reference.md §6 (Lyapunov exponents; gradient flossing).
  Engelken (2023), Gradient flossing: improving gradient descent through dynamic control
  of Jacobians, NeurIPS.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections

from rnn_dynamics.analysis import lyapunov

__all__ = ["FlossSettings", "add_flossing_grad", "penalty", "scheduled", "settings_of"]


class FlossSettings(NamedTuple):
  """How a program flosses, all static (the weight is per run, `HParams.floss`).

  Attributes:
    enabled: whether the penalty is computed at all (False: programs where every run's
      weight is 0 pay nothing).
    k: how many exponents are pushed towards 0.
    sequences: how many of the update's sequences (its first) they are computed on.
    warmup: steps of each sequence run before the exponents accumulate.
    every, for_, phases: the schedule (module docstring).
  """

  enabled: bool = False
  k: int = 1
  sequences: int = 1
  warmup: int = 0
  every: int = 1
  for_: int = 1
  phases: int = 0


def settings_of(config: ml_collections.ConfigDict, min_length: int) -> FlossSettings:
  """The program's `FlossSettings` from `config` (`floss_enabled`, default False;
  `floss_k`, `floss_sequences`, `floss_every`, `floss_for`, `floss_phases`), with the
  warm-up a quarter of the shortest training length (`lyapunov.training_warmup`).

  Raises:
    ValueError: a setting out of range, named with its value.
  """
  if not bool(config.get("floss_enabled", False)):
    return FlossSettings()
  s = FlossSettings(
    enabled=True,
    k=int(config.get("floss_k", 1)),
    sequences=int(config.get("floss_sequences", 1)),
    warmup=lyapunov.training_warmup(min_length),
    every=int(config.get("floss_every", 1)),
    for_=int(config.get("floss_for", 1)),
    phases=int(config.get("floss_phases", 0)),
  )
  if s.k < 1 or s.k > int(config.n_hidden):
    raise ValueError(f"need 1 <= floss_k <= n_hidden={config.n_hidden}, got {s.k}")
  if not 1 <= s.sequences <= int(config.batch_size):
    raise ValueError(
      f"need 1 <= floss_sequences <= batch_size={config.batch_size}, got {s.sequences}"
    )
  if not 1 <= s.for_ <= s.every or s.phases < 0:
    raise ValueError(
      "need 1 <= floss_for <= floss_every and floss_phases >= 0, got "
      f"floss_for={s.for_}, floss_every={s.every}, floss_phases={s.phases}"
    )
  return s


def scheduled(s: FlossSettings, index: jax.Array) -> jax.Array:
  """Whether update `index` is in a flossing phase (a bool scalar)."""
  index = jnp.asarray(index, jnp.int32)
  on = index % s.every < s.for_
  if s.phases:
    on &= index // s.every < s.phases
  return on


def penalty(model, params: Any, hp, inputs_TxBxI, mask_TxB, k: int, warmup: int) -> jax.Array:
  """`Σ_{i≤k} λ_i²` of each sequence, averaged over the sequences (squared before the
  mean, so exponents of opposite sign on two sequences do not cancel)."""
  exponents_BxK = model.exponents(params, hp, inputs_TxBxI, mask_TxB, k, warmup)
  return jnp.mean(jnp.sum(exponents_BxK**2, axis=-1))


def add_flossing_grad(grads, model, params, hp, batch, weight, s: FlossSettings, index):
  """`grads + weight · ∂(Σλ²)/∂params` on a flossing update, `grads` unchanged otherwise.

  Args:
    grads: the update's gradient so far (a pytree like `params`).
    model: the `cells.Model` (its `exponents`).
    params, hp: the run's parameters and hyper-parameters.
    batch: the update's batch; its first `s.sequences` sequences are used.
    weight: the run's flossing weight (traced); where it is 0 the gradient is returned
      bit for bit, whatever the penalty's gradient holds.
    s: the program's settings (`enabled` must be True).
    index: the update's index in the group (unbatched, for `scheduled`).

  Returns:
    `(grads, value)`: the gradient, and the penalty (NaN outside the phases).
  """
  n = s.sequences

  def flossed(_):
    inputs, mask = batch.inputs[:, :n], batch.mask[:, :n]
    value, g = jax.value_and_grad(lambda p: penalty(model, p, hp, inputs, mask, s.k, s.warmup))(
      params
    )
    add = lambda a, b: jnp.where(weight != 0, a + weight * b, a)
    return jax.tree.map(add, grads, g), value.astype(jnp.float32)

  def skipped(_):
    return grads, jnp.float32(jnp.nan)

  return jax.lax.cond(scheduled(s, index), flossed, skipped, None)
