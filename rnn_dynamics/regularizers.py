"""The vanishing-gradient regularizer Ω, computed from the saved BPTT adjoints.

Ω asks the backward pass to preserve the norm of the error signal from one step to the
previous one. Only its "immediate" derivative w.r.t. the recurrent weights is used
(paper eq. 10): the adjoints and the states are held constant (`stop_gradient`), so Ω
costs a couple of `[T·B, H] × [H, H]` matmuls on top of the ordinary backward pass that
already produced the adjoints.

Two forms, selected by `form`:

* `"paper"` — eq. (9): with `δ_t = ∂E/∂x_t` (pre-activation adjoint),
  `Ω = Σ_{k} (‖(δ_{k+1} W_hhᵀ) ⊙ σ'(x_k)‖ / ‖δ_{k+1}‖ − 1)²`, summed over the time steps
  `k = 0 … T−2` of each sequence and averaged over the batch.
* `"original"` — the authors' Theano code, which produced the published curves: with
  `δʰ_t = ∂E/∂h_t` (post-activation adjoint), the ratio of *squared* norms
  `‖(δʰ_t ⊙ σ'(x_t)) W_hhᵀ‖² / ‖δʰ_t‖²` for every step `t = 0 … T−1`, and a *mean* over
  the kept (step, sequence) pairs. The published α values were tuned with this form.

In both forms an entry is skipped when its denominator's squared norm is below `bound`
(1e-20 in the original code), and padded steps never count.

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, ICML, §3.3, eqs. (9)-(10); pascanur/trainingRNNs, RNN.py.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

__all__ = ["OmegaForm", "OMEGA_FORMS", "omega", "omega_and_grad"]

OmegaForm = Literal["original", "paper"]
OMEGA_FORMS = ("original", "paper")


def _safe_sqrt(x: jax.Array) -> jax.Array:
  # sqrt has an infinite derivative at 0; the double `where` keeps the gradient finite.
  positive = x > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def omega(
  w_hh: jax.Array,
  dx_TxBxH: jax.Array,
  dh_TxBxH: jax.Array,
  dsigma_TxBxH: jax.Array,
  mask_TxB: jax.Array,
  *,
  form: OmegaForm = "original",
  bound: float = 1e-20,
) -> tuple[jax.Array, jax.Array]:
  """Ω as a function of `w_hh` alone, everything else held constant.

  Args:
    w_hh: `[H, H]` recurrent weights (row-vector convention of `rnn_dynamics.rnn`).
    dx_TxBxH: `∂E/∂x_t`, from `rnn.loss_and_grads`.
    dh_TxBxH: `∂E/∂h_t`, from `rnn.loss_and_grads`.
    dsigma_TxBxH: `σ'(x_t)`.
    mask_TxB: valid steps.
    form: `"original"` or `"paper"` (module docstring).
    bound: entries whose denominator has squared norm below this are skipped.

  Returns:
    `(Ω, kept_fraction)`: the value and the share of (step, sequence) entries kept — the
    original code's "steps in the past" diagnostic.
  """
  dx, dh, dsigma = jax.lax.stop_gradient((dx_TxBxH, dh_TxBxH, dsigma_TxBxH))
  # What the error at step t sends back through the recurrence, before σ'(x_{t-1}).
  back_TxBxH = dx @ w_hh.T
  if form == "original":
    den = jnp.sum(dh * dh, axis=-1)
    kept = mask_TxB & (den >= bound)
    ratio = jnp.sum(back_TxBxH * back_TxBxH, axis=-1) / jnp.where(kept, den, 1.0)
    terms = jnp.where(kept, (ratio - 1.0) ** 2, 0.0)
    n_kept = jnp.sum(kept)
    value = jnp.sum(terms) / jnp.maximum(n_kept, 1)
    return value, n_kept / kept.size
  if form == "paper":
    # k = t − 1 for t = 1 … T−1: δ_{k+1} = dx[t], σ'(x_k) = dsigma[t − 1].
    carried = back_TxBxH[1:] * dsigma[:-1]
    den = jnp.sum(dx[1:] * dx[1:], axis=-1)
    kept = mask_TxB[1:] & (den >= bound)
    ratio = _safe_sqrt(jnp.sum(carried * carried, axis=-1) / jnp.where(kept, den, 1.0))
    terms = jnp.where(kept, (ratio - 1.0) ** 2, 0.0)
    batch = mask_TxB.shape[1]
    return jnp.sum(terms) / batch, jnp.sum(kept) / kept.size
  raise ValueError(f"unknown Omega form {form!r}; choose one of {OMEGA_FORMS}")


def omega_and_grad(
  w_hh: jax.Array,
  dx_TxBxH: jax.Array,
  dh_TxBxH: jax.Array,
  dsigma_TxBxH: jax.Array,
  mask_TxB: jax.Array,
  *,
  form: OmegaForm = "original",
  bound: float = 1e-20,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Ω, its immediate gradient `∂⁺Ω/∂w_hh` (eq. 10) and the kept fraction."""
  (value, kept), grad = jax.value_and_grad(omega, has_aux=True)(
    w_hh, dx_TxBxH, dh_TxBxH, dsigma_TxBxH, mask_TxB, form=form, bound=bound
  )
  return value, grad, kept
