"""Ω and its immediate W_rec gradient against a brute force built from explicit Jacobians.

The reference below never touches `rnn.loss_and_grads` or the regularizer's internals: it
unrolls one example at a time with `rnn.step`, takes every one-step Jacobian with
`jax.jacobian`, runs BPTT as a chain of those matrices (in numpy) and sums the ratio terms
in plain loops, exactly as docs/reference.md §2 words them. Its W_rec gradient is `jax.grad` of the same
loops with the states and adjoints held fixed (the paper's eq. 10).
"""

import functools

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rnn_dynamics import rnn  # noqa: E402
from rnn_dynamics.regularizers import omega, omega_and_grad  # noqa: E402
from rnn_dynamics.tasks.base import Batch  # noqa: E402

T, I, H = 8, 4, 5
BOUND = 1e-20


def _params(seed, n_out, w_hh_std):
  rng = np.random.default_rng(seed)
  f = lambda std, *shape: jnp.asarray(std * rng.standard_normal(shape), jnp.float64)  # noqa: E731
  return rnn.Params(
    w_in=f(1.0, I, H),
    w_hh=f(w_hh_std, H, H),
    b=f(0.3, H),
    w_out=f(1.0, H, n_out),
    b_out=f(0.3, n_out),
  )


_step = jax.jit(rnn.step)
# The code under test, jitted as training jits it (and so the test does not compile
# every eager op separately).
_loss_and_grads = jax.jit(rnn.loss_and_grads, static_argnums=3)
_omega = jax.jit(omega, static_argnames=("form", "bound"))
_omega_grad = jax.jit(
  jax.grad(lambda w, *args, form: omega(w, *args, form=form)[0]), static_argnames="form"
)
_omega_and_grad = jax.jit(omega_and_grad, static_argnames=("form", "bound"))


@jax.jit
def _last_output(params, unit, inputs, mask):
  return rnn.readout(params, rnn.unroll(params, unit, inputs, mask).h_last_BxH)


def _states(params, unit, u_TxI, length):
  """Pre-activations `x_t`, t < length, of one example; `h_{-1} = 0`."""
  xs = [np.asarray(u_TxI[0] @ params.w_in + params.b)]
  for t in range(1, length):
    xs.append(np.asarray(_step(params, unit, xs[-1], u_TxI[t])))
  return xs


# One-step Jacobians, jitted only so the loops below run fast (they are called ~10³ times).
@jax.jit
def _h_jacobian(unit, w_hh, x_t, h_prev):
  """`∂h_t/∂h_{t-1}` at the fixed state `x_t` (W_rec enters linearly, σ' held constant)."""
  f = lambda h: rnn.activation(unit, x_t + (h - h_prev) @ w_hh)  # noqa: E731
  return jax.jacobian(f)(h_prev)


@jax.jit
def _x_jacobian(params, unit, w_hh, x_prev, u):
  """`∂x_t/∂x_{t-1}` of `rnn.step` at the fixed state `x_{t-1}`."""
  return jax.jacobian(rnn.step, argnums=2)(params.replace(w_hh=w_hh), unit, x_prev, u)


@jax.jit
def _act_jacobian(unit, x):
  """`∂h_t/∂x_t`."""
  return jax.jacobian(lambda v: rnn.activation(unit, v))(x)


def _reference(params, unit, batch, head):
  """States and BPTT adjoints of every example by explicit Jacobian chains (numpy).

  Returns a list, one dict per example, with `x` (states), `h_prev`, `u`, `dh` = ∂E/∂h_t
  and `dx` = ∂E/∂x_t for its valid steps.
  """
  u_TxBxI, mask = np.asarray(batch.inputs), np.asarray(batch.mask)
  lengths = mask.sum(0)
  w_out, b_out = np.asarray(params.w_out), np.asarray(params.b_out)
  act = lambda x: np.asarray(rnn.activation(unit, jnp.asarray(x)))  # noqa: E731
  n_batch = mask.shape[1]
  examples = []
  for b in range(n_batch):
    length = int(lengths[b])
    u = u_TxBxI[:, b]
    xs = _states(params, unit, u, length)
    hs = [act(x) for x in xs]
    h_prev = [np.zeros(H)] + hs[:-1]
    # Error injected into h_t by the readout, from the head's formula (docs/reference.md §1).
    inject = np.zeros((length, H))
    if head == "last_linear":
      y = hs[-1] @ w_out + b_out
      inject[-1] = 2.0 * (y - np.asarray(batch.targets)[b]) @ w_out.T / n_batch
    elif head == "all_softmax":
      for t in range(length):
        z = hs[t] @ w_out + b_out
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        p[int(batch.targets[t, b])] -= 1.0
        inject[t] = p @ w_out.T / mask.sum()
    else:
      raise ValueError(head)
    w_hh = params.w_hh
    dact = [np.asarray(_act_jacobian(unit, x)) for x in xs]
    big_k = [np.asarray(_h_jacobian(unit, w_hh, xs[t], h_prev[t])) for t in range(length)]
    big_j = [None] + [
      np.asarray(_x_jacobian(params, unit, w_hh, jnp.asarray(xs[t - 1]), u[t]))
      for t in range(1, length)
    ]
    dh, dx = np.zeros((length, H)), np.zeros((length, H))
    dh[-1], dx[-1] = inject[-1], inject[-1] @ dact[-1]
    for t in range(length - 2, -1, -1):
      dh[t] = inject[t] + dh[t + 1] @ big_k[t + 1]
      dx[t] = inject[t] @ dact[t] + dx[t + 1] @ big_j[t + 1]
    examples.append(dict(x=xs, h_prev=h_prev, u=u, dh=dh, dx=dx))
  return examples


def _brute_omega(w_hh, params, unit, examples, n_steps, form, bound=BOUND):
  """Ω as a function of W_rec alone, states and adjoints fixed: plain loops over (b, t)."""
  terms, n_kept = [], 0
  for ex in examples:
    length = len(ex["x"])
    if form == "original":
      # ( ‖δʰ_t ∂h_t/∂h_{t-1}‖² / ‖δʰ_t‖² − 1 )² for t = 0 … L−1, mean over kept entries.
      for t in range(length):
        den = float(np.sum(ex["dh"][t] ** 2))
        if den < bound:
          continue
        back = ex["dh"][t] @ _h_jacobian(unit, w_hh, ex["x"][t], ex["h_prev"][t])
        terms.append((jnp.sum(back**2) / den - 1.0) ** 2)
        n_kept += 1
    else:
      # ( ‖δ_{k+1} ∂x_{k+1}/∂x_k‖ / ‖δ_{k+1}‖ − 1 )² for k = 0 … L−2, summed, batch mean.
      for k in range(length - 1):
        den = float(np.sum(ex["dx"][k + 1] ** 2))
        if den < bound:
          continue
        jac = _x_jacobian(params, unit, w_hh, jnp.asarray(ex["x"][k]), ex["u"][k + 1])
        back = ex["dx"][k + 1] @ jac
        terms.append((jnp.sqrt(jnp.sum(back**2)) / np.sqrt(den) - 1.0) ** 2)
        n_kept += 1
  n_batch = len(examples)
  total = sum(terms) if terms else jnp.float64(0.0)
  if form == "original":
    return total / max(n_kept, 1), n_kept / (n_steps * n_batch)
  return total / n_batch, n_kept / ((n_steps - 1) * n_batch)


def _tiny_adjoint_case(form):
  """Sigmoid units, `last_linear` head, padded examples, and adjoints of every size.

  The adjoints of an example are linear in its residual `y − target`, so setting the
  target a chosen distance from the output scales them at will: example 0 ordinary,
  example 1 scaled so the bound falls inside its (decaying) adjoint profile, example 2 so
  small that every entry is below the bound, example 3 exactly zero (0/0 must not leak).
  """
  params, unit = _params(0, 2, w_hh_std=0.7), rnn.SIGMOID
  lengths = np.array([8, 7, 8, 6])
  mask = jnp.asarray(np.arange(T)[:, None] < lengths[None, :])
  rng = np.random.default_rng(1)
  inputs = jnp.asarray(rng.standard_normal((T, 4, I)) * np.asarray(mask)[..., None])
  y = np.asarray(_last_output(params, unit, inputs, mask))
  direction = rng.standard_normal(y.shape)
  direction /= np.linalg.norm(direction, axis=1, keepdims=True)
  probe = Batch(inputs, jnp.asarray(y + direction), mask)
  # Squared adjoint norms for a unit residual; place the bound between two of example
  # 1's (the denominator of each form), far from both in log scale.
  ex1 = _reference(params, unit, probe, "last_linear")[1]
  den = np.sum((ex1["dh"] if form == "original" else ex1["dx"][1:]) ** 2, axis=1)
  srt = np.sort(den)
  mid = np.sqrt(srt[len(srt) // 2 - 1] * srt[len(srt) // 2])
  scales = np.array([1.0, np.sqrt(BOUND / mid), 1e-13, 0.0])
  targets = jnp.asarray(y + scales[:, None] * direction)
  return params, unit, Batch(inputs, targets, mask), "last_linear"


def _softmax_case(form):
  """Tanh units, a loss at every step (`all_softmax`), three lengths with padding."""
  del form
  params, unit = _params(2, 3, w_hh_std=0.6), rnn.TANH
  lengths = np.array([8, 5, 2])
  mask = jnp.asarray(np.arange(T)[:, None] < lengths[None, :])
  rng = np.random.default_rng(3)
  inputs = jnp.asarray(rng.standard_normal((T, 3, I)) * np.asarray(mask)[..., None])
  targets = jnp.asarray(rng.integers(0, 3, (T, 3)))
  return params, unit, Batch(inputs, targets, mask), "all_softmax"


CASES = {"tiny_adjoints": _tiny_adjoint_case, "all_steps_softmax": _softmax_case}


@pytest.fixture(params=["original", "paper"])
def form(request):
  return request.param


@functools.cache
def _prepared(name, form):
  params, unit, batch, head = CASES[name](form)
  _, _, fwd = _loss_and_grads(params, unit, batch, head)
  examples = _reference(params, unit, batch, head)
  brute = lambda w: _brute_omega(w, params, unit, examples, T, form)[0]  # noqa: E731
  ref_value, ref_grad = jax.value_and_grad(brute)(params.w_hh)
  ref_kept = _brute_omega(params.w_hh, params, unit, examples, T, form)[1]
  ref = (float(ref_value), np.asarray(ref_grad), ref_kept)
  return params, unit, batch, head, fwd, examples, ref, name


@pytest.fixture(params=list(CASES))
def case(request, form, x64):
  return _prepared(request.param, form)


def test_omega_and_its_gradient_match_the_brute_force(case, form):
  params, unit, batch, head, fwd, examples, (ref_value, ref_grad, ref_kept), name = case
  adj, dsigma = fwd.adjoints, fwd.unroll.dsigma_TxBxH

  # The case must exercise what it claims: kept terms, and (tiny case) skipped ones.
  den = [ex["dh"] if form == "original" else ex["dx"][1:] for ex in examples]
  den_sq = np.concatenate([np.sum(d**2, axis=1) for d in den])
  assert np.sum(den_sq >= BOUND) >= 5
  if name == "tiny_adjoints":
    assert np.sum(den_sq < BOUND) >= 5
    # Example 3's residual is exactly zero, so are its adjoints (0/0 terms).
    assert np.all(np.asarray(adj.dh_TxBxH)[:, 3] == 0.0)
    # Example 1 straddles the bound: some entries kept, some skipped.
    d1 = np.sum(den[1] ** 2, axis=1)
    assert np.any(d1 >= BOUND) and np.any(d1 < BOUND)
  assert float(ref_value) > 1e-3  # not a degenerate zero

  args = (adj.dx_TxBxH, adj.dh_TxBxH, dsigma, batch.mask)
  value, kept = _omega(params.w_hh, *args, form=form)
  grad = _omega_grad(params.w_hh, *args, form=form)
  fast_value, fast_grad, fast_kept = _omega_and_grad(
    params.w_hh, adj, dsigma, batch.mask, form=form
  )

  for v, g, k in [(value, grad, kept), (fast_value, fast_grad, fast_kept)]:
    np.testing.assert_allclose(v, ref_value, rtol=1e-10)
    np.testing.assert_allclose(k, ref_kept, rtol=1e-12)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, ref_grad, rtol=1e-8, atol=1e-12 * np.abs(ref_grad).max())


def test_gradient_is_the_immediate_one(case, form):
  """Differentiating through the adjoints themselves gives only eq. (10)'s gradient."""
  params, unit, batch, head, _, _, (_, ref_grad, _), _ = case

  @jax.jit
  @jax.grad
  def through_everything(w):
    p = params.replace(w_hh=w)
    _, _, f = rnn.loss_and_grads(p, unit, batch, head)
    a = f.adjoints
    return omega(w, a.dx_TxBxH, a.dh_TxBxH, f.unroll.dsigma_TxBxH, batch.mask, form=form)[0]

  np.testing.assert_allclose(
    through_everything(params.w_hh), ref_grad, rtol=1e-8, atol=1e-12 * np.abs(ref_grad).max()
  )


def test_bound_changes_what_is_kept(x64, form):
  """A bound above every denominator keeps nothing: Ω = 0 with a zero gradient."""
  params, _, batch, _, fwd, _, _, _ = _prepared("all_steps_softmax", form)
  value, grad, kept = _omega_and_grad(
    params.w_hh, fwd.adjoints, fwd.unroll.dsigma_TxBxH, batch.mask, form=form, bound=1e10
  )
  assert float(value) == 0.0 and float(kept) == 0.0
  np.testing.assert_array_equal(grad, 0.0)


def test_unknown_form_is_a_clear_error(x64):
  params, _, batch, _, fwd, _, _, _ = _prepared("all_steps_softmax", "paper")
  with pytest.raises(ValueError, match="original"):
    omega_and_grad(params.w_hh, fwd.adjoints, fwd.unroll.dsigma_TxBxH, batch.mask, form="eq9")
