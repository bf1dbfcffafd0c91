"""The mechanics of §2.1: how `‖∂x_t/∂x_k‖` grows or decays with the lag `t − k`.

`∂x_t/∂x_k = Π_{t≥i>k} ∂x_i/∂x_{i−1}` (eq. 5). The one-step Jacobians come from
`jax.jacrev` of the model's own single-example step (`rnn.step`, or `linear_step` for the
linear network the paper analyses first), evaluated along a trajectory; their backward
products are accumulated with a scan and measured in the spectral norm.

For a linear network `‖∂x_t/∂x_k‖ = ‖W^{t−k}‖`, which grows like `ρ^{t−k}` (and equals it
when `W` is normal, e.g. `ρ·Q` with `Q` orthogonal). With `|σ'| ≤ γ` the bound becomes
`(γ ‖W‖)^{t−k}`, so `ρ < 1/γ` (normal `W`) is sufficient for vanishing and `ρ > 1/γ`
necessary for exploding, with `γ = 1` for tanh and `1/4` for the sigmoid.

This module also measures the same quantities in the gradient of a trained network:
the BPTT adjoint norm `‖∂E/∂x_k‖` by lag, and the terms of the Ω regulariser (eq. 9).

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, §2.1, eqs. (5)-(7), (9), and the supplementary material.
  Bengio, Simard & Frasconi (1994), Learning long-term dependencies with gradient
  descent is difficult.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rnn_dynamics import rnn

__all__ = [
  "GAMMA",
  "adjoint_norms_by_lag",
  "decay_rate",
  "jacobian_norms_by_lag",
  "linear_step",
  "omega_terms",
  "scaled_gaussian",
  "scaled_orthogonal",
  "trajectory_jacobians",
]

GAMMA = {"linear": 1.0, "tanh": 1.0, "sigmoid": 0.25}
"""`sup |σ'|` per unit type: the `γ` of the paper's conditions `ρ < 1/γ`."""

Step = Callable[[jax.Array, jax.Array], jax.Array]


def linear_step(params: rnn.Params) -> Step:
  """`x_t = x_{t−1} @ w_hh + u_t @ w_in + b`: eq. (2) with `σ` the identity.

  `rnn.Unit` cannot express the identity exactly, so the linear network of §2.1 gets
  its own step with the same parameters and row-vector convention.
  """
  return lambda x_prev, u: x_prev @ params.w_hh + u @ params.w_in + params.b


def scaled_orthogonal(key: jax.Array, n: int, rho: float) -> jax.Array:
  """`ρ Q` with `Q` Haar-orthogonal: a normal matrix with `‖W^k‖₂ = ρ^k` exactly."""
  q, r = jnp.linalg.qr(jax.random.normal(key, (n, n)))
  return rho * q * jnp.sign(jnp.diag(r))[None, :]


def scaled_gaussian(key: jax.Array, n: int, rho: float) -> jax.Array:
  """A Gaussian matrix rescaled to spectral radius `ρ` (non-normal: `‖W^k‖ ≥ ρ^k`)."""
  w = jax.random.normal(key, (n, n)) / jnp.sqrt(n)
  return w * (rho / rnn.spectral_radius(w))


def trajectory_jacobians(
  step_fn: Step, x0_H: jax.Array, us_TxI: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """States `x_1..x_T` and one-step Jacobians `∂x_t/∂x_{t−1}` along a trajectory.

  Args:
    step_fn: `(x_prev_H, u_I) -> x_H`, e.g. `functools.partial(rnn.step, params, unit)`.
    x0_H: initial state.
    us_TxI: inputs.

  Returns:
    `(xs_TxH, jacobians_TxHxH)` with `jacobians[t] = ∂x_{t+1}/∂x_t` as `[out, in]`.
  """

  def body(x, u):
    x_next = step_fn(x, u)
    return x_next, (x, x_next)

  _, (x_prev_TxH, xs_TxH) = jax.lax.scan(body, x0_H, us_TxI)
  jacobians = jax.vmap(jax.jacrev(step_fn, argnums=0))(x_prev_TxH, us_TxI)
  return xs_TxH, jacobians


def jacobian_norms_by_lag(step_fn: Step, x0_H: jax.Array, us_TxI: jax.Array) -> jax.Array:
  """`‖∂x_T/∂x_{T−l}‖₂` for lags `l = 0..T` along one trajectory (eq. 5).

  Args:
    step_fn: `(x_prev_H, u_I) -> x_H`.
    x0_H: initial state `x_0`.
    us_TxI: inputs `u_1..u_T`.

  Returns:
    `norms_L` with `L = T + 1`; `norms[0] = 1` (the identity).

  References:
    Pascanu et al. (2013), eq. (5) and §2.1.
  """
  _, jac_TxHxH = trajectory_jacobians(step_fn, x0_H, us_TxI)
  eye = jnp.eye(x0_H.shape[0], dtype=jac_TxHxH.dtype)

  def body(prod, jac):
    prod = prod @ jac  # ∂x_T/∂x_{k} = ∂x_T/∂x_{k+1} · ∂x_{k+1}/∂x_k
    return prod, prod

  _, prods = jax.lax.scan(body, eye, jac_TxHxH, reverse=True)
  # prods[k] = ∂x_T/∂x_k; reverse so index = lag.
  prods_LxHxH = jnp.concatenate([eye[None], prods[::-1]], axis=0)
  return jnp.linalg.norm(prods_LxHxH, ord=2, axis=(1, 2))


def decay_rate(norms_L: jax.typing.ArrayLike, skip: int = 1) -> float:
  """Per-step growth factor: `exp` of the least-squares slope of `log ‖·‖` vs lag.

  Below 1 the gradient vanishes, above 1 it explodes. `skip` leaves out the first lags,
  where transients (the norm of a single Jacobian) dominate. Zeros (underflow) are
  ignored.
  """
  norms = np.asarray(norms_L, np.float64)
  lags = np.arange(norms.shape[0])
  keep = (lags >= skip) & (norms > 0) & np.isfinite(norms)
  if keep.sum() < 2:
    return float("nan")
  slope = np.polyfit(lags[keep], np.log(norms[keep]), 1)[0]
  return float(np.exp(slope))


def _last_index(mask_TxB):
  t = jnp.arange(mask_TxB.shape[0])[:, None]
  return jnp.max(jnp.where(mask_TxB, t, -1), axis=0)


def adjoint_norms_by_lag(
  params: rnn.Params, unit: rnn.Unit, batch, head: str
) -> tuple[jax.Array, jax.Array]:
  """Mean `‖∂E/∂x_k‖` as a function of the lag from each sequence's last step.

  The BPTT adjoints come from `rnn.loss_and_grads`; for the `last_*` heads (all the
  error is injected at the end) this is the gradient transported back in time, the
  quantity that vanishes or explodes.

  Returns:
    `(mean_norm_L, count_L)`: for lags `0..T−1`, the mean over sequences that reach
    that lag, and how many do.

  References:
    Pascanu et al. (2013), eqs. (3)-(5).
  """
  _, _, forward = rnn.loss_and_grads(params, unit, batch, head)
  norms_TxB = jnp.linalg.norm(forward.adjoints.dx_TxBxH, axis=-1)
  n_steps = norms_TxB.shape[0]
  lag_TxB = _last_index(batch.mask)[None, :] - jnp.arange(n_steps)[:, None]
  valid = batch.mask & (lag_TxB >= 0)
  lag = jnp.where(valid, lag_TxB, 0).ravel()
  total = jax.ops.segment_sum(jnp.where(valid, norms_TxB, 0.0).ravel(), lag, n_steps)
  count = jax.ops.segment_sum(valid.astype(jnp.float32).ravel(), lag, n_steps)
  return total / jnp.maximum(count, 1.0), count


def omega_terms(params: rnn.Params, unit: rnn.Unit, batch, head: str) -> dict[str, jax.Array]:
  """The norm ratios of eq. (9), `r_k = ‖δ_{k+1} ∂x_{k+1}/∂x_k‖ / ‖δ_{k+1}‖`, and Ω.

  A diagnostic (no gradient is taken): with `δ = ∂E/∂x` from `rnn.loss_and_grads`,
  `δ_{k+1} ∂x_{k+1}/∂x_k = (δ_{k+1} @ w_hhᵀ) ⊙ σ'(x_k)` in the row-vector convention.
  Terms where `‖δ_{k+1}‖² < 1e-20` (as in the original code) or either step is padding
  are left out.

  Returns:
    `{"omega": Σ_k (r_k − 1)² averaged over the batch (eq. 9), "omega_mean": the mean
    over kept (k, b) (the original code's scale, with norms not squared),
    "ratio_mean": the mean r_k}`.

  References:
    Pascanu et al. (2013), §3.3, eq. (9).
  """
  _, _, forward = rnn.loss_and_grads(params, unit, batch, head)
  dx_TxBxH = forward.adjoints.dx_TxBxH
  dsigma_TxBxH = forward.unroll.dsigma_TxBxH
  back_TxBxH = (dx_TxBxH[1:] @ params.w_hh.T) * dsigma_TxBxH[:-1]
  num = jnp.linalg.norm(back_TxBxH, axis=-1)
  den_sq = jnp.sum(dx_TxBxH[1:] ** 2, axis=-1)
  keep = (den_sq >= 1e-20) & batch.mask[1:] & batch.mask[:-1]
  ratio = num / jnp.sqrt(jnp.where(keep, den_sq, 1.0))
  term = jnp.where(keep, (ratio - 1.0) ** 2, 0.0)
  n_keep = jnp.maximum(jnp.sum(keep), 1)
  return {
    "omega": jnp.mean(jnp.sum(term, axis=0)),
    "omega_mean": jnp.sum(term) / n_keep,
    "ratio_mean": jnp.sum(jnp.where(keep, ratio, 0.0)) / n_keep,
  }
