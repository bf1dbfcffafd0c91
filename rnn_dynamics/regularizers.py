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

Both forms are defined for any recurrence `c_t = F_θ(c_{t-1}, u_t)` with `∂x_{k+1}/∂x_k`
read as the transition's Jacobian `∂c_t/∂c_{t-1}` and `δ_t = ∂E/∂c_t`:
`omega_of_transition` computes them from the VJP of `F_θ` at the saved carries, for any
cell (`rnn_dynamics.cells`). For the paper's RNN with the pre-activation as its carry it
is the `"paper"` form above, value and gradient; with the post-activation `h` as carry
its value is the `"original"` form's (the authors' code held `σ'(x_t)` constant where the
VJP differentiates it, so the gradients differ there).

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

__all__ = [
  "OMEGA_FORMS",
  "OmegaForm",
  "add_omega_grad",
  "omega",
  "omega_and_grad",
  "omega_and_total_w_hh_grad",
  "omega_of_transition",
]

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


def _back_weights(adjoints, dsigma_TxBxH, mask_TxB, form, bound):
  """Ω, the kept fraction and `G` with `∂Ω/∂back = G ⊙ back`, entry by entry.

  Ω depends on `w_hh` only through `back = dx @ w_hhᵀ` (`rnn.Adjoints`), through the
  squared norm of `back` (original form) or of `back ⊙ σ'(x_{t-1})` (paper form); with
  `g = ∂Ω/∂‖·‖²` per (step, sequence), `G = 2g` or `2g·σ'(x_{t-1})²`.
  """
  a = jax.lax.stop_gradient(adjoints)
  if form == "original":
    (value, kept), g = jax.value_and_grad(_omega_from_norms, has_aux=True)(
      a.back_sq_TxB, a.dh_sq_TxB, mask_TxB, form, bound
    )
    return value, kept, 2.0 * g[..., None]
  if form == "paper":
    (value, kept), g = jax.value_and_grad(_omega_from_norms, has_aux=True)(
      a.back_act_sq_TxB, _sq(a.dx_TxBxH), mask_TxB, form, bound
    )
    dsigma = jax.lax.stop_gradient(dsigma_TxBxH)
    dsigma_prev = jnp.concatenate([jnp.zeros_like(dsigma[:1]), dsigma[:-1]])
    return value, kept, 2.0 * g[..., None] * dsigma_prev * dsigma_prev
  raise ValueError(f"unknown Omega form {form!r}; choose one of {OMEGA_FORMS}")


def _flat(v: jax.Array) -> jax.Array:
  return v.reshape(-1, v.shape[-1])


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

  Uses what the backward scan already produced (`rnn.Adjoints`): with `back = dx @
  w_hhᵀ` and `∂Ω/∂back = G ⊙ back` (`G` from the squared norms, see `_back_weights`),
  `∂⁺Ω/∂w_hh = (G ⊙ back)ᵀ @ dx` — one `[H, T·B] × [T·B, H]` matmul. Training adds it to
  the weight gradient in the same product instead: `omega_and_total_w_hh_grad`.

  Args:
    w_hh: `[H, H]` recurrent weights (Ω depends on them through `adjoints.back_TxBxH`).
    adjoints: `rnn.Adjoints` from `rnn.loss_and_grads` (held constant).
    dsigma_TxBxH: `σ'(x_t)` (`forward.unroll.dsigma_TxBxH`).
    mask_TxB: valid steps.
    form, bound: as in `omega`.
  """
  del w_hh
  value, kept, g = _back_weights(adjoints, dsigma_TxBxH, mask_TxB, form, bound)
  a = jax.lax.stop_gradient(adjoints)
  return value, _flat(g * a.back_TxBxH).T @ _flat(a.dx_TxBxH), kept


def omega_and_total_w_hh_grad(
  forward,
  mask_TxB: jax.Array,
  alpha: jax.typing.ArrayLike,
  *,
  loss_scale: jax.typing.ArrayLike = 1.0,
  form: OmegaForm = "original",
  bound: float = 1e-20,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Ω and the training gradient of `w_hh`, `s·∂E/∂w_hh + α ∂⁺Ω/∂w_hh`, as ONE matmul.

  The error gradient is `h_prevᵀ @ dx` and Ω's immediate gradient `(G ⊙ back)ᵀ @ dx`
  (`omega_and_grad`): both have the same right factor, so their sum is
  `(s·h_prev + α G ⊙ back)ᵀ @ dx`, a product of the weight gradient's own size; the
  left factor is element-wise work on what the forward and backward scans kept. With
  α = 0 it is the error gradient exactly (finite entries), so runs with and without Ω
  share one program.

  Args:
    forward: `rnn.Forward` from `rnn.loss_and_grads` (held constant).
    mask_TxB: valid steps.
    alpha: Ω's weight (may be traced, per run).
    loss_scale: `s`, a factor on the error gradient (e.g. to turn the mean cost that
      `loss_and_grads` differentiates into a summed one).
    form, bound: as in `omega`.

  Returns:
    `(Ω, grad_w_hh, kept_fraction)`.

  References:
    Pascanu, Mikolov & Bengio (2013), ICML, §3.3, eqs. (9)-(10).
  """
  adjoints, dsigma = forward.adjoints, forward.unroll.dsigma_TxBxH
  value, kept, g = _back_weights(adjoints, dsigma, mask_TxB, form, bound)
  a = jax.lax.stop_gradient(adjoints)
  h_prev = jax.lax.stop_gradient(forward.h_prev_TxBxH)
  scaled = h_prev if _is_one(loss_scale) else h_prev * loss_scale
  left = scaled + alpha * (g * a.back_TxBxH)
  return value, _flat(left).T @ _flat(a.dx_TxBxH), kept


def _is_one(x) -> bool:
  # A literal 1 leaves h_prev untouched (bit-identical error gradient); anything else,
  # traced or not, multiplies.
  return isinstance(x, (int, float)) and x == 1


def add_omega_grad(
  grads,
  forward,
  mask_TxB: jax.Array,
  alpha: jax.typing.ArrayLike,
  *,
  enabled: bool,
  loss_scale: jax.typing.ArrayLike = 1.0,
  form: OmegaForm = "original",
  bound: float = 1e-20,
):
  """`(grads + α ∂⁺Ω/∂W_hh, Ω)`: what both trainers do to the error gradient (eq. 10).

  Only W_rec gets Ω's immediate gradient, inside the weight gradient's own product
  (`omega_and_total_w_hh_grad`; its ratios do not depend on the cost's scale); clipping
  then sees the sum (Algorithm 1 on the full gradient). With `enabled` False (a static
  switch, for programs where every α is 0) Ω is skipped: the gradient is returned as is
  and Ω reads NaN.

  Args:
    grads: `rnn.Params` of the error gradient from `rnn.loss_and_grads`, already scaled
      by `loss_scale`.
    forward, mask_TxB, alpha, loss_scale, form, bound: as in `omega_and_total_w_hh_grad`.
  """
  if not enabled:
    return grads, jnp.float32(jnp.nan)
  om, w_hh_grad, _ = omega_and_total_w_hh_grad(
    forward, mask_TxB, alpha, loss_scale=loss_scale, form=form, bound=bound
  )
  return grads.replace(w_hh=w_hh_grad), om


def omega_of_transition(
  transition,
  params,
  carries_before,
  adjoints,
  mask_TxB: jax.Array,
  *,
  form: OmegaForm = "original",
  bound: float = 1e-20,
):
  """Ω of any recurrence, and its immediate gradient with respect to `params`.

  Args:
    transition: `transition(params, carries_before) -> carries`, every step of the
      recurrence at once: `c_t = F(params, c_{t-1})` for all `t` (each step depends on
      its own `c_{t-1}` only), on `[T, B, ...]` carry pytrees.
    params: what `transition` is differentiated with respect to.
    carries_before: `c_{t-1}` beside step t (held constant).
    adjoints: `δ_t = ∂E/∂c_t` (held constant), shaped like the carries.
    mask_TxB: valid steps.
    form, bound: as in `omega`.

  The numerator of each entry is `δ_t ∂c_t/∂c_{t-1}`, the VJP of `transition` with
  respect to its carry, so no Jacobian is formed. As in eq. (10) the carries and the
  adjoints are constants: the gradient is Ω's immediate derivative through the
  transition's parameters.

  Returns:
    `(Ω, ∂⁺Ω/∂params, kept_fraction)`.
  """
  before, delta = jax.lax.stop_gradient((carries_before, adjoints))

  def value(p):
    _, vjp = jax.vjp(lambda c: transition(p, c), before)
    (back,) = vjp(delta)
    return _omega_from_norms(_tree_sq(back), _tree_sq(delta), mask_TxB, form, bound)

  (om, kept), grad = jax.value_and_grad(value, has_aux=True)(params)
  return om, grad, kept


def _tree_sq(tree) -> jax.Array:
  """`[T, B]` squared norms of a carry pytree of `[T, B, ...]` leaves."""
  return sum(
    jnp.sum(jnp.square(leaf), axis=tuple(range(2, leaf.ndim))) for leaf in jax.tree.leaves(tree)
  )
