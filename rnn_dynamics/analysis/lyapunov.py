"""Lyapunov exponents of an input-driven recurrent network by repeated QR, and flossing.

The top-k Lyapunov exponents of `h_t = F(h_{t-1}, x_t)` along a trajectory are the growth
rates, in natural log per step, of a k-dimensional basis carried by the one-step
Jacobians `J_t = ∂h_t/∂h_{t-1}`. Benettin's method keeps that basis orthonormal: at every
step `J_t Q_{t-1} = Q_t R_t` (QR, diagonal of `R_t` made positive) and
`λ_i ≈ (1/T) Σ_t log R_t[i, i]`. The product of the `R_t` is the triangular factor of
`J_T ⋯ J_1 Q_0`, so nothing overflows however long the horizon (docs/reference.md §6).

`lyapunov_spectrum` is the generic core: it takes a `Tangent`, a map
`(h, x, Q) -> (F(h, x), J Q)`. `jvp_tangent` builds one for any cell from its step
function by forward-mode differentiation; `rnn_tangent` is the hand-written one of the
paper's network. `rnn_spectrum` / `rnn_lyapunov_exponents` run a batch of sequences
through a `rnn.Params` network, and `flossing_loss` is the differentiable penalty
`Σ_i λ_i²` of gradient flossing.

The state here is the network's output state `h_t = σ(a_t)`, `a_t = h_{t-1} @ w_hh +
u_t @ w_in + b`, which `rnn.unroll` carries (from `h_{-1} = 0`), so
`J_t = diag(σ'(a_t)) W_rec` with `W_rec = w_hhᵀ`. The pre-activation map of `rnn.step` is
conjugate to it through `σ` and has the same exponents.

References:
  docs/reference.md §6 (Lyapunov exponents, repeated QR, gradient flossing).
  Benettin, Galgani, Giorgilli & Strelcyn (1980), Lyapunov characteristic exponents for
  smooth dynamical systems, Meccanica 15.
  Engelken, Wolf & Abbott (2023), Lyapunov spectra of chaotic recurrent neural networks,
  Phys. Rev. Research 5.
  Engelken (2023), Gradient flossing: improving gradient descent through dynamic control
  of Jacobians, NeurIPS.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from rnn_dynamics import rnn

__all__ = [
  "Spectrum",
  "Step",
  "Tangent",
  "default_basis",
  "flossing_loss",
  "jvp_tangent",
  "lyapunov_spectrum",
  "positive_qr",
  "rnn_lyapunov_exponents",
  "rnn_spectrum",
  "rnn_tangent",
  "rnn_transition",
  "training_warmup",
]

Step = Callable[[jax.Array, jax.Array], jax.Array]
"""`(h_H, x_I) -> h_next_H`: one transition of a single sequence."""

Tangent = Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
"""`(h_H, x_I, q_HxK) -> (h_next_H, J q_HxK)` with `J = ∂h_next/∂h` at `(h, x)`."""


class Spectrum(NamedTuple):
  """What `lyapunov_spectrum` measures along one trajectory.

  Attributes:
    exponents_K: the k exponents, natural-log growth per step, sorted descending.
    running_TxK: `running[t, i]`, the estimate of column i of the basis after `t + 1`
      accumulated steps (the time average of `log R[i, i]`). Columns are in the basis's
      order, not sorted: `Σ_{i≤j} running[t, i]` is the growth rate of the volume spanned
      by the first j columns, which is what the method guarantees at finite horizons.
    h_H: the state after the last step.
    q_HxK: the orthonormal basis after the last step (the k leading backward Lyapunov
      vectors, once converged); a later call can continue from `(h_H, q_HxK)`.
  """

  exponents_K: jax.Array
  running_TxK: jax.Array
  h_H: jax.Array
  q_HxK: jax.Array


def positive_qr(a_HxK: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Reduced QR with the diagonal of `R` made non-negative.

  Flipping the sign of column i of `Q` and row i of `R` leaves `Q R` unchanged, so this is
  still a QR factorisation; with `diag R ≥ 0` it is the unique one (for full column rank),
  `log diag R` is defined, and the basis is a continuous function of the input.

  Returns:
    `(q_HxK, r_diag_K)`: the orthonormal factor and the diagonal of `R`.
  """
  q, r = jnp.linalg.qr(a_HxK, mode="reduced")
  r_diag = jnp.diagonal(r)
  # sign(0) would be 0 and zero a column of Q; a zero pivot keeps its sign (+1) instead.
  sign = jnp.where(r_diag < 0, -1.0, 1.0).astype(r_diag.dtype)
  return q * sign[None, :], r_diag * sign


def default_basis(n: int, k: int, dtype=None) -> jax.Array:
  """A fixed generic orthonormal `[n, k]` basis (QR of a Gaussian matrix, key 0).

  Not the first k axes: an axis-aligned basis can lie in an invariant subspace (e.g. of a
  diagonal map) and then never sees the faster directions.
  """
  dtype = dtype or jnp.zeros(()).dtype
  return positive_qr(jax.random.normal(jax.random.key(0), (n, k), dtype))[0]


def training_warmup(n_steps: int) -> int:
  """The warm-up of exponents measured while training (flossing, the traces): a quarter
  of the sequence's steps, so that the basis has turned towards the fast directions
  before accumulating and most of a short sequence still counts (the flossing source
  runs 16 of 55 steps first; docs/reference.md §6)."""
  return int(n_steps) // 4


def jvp_tangent(step: Step) -> Tangent:
  """The `Tangent` of any cell, from its step function by forward-mode differentiation.

  One linearisation per step, pushed along the k columns of the basis with `vmap`; the
  Jacobian is never formed.
  """

  def tangent(h_H, x_I, q_HxK):
    h_next, push = jax.linearize(lambda h: step(h, x_I), h_H)
    return h_next, jax.vmap(push, in_axes=1, out_axes=1)(q_HxK)

  return tangent


def lyapunov_spectrum(
  tangent: Tangent,
  h0_H: jax.Array,
  xs_TxI: jax.Array,
  k: int,
  *,
  warmup: int = 0,
  horizon: int | None = None,
  valid_T: jax.Array | None = None,
  q0_HxK: jax.Array | None = None,
) -> Spectrum:
  """The top-k Lyapunov exponents along one input-driven trajectory, by repeated QR.

  The first `warmup` steps advance the state and the basis (re-orthonormalised at every
  step) without accumulating, so that the basis has turned towards the fastest-growing
  directions before measuring; the next `horizon` steps accumulate `log R[i, i]`.
  The basis is re-orthonormalised at every step: with k ≤ 5 columns the QR costs less
  than the Jacobian product, and it keeps columns from collapsing onto each other however
  far apart the exponents are.

  Jit- and vmap-able (`k`, `warmup` and `horizon` are static), and differentiable:
  `jnp.linalg.qr` has a derivative, so the exponents can be part of a loss. A zero pivot
  is floored at the dtype's smallest normal number (finite exponents, but no useful
  gradient there: the QR derivative divides by the pivots).

  Args:
    tangent: `(h, x, q) -> (F(h, x), J q)`, e.g. `jvp_tangent(step)` or `rnn_tangent`.
    h0_H: the initial state.
    xs_TxI: the inputs; the first `warmup + horizon` steps are used.
    k: how many exponents, `1 ≤ k ≤ H`.
    warmup: steps run before accumulation starts.
    horizon: steps accumulated (default: all after the warm-up).
    valid_T: optional bool mask, a valid prefix as in `rnn.unroll`: on invalid steps the
      state and basis are held and nothing is accumulated; each exponent is the mean over
      the valid accumulated steps (0 if there are none).
    q0_HxK: the initial orthonormal basis (default `default_basis`).

  Returns:
    A `Spectrum`.

  References:
    docs/reference.md §6; Benettin et al. (1980).
  """
  n_steps, n_hidden = xs_TxI.shape[0], h0_H.shape[-1]
  horizon = n_steps - warmup if horizon is None else horizon
  if warmup < 0 or horizon < 1 or warmup + horizon > n_steps:
    raise ValueError(f"need 0 ≤ warmup, 1 ≤ horizon, warmup + horizon ≤ {n_steps}")
  if not 1 <= k <= n_hidden:
    raise ValueError(f"need 1 ≤ k ≤ {n_hidden}, got k = {k}")
  q0 = default_basis(n_hidden, k, h0_H.dtype) if q0_HxK is None else q0_HxK
  valid_T = jnp.ones((n_steps,), bool) if valid_T is None else valid_T

  def advance(carry, inputs):
    h, q = carry
    x, ok = inputs
    h_next, jq_HxK = tangent(h, x, q)
    q_next, r_diag = positive_qr(jq_HxK)
    carry = (jnp.where(ok, h_next, h), jnp.where(ok, q_next, q))
    # A zero pivot (e.g. every unit saturated, σ' = 0 in float32) would give −inf and
    # poison a whole batch's mean; it counts as the smallest normal number instead.
    log_r = jnp.log(jnp.maximum(r_diag, jnp.finfo(r_diag.dtype).tiny))
    return carry, jnp.where(ok, log_r, 0.0)

  warm = slice(0, warmup)
  carry, _ = jax.lax.scan(advance, (h0_H, q0), (xs_TxI[warm], valid_T[warm]))
  kept = slice(warmup, warmup + horizon)
  (h, q), log_r_TxK = jax.lax.scan(advance, carry, (xs_TxI[kept], valid_T[kept]))
  count_T = jnp.cumsum(valid_T[kept]).astype(log_r_TxK.dtype)
  running_TxK = jnp.cumsum(log_r_TxK, axis=0) / jnp.maximum(count_T, 1.0)[:, None]
  exponents_K = -jnp.sort(-running_TxK[-1])
  return Spectrum(exponents_K, running_TxK, h, q)


# --- the paper's network ----------------------------------------------------------------


def rnn_transition(params: rnn.Params, unit: rnn.Unit) -> Step:
  """`h_t = σ(h_{t-1} @ w_hh + u_t @ w_in + b)`: one step of `rnn.unroll` for one sequence."""
  return lambda h_H, u_I: rnn.activation(unit, h_H @ params.w_hh + u_I @ params.w_in + params.b)


def rnn_tangent(params: rnn.Params, unit: rnn.Unit) -> Tangent:
  """The hand-written `Tangent` of the paper's network: `J q = diag(σ'(a_t)) W_rec q`.

  `∂h_t[i]/∂h_{t-1}[j] = σ'(a_t[i]) w_hh[j, i]`, so `J = diag(σ'(a_t)) w_hhᵀ`; one
  `[H, H] × [H, k]` matmul per step, σ' from the same tanh as σ.
  """

  def tangent(h_H, u_I, q_HxK):
    a_H = h_H @ params.w_hh + u_I @ params.w_in + params.b
    h_next, dsigma_H = rnn.activation_and_derivative(unit, a_H)
    return h_next, dsigma_H[:, None] * (params.w_hh.T @ q_HxK)

  return tangent


@functools.partial(jax.jit, static_argnames=("k", "warmup", "horizon", "jacobian"))
def rnn_spectrum(
  params: rnn.Params,
  unit: rnn.Unit,
  inputs_TxBxI: jax.Array,
  k: int,
  *,
  warmup: int = 0,
  horizon: int | None = None,
  mask_TxB: jax.Array | None = None,
  h0_BxH: jax.Array | None = None,
  jacobian: Literal["analytic", "jvp"] = "analytic",
) -> Spectrum:
  """`lyapunov_spectrum` of the paper's network for each sequence of a time-major batch.

  Args:
    params, unit: the network.
    inputs_TxBxI: time-major inputs, as in `rnn.unroll`.
    k, warmup, horizon: as in `lyapunov_spectrum` (static).
    mask_TxB: valid steps (default all).
    h0_BxH: initial states `h_{-1}` (default zeros, as in training).
    jacobian: `"analytic"` (`rnn_tangent`) or `"jvp"` (`jvp_tangent(rnn_transition)`).

  Returns:
    A `Spectrum` whose fields have a leading batch axis (`exponents` is `[B, K]`, ...).
  """
  n_steps, batch, _ = inputs_TxBxI.shape
  if jacobian == "analytic":
    tangent = rnn_tangent(params, unit)
  elif jacobian == "jvp":
    tangent = jvp_tangent(rnn_transition(params, unit))
  else:
    raise ValueError(f"jacobian must be 'analytic' or 'jvp', got {jacobian!r}")
  if h0_BxH is None:
    h0_BxH = jnp.zeros((batch, params.w_hh.shape[0]), inputs_TxBxI.dtype)
  if mask_TxB is None:
    mask_TxB = jnp.ones((n_steps, batch), bool)
  one = functools.partial(lyapunov_spectrum, tangent, k=k, warmup=warmup, horizon=horizon)
  return jax.vmap(lambda h0, xs, valid: one(h0, xs, valid_T=valid), in_axes=(0, 1, 1))(
    h0_BxH, inputs_TxBxI, mask_TxB
  )


def rnn_lyapunov_exponents(
  params: rnn.Params,
  unit: rnn.Unit,
  inputs_TxBxI: jax.Array,
  k: int,
  *,
  warmup: int = 0,
  horizon: int | None = None,
  mask_TxB: jax.Array | None = None,
  h0_BxH: jax.Array | None = None,
) -> jax.Array:
  """`[K]`: the top-k exponents of the paper's network, averaged over a batch of sequences.

  Each sequence's exponents are sorted before averaging. For use during training, a few
  sequences (e.g. 8) and k ≤ 5 suffice; vmap over stacked `params` for many runs.
  """
  spectrum = rnn_spectrum(
    params,
    unit,
    inputs_TxBxI,
    k,
    warmup=warmup,
    horizon=horizon,
    mask_TxB=mask_TxB,
    h0_BxH=h0_BxH,
  )
  return jnp.mean(spectrum.exponents_K, axis=0)


def flossing_loss(
  params: rnn.Params,
  unit: rnn.Unit,
  inputs_TxBxI: jax.Array,
  k: int,
  *,
  warmup: int = 0,
  horizon: int | None = None,
  mask_TxB: jax.Array | None = None,
  h0_BxH: jax.Array | None = None,
) -> jax.Array:
  """Gradient flossing's penalty: `Σ_{i≤k} λ_i²`, averaged over the batch's sequences.

  Driving the top exponents to 0 makes the Jacobian product (the one BPTT multiplies the
  error signal by) neither grow nor shrink along k directions. The loss is squared per
  sequence, then averaged, so exponents of opposite sign on different sequences do not
  cancel. Differentiable through the QR steps, the warm-up included (the exact gradient of
  this finite-horizon estimate); a pure function of `params`, to be added to a loss.

  In a chaotic network the estimate depends on the trajectory, whose sensitivity to the
  parameters grows like `e^{λ₁ T}`, so this gradient can be very large: a trainer should
  clip it like any other (docs/reference.md §2).

  References:
    docs/reference.md §6; Engelken (2023), Gradient flossing.
  """
  spectrum = rnn_spectrum(
    params,
    unit,
    inputs_TxBxI,
    k,
    warmup=warmup,
    horizon=horizon,
    mask_TxB=mask_TxB,
    h0_BxH=h0_BxH,
  )
  return jnp.mean(jnp.sum(spectrum.exponents_K**2, axis=-1))
