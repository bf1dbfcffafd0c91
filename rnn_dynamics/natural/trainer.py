"""The compiled programs of the natural tasks: one run's updates and evaluation, vmapped.

Every run (the SGD / SGD-C / SGD-CR columns × seeds) is a row of stacked arrays, and
`chunk_size` segments of updates for all of them are one compiled, vmapped program, as in
`rnn_dynamics.synthetic.train`: the same optax chain (`algorithms.make_optimizer`: clipping inside
the non-finite guard → SGD) and Ω from the saved adjoints, fused into the weight gradient
(`regularizers.add_omega_grad`). Within a lane the hidden state is carried from one
segment to the next (truncated BPTT: the gradient stops at the segment boundary, the
forward pass does not), so evaluating the chained segments gives exactly the
full-sequence likelihood.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from rnn_dynamics import clipping, heads, rnn
from rnn_dynamics.algorithms import HParams, make_optimizer
from rnn_dynamics.clipping import all_finite
from rnn_dynamics.natural.segments import Segments
from rnn_dynamics.natural.task import NaturalTask
from rnn_dynamics.regularizers import add_omega_grad
from rnn_dynamics.tasks.base import Batch

__all__ = [
  "NaturalState",
  "SegmentMetrics",
  "Trainer",
  "make_trainer",
  "predict_roll",
  "sample_text",
]


@flax.struct.dataclass
class NaturalState:
  """One run's training state between compiled calls (checkpointed as is).

  Attributes:
    params: model parameters.
    opt_state: optax state (clipping statistics of the last update inside).
    h_BxH: the hidden state carried into the next segment, per lane.
    updates: updates applied.
    skipped: updates dropped because the loss or the new parameters were not finite.
  """

  params: rnn.Params
  opt_state: Any
  h_BxH: jax.Array
  updates: jax.Array
  skipped: jax.Array


class SegmentMetrics(NamedTuple):
  """Per segment of a chunk (`[K]` per run)."""

  loss: jax.Array  # nats per valid step (mean over the segment's steps)
  n_valid: jax.Array
  grad_norm: jax.Array  # pre-clip global norm of the applied cost's gradient, Ω's included
  clipped: jax.Array
  omega: jax.Array
  fallback: jax.Array  # 1 where the non-finite guard replaced the step


class Trainer(NamedTuple):
  """Pure functions of one run (vmap over runs; segments are shared, unbatched).

  Attributes:
    task: the task.
    init: `init(key, hp) -> NaturalState`.
    chunk: `chunk(state, hp, segments) -> (state, SegmentMetrics)`: one update per
      segment, `K` segments in one `lax.scan`, the state carried across them.
    evaluate: `evaluate(params, h_BxH, hp, segments) -> (h_BxH, nll_sum, n_steps)`:
      the summed NLL (nats) of `K` chained segments, no update.
  """

  task: NaturalTask
  init: Callable[..., NaturalState]
  chunk: Callable[..., tuple[NaturalState, SegmentMetrics]]
  evaluate: Callable[..., tuple[jax.Array, jax.Array, jax.Array]]


def _to_batch(task: NaturalTask, inputs, targets, mask) -> Batch:
  """Device-side: uint8 frames to floats, symbol ids to one-hot inputs and int targets."""
  if task.kind == "music":
    return Batch(inputs.astype(jnp.float32), targets.astype(jnp.float32), mask)
  one_hot = jax.nn.one_hot(inputs, task.n_in, dtype=jnp.float32)
  return Batch(one_hot, targets.astype(jnp.int32), mask)


def _nll_sum(task: NaturalTask, logits, targets, mask) -> jax.Array:
  if task.kind == "music":
    nll = jnp.sum(heads.sigmoid_bce(logits, targets), axis=-1)
  else:
    logp = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
  return jnp.sum(jnp.where(mask, nll, 0.0))


def _make_evaluate(task: NaturalTask, unit: rnn.Unit):
  """`Trainer.evaluate`: the summed NLL of chained segments, the state carried."""

  def evaluate(params: rnn.Params, h_BxH: jax.Array, hp: HParams, segments: Segments):
    del hp  # evaluation does not depend on the training hyper-parameters

    def body(h, seg):
      inputs, targets, mask, reset = seg
      batch = _to_batch(task, inputs, targets, mask)
      h0 = jnp.where(reset[:, None], 0.0, h)
      out = rnn.unroll(params, unit, batch.inputs, mask, h0_BxH=h0)
      nll = _nll_sum(task, heads.readout(params, out.h_TxBxH), batch.targets, mask)
      return out.h_last_BxH, (nll, jnp.sum(mask))

    h, (nll, n) = jax.lax.scan(body, h_BxH, tuple(segments))
    return h, jnp.sum(nll), jnp.sum(n)

  return evaluate


def make_trainer(config: ml_collections.ConfigDict, task: NaturalTask) -> Trainer:
  """Builds the pure per-run functions.

  `config` fields used: `n_hidden`, `batch_size` (lanes B), `init` (a name in
  `rnn.INITS`, shared by every run), `cost` ('mean': the
  gradient of the per-step mean cost, music; 'sum': of the cost summed over the segment's
  steps, averaged over lanes, text), `biases` (False: `b` and `b_out` stay zero),
  `nonfinite_guard`, `momentum`, `omega_form`, `omega_bound`, and optional
  `omega_enabled` (default True).
  """
  n_lanes, n_hidden = int(config.batch_size), int(config.n_hidden)
  if config.cost not in ("mean", "sum"):
    raise ValueError(f"config.cost must be 'mean' or 'sum', got {config.cost!r}")
  summed = config.cost == "sum"
  biases = bool(config.biases)
  with_omega = bool(config.get("omega_enabled", True))
  omega = dict(form=config.omega_form, bound=float(config.omega_bound))
  # Every run of a table shares the initialisation, so it is static here (no traced
  # selection between the three, hence no host callback for smart_tanh's radius).
  init_name = str(config.init)
  unit = rnn.unit_for_init(init_name)

  def init(key: jax.Array, hp: HParams) -> NaturalState:
    params = rnn.init_params(key, task.n_in, n_hidden, task.n_out, init_name)
    opt_state = make_optimizer(config, hp).init(params)
    h = jnp.zeros((n_lanes, n_hidden), jnp.float32)
    return NaturalState(params, opt_state, h, jnp.int32(0), jnp.int32(0))

  def update(state: NaturalState, hp: HParams, seg) -> tuple[NaturalState, SegmentMetrics]:
    inputs, targets, mask, reset = seg
    batch = _to_batch(task, inputs, targets, mask)
    h0 = jnp.where(reset[:, None], 0.0, state.h_BxH)
    loss, grads, fwd = rnn.loss_and_grads(state.params, unit, batch, task.head, h0_BxH=h0)
    n_valid = jnp.sum(mask)
    # loss_and_grads differentiates the mean over valid (step, lane) pairs; the summed
    # cost is that times the valid steps per lane.
    scale = n_valid.astype(jnp.float32) / n_lanes if summed else 1.0
    if summed:
      grads = jax.tree.map(lambda g: g * scale, grads)
    if not biases:
      grads = grads.replace(b=jnp.zeros_like(grads.b), b_out=jnp.zeros_like(grads.b_out))
    grads, om = add_omega_grad(
      grads, fwd, mask, hp.alpha, enabled=with_omega, loss_scale=scale, **omega
    )
    updates, opt_state = make_optimizer(config, hp).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ok = (n_valid > 0) & jnp.isfinite(loss) & all_finite(params)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
    stats = clipping.clipping_stats(opt_state)
    new_state = NaturalState(
      params=keep(params, state.params),
      opt_state=keep(opt_state, state.opt_state),
      # The state reached with the parameters of this forward pass goes on to the next
      # segment (truncated BPTT); a lane with no valid step keeps its state.
      h_BxH=fwd.unroll.h_last_BxH,
      updates=state.updates + ok.astype(jnp.int32),
      skipped=state.skipped + ((n_valid > 0) & ~ok).astype(jnp.int32),
    )
    metrics = SegmentMetrics(
      loss=loss,
      n_valid=n_valid,
      grad_norm=stats["grads/norm_preclip"],
      clipped=stats["grads/clipped"].astype(jnp.float32),
      omega=om,
      fallback=stats["grads/nonfinite"].astype(jnp.float32),
    )
    return new_state, metrics

  def chunk(state: NaturalState, hp: HParams, segments: Segments):
    return jax.lax.scan(lambda s, seg: update(s, hp, seg), state, tuple(segments))

  return Trainer(task, init, chunk, _make_evaluate(task, unit))


def predict_roll(params: rnn.Params, init: str, roll: np.ndarray) -> np.ndarray:
  """Per-key probabilities that each frame of a song is on, given the frames before it.

  Args:
    params: one run's parameters (music model).
    init: its initialisation name (fixes the unit type).
    roll: `[T, K]` 0/1 piano roll.

  Returns:
    `[T, K]` float32 probabilities (row t predicts frame t from frames 0 … t − 1).
  """
  roll = np.asarray(roll, np.float32)
  inputs = np.concatenate([np.zeros_like(roll[:1]), roll[:-1]])[:, None, :]
  mask = np.ones(inputs.shape[:2], bool)
  params = jax.tree.map(jnp.asarray, params)
  out = rnn.unroll(params, rnn.unit_for_init(init), jnp.asarray(inputs), jnp.asarray(mask))
  return np.asarray(jax.nn.sigmoid(heads.readout(params, out.h_TxBxH))[:, 0])


def sample_text(
  params: rnn.Params, init: str, prime: np.ndarray, n: int, key: jax.Array, vocab_size: int
) -> np.ndarray:
  """Symbols sampled from a next-symbol model after reading `prime` (ids).

  Returns:
    `[n]` int32 sampled ids.
  """
  params = jax.tree.map(jnp.asarray, params)
  unit = rnn.unit_for_init(init)
  one_hot = lambda i: jax.nn.one_hot(i, vocab_size, dtype=jnp.float32)

  def advance(h, i):
    return rnn.activation(unit, h @ params.w_hh + one_hot(i) @ params.w_in + params.b)

  h = jax.lax.fori_loop(
    0,
    len(prime),
    lambda t, h: advance(h, jnp.asarray(prime)[t]),
    jnp.zeros(params.w_hh.shape[0], jnp.float32),
  )

  def body(carry, k):
    h = carry
    i = jax.random.categorical(k, heads.readout(params, h))
    return advance(h, i), i

  _, ids = jax.lax.scan(body, h, jax.random.split(key, n))
  return np.asarray(ids, np.int32)
