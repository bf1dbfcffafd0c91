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


def _omega_from_norms(num_sq, den_sq, mask, form, bound):
  """Ω from the squared norms of numerators and denominators, `[T, B]` each.

  `original`: entries t = 0 … T−1, ratio of squared norms, mean over kept entries.
  `paper`: entries t = 1 … T−1 (k = t − 1), ratio of norms, sum over t, mean over batch.
  """
  if form == "original":
    kept = mask & (den_sq >= bound)
    ratio = num_sq / jnp.where(kept, den_sq, 1.0)
    n_kept = jnp.sum(kept)
    terms = jnp.where(kept, (ratio - 1.0) ** 2, 0.0)
    return jnp.sum(terms) / jnp.maximum(n_kept, 1), n_kept / kept.size
  if form == "paper":
    num_sq, den_sq, mask = num_sq[1:], den_sq[1:], mask[1:]
    kept = mask & (den_sq >= bound)
    ratio = _safe_sqrt(num_sq / jnp.where(kept, den_sq, 1.0))
    terms = jnp.where(kept, (ratio - 1.0) ** 2, 0.0)
    return jnp.sum(terms) / mask.shape[1], jnp.sum(kept) / kept.size
  raise ValueError(f"unknown Omega form {form!r}; choose one of {OMEGA_FORMS}")


def _sq(a):
  return jnp.sum(a * a, axis=-1)


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
  """Ω as a function of `w_hh` alone, everything else held constant (the definition).

  Args:
    w_hh: `[H, H]` recurrent weights (row-vector convention of `rnn_dynamics.rnn`).
    dx_TxBxH: `∂E/∂x_t`, from `rnn.loss_and_grads`.
    dh_TxBxH: `∂E/∂h_t`, from `rnn.loss_and_grads`.
    dsigma_TxBxH: `σ'(x_t)`.
    mask_TxB: valid steps.
    form: `"original"` or `"paper"` (module docstring).
    bound: entries whose denominator has squared norm below this are skipped.

  Returns:
    `(Ω, kept_fraction)`: the value and the share of entries kept — the original code's
    "steps in the past" diagnostic.
  """
  dx, dh, dsigma = jax.lax.stop_gradient((dx_TxBxH, dh_TxBxH, dsigma_TxBxH))
  back = dx @ w_hh.T
  if form == "paper":
    dsigma_prev = jnp.concatenate([jnp.zeros_like(dsigma[:1]), dsigma[:-1]])
    return _omega_from_norms(_sq(back * dsigma_prev), _sq(dx), mask_TxB, form, bound)
  return _omega_from_norms(_sq(back), _sq(dh), mask_TxB, form, bound)


def omega_and_grad(
  w_hh: jax.Array,
  adjoints,
  dsigma_TxBxH: jax.Array,
  mask_TxB: jax.Array,
  *,
  form: OmegaForm = "original",
  bound: float = 1e-20,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Ω, its immediate gradient `∂⁺Ω/∂w_hh` (eq. 10) and the kept fraction, fast.

  Uses the squared norms the backward scan already produced (`rnn.Adjoints`). Ω depends
  on `w_hh` only through `back = dx @ w_hhᵀ`, so with `g = ∂Ω/∂‖·‖²` per entry:

  * original: `∂Ω/∂back = 2g·back`, hence `∂⁺Ω/∂w_hh = w_hh @ (dxᵀ diag(2g) dx)` — one
    `[H, T·B] × [T·B, H]` matmul, `back` itself is never formed;
  * paper: `∂Ω/∂back = 2g·σ'(x_{t-1})²·back`, hence `(…)ᵀ @ dx`.

  Args:
    w_hh: `[H, H]` recurrent weights.
    adjoints: `rnn.Adjoints` from `rnn.loss_and_grads` (held constant).
    dsigma_TxBxH: `σ'(x_t)` (`forward.unroll.dsigma_TxBxH`).
    mask_TxB: valid steps.
    form, bound: as in `omega`.
  """
  a = jax.lax.stop_gradient(adjoints)
  dx = a.dx_TxBxH
  flat = lambda v: v.reshape(-1, v.shape[-1])
  if form == "original":
    (value, kept), g = jax.value_and_grad(_omega_from_norms, has_aux=True)(
      a.back_sq_TxB, a.dh_sq_TxB, mask_TxB, form, bound
    )
    weighted = flat(2.0 * g[..., None] * dx)
    return value, w_hh @ (weighted.T @ flat(dx)), kept
  if form == "paper":
    (value, kept), g = jax.value_and_grad(_omega_from_norms, has_aux=True)(
      a.back_act_sq_TxB, _sq(dx), mask_TxB, form, bound
    )
    dsigma = jax.lax.stop_gradient(dsigma_TxBxH)
    dsigma_prev = jnp.concatenate([jnp.zeros_like(dsigma[:1]), dsigma[:-1]])
    g_back = 2.0 * g[..., None] * dsigma_prev * dsigma_prev * a.back_TxBxH
    return value, flat(g_back).T @ flat(dx), kept
  raise ValueError(f"unknown Omega form {form!r}; choose one of {OMEGA_FORMS}")
