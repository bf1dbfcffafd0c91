"""A short SGD run kept step by step, and the curvature, ρ and Ω measured along it.

Checking the paper's §2.3 hypothesis on a real model — where the gradient spikes, the
curvature spikes with it, along the same direction — needs the leading Hessian eigenpair
at many points of one training run, on the minibatch each step was trained on. So the
run here is a plain `lax.scan` of SGD (or SGD-C) steps that keeps every step's
parameters and data keys; `curvature` and `mechanics` then measure ‖g‖, λ₁, the
gradient/eigenvector alignment, the spectral radius ρ and Ω (eq. 9) every few steps.

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, §2.3, §3.2 (Algorithm 1, norm clipping) and eq. (9); docs/reference.md §2
  (clipping, Ω) and §5 (the curvature hypothesis, with Figure 6).
"""

from __future__ import annotations

import time

import jax
import numpy as np
import optax

from rnn_dynamics import rnn
from rnn_dynamics.analysis import curvature, mechanics

__all__ = ["measure_training", "train_inline"]


def _loss(params, unit, batch, head):
  return rnn.loss_fn(params, unit, batch, head)[0]


def train_inline(config, task, key):
  """A few hundred SGD steps (norm-clipped at `clip_threshold`; 0: none); returns every
  step's params, loss, gradient norm, key.

  Not `train.make_train`: the curvature history needs every step's parameters and the
  minibatch each step saw, which the sweep trainer (chunks, a length schedule, the
  success test) neither keeps nor draws the same way, so its results would change.
  """
  unit = rnn.unit_for_init(config.init)
  k_init, k_data = jax.random.split(key)
  params = rnn.init_params(k_init, task.n_in, config.n_hidden, task.n_out, config.init)
  buffer = task.buffer_length(config.length)
  tx = optax.sgd(config.learning_rate)
  if config.clip_threshold > 0:
    tx = optax.chain(optax.clip_by_global_norm(config.clip_threshold), tx)

  @jax.jit
  def run(params, keys):
    def body(carry, k):
      params, state = carry
      batch = task.sample(k, config.batch_size, config.length, buffer)
      loss, grads = jax.value_and_grad(_loss)(params, unit, batch, task.head)
      updates, state = tx.update(grads, state, params)
      return (optax.apply_updates(params, updates), state), (params, loss, optax.global_norm(grads))

    return jax.lax.scan(body, (params, tx.init(params)), keys)

  keys = jax.random.split(k_data, config.updates)
  (final, _), (params_S, loss_S, gnorm_S) = run(params, keys)
  return final, unit, params_S, np.asarray(loss_S), np.asarray(gnorm_S), keys


def measure_training(config, task, key) -> tuple[rnn.Params, rnn.Unit, rnn.Params, dict, dict]:
  """Trains inline and measures ‖g‖, λ₁, alignment, ρ and Ω every `curvature_every` steps.

  Returns:
    `(params, unit, params at the start, history arrays, summary entries)`.
  """
  buffer = task.buffer_length(config.length)
  t0 = time.time()
  params, unit, params_S, loss_S, gnorm_S, keys = train_inline(config, task, key)
  summary: dict = {"train_seconds": time.time() - t0}
  params_start = jax.tree.map(lambda a: a[0], params_S)
  idx = np.arange(0, config.updates, config.curvature_every)
  snaps = jax.tree.map(lambda a: a[idx], params_S)

  # Curvature at each snapshot on the minibatch that step was trained on.
  @jax.jit
  def diag(p, k):
    batch = task.sample(k, config.batch_size, config.length, buffer)
    c = curvature.curvature_diagnostics(
      lambda q: _loss(q, unit, batch, task.head),
      p,
      jax.random.fold_in(k, 1),
      config.lanczos_iters,
    )
    return c, mechanics.omega_terms(p, unit, batch, task.head)

  curv, omega = jax.lax.map(lambda pk: diag(*pk), (snaps, keys[idx]))
  history = {
    "step": np.arange(config.updates),
    "loss_all": loss_S,
    "grad_norm_all": gnorm_S,
    "curv_step": idx,
    "grad_norm": np.asarray(curv.grad_norm),
    "top_eigenvalue": np.asarray(curv.top_eigenvalue),
    "alignment": np.asarray(curv.alignment),
    "grad_curvature": np.asarray(curv.grad_curvature),
    "spectral_radius": np.asarray(rnn.spectral_radius(snaps.w_hh)),
    "omega": np.asarray(omega["omega"]),
    "omega_mean": np.asarray(omega["omega_mean"]),
  }
  summary["curvature"] = curvature.spike_statistics(
    history["grad_norm"],
    history["top_eigenvalue"],
    history["alignment"],
    config.spike_factor,
    config.spike_window,
  )
  summary["spectral_radius_start_end"] = [
    float(history["spectral_radius"][0]),
    float(history["spectral_radius"][-1]),
  ]
  return params, unit, params_start, history, summary
