"""Ω and its immediate W_rec gradient against a brute force built from explicit Jacobians.

The reference below never touches `rnn.loss_and_grads` or the regularizer's internals: it
unrolls one example at a time with `rnn.step`, takes every one-step Jacobian with
`jax.jacobian`, runs BPTT as a chain of those matrices (in numpy) and sums the ratio terms
in plain loops, exactly as docs/reference.md §2 words them. Its W_rec gradient is `jax.grad` of the same
loops with the states and adjoints held fixed (the paper's eq. 10).

The last section checks what training feeds the optimizer (`add_omega_grad`, through
`train.make_train`) against `s·∂E/∂W + α·∂⁺Ω/∂W` from a naive unroll, for both forms.
"""

import functools

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rnn_dynamics import algorithms, heads, regularizers, rnn  # noqa: E402
from rnn_dynamics.synthetic import train  # noqa: E402
from rnn_dynamics.regularizers import omega, omega_and_grad  # noqa: E402
from rnn_dynamics.tasks import addition  # noqa: E402
from rnn_dynamics.tasks.base import Batch  # noqa: E402
from conftest import tiny_trainer_config  # noqa: E402

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
  return heads.readout(params, rnn.unroll(params, unit, inputs, mask).h_last_BxH)


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


# --- the gradient training feeds the optimizer ------------------------------------------
#
# The tests above check `omega` / `omega_and_grad`; training uses neither: `train.make_train`
# forms the update gradient with `add_omega_grad` (one fused product). Below, one update of
# the real trainer (SGD at learning rate 1, no clipping, no momentum: the step IS minus the
# gradient it was fed) is compared with `s·∂E/∂W + α·∂⁺Ω/∂W` computed from scratch: the
# loss of a naive Python-loop unroll, its adjoints by `jax.grad` through zero probes, and
# Ω of eq. (9) / the original code as a function of W_hh with those adjoints and σ' held
# constant (docs/reference.md §2, eq. 10).

TRAIN_T, TRAIN_B, TRAIN_H = 30, 6, 6  # addition at T = 30: sequences of 30-32 steps
TRAIN_ALPHA = 3.0


def _train_config(form, **overrides):
  one_update = dict(chunk_size=1, max_updates=1, screen_size=10, eval_size=10, eval_batch=10)
  return tiny_trainer_config(
    task="addition",
    n_hidden=TRAIN_H,
    batch_size=TRAIN_B,
    min_length=TRAIN_T,
    max_length=TRAIN_T,
    omega_form=form,
    omega_bound=BOUND,
    **dict(one_update, **overrides),
  )


def _naive_loss(params, unit, inputs, targets, mask, probe_x, probe_h):
  """`last_linear`'s mean squared error by a plain Python loop over the steps, with zero
  probes added to every valid `x_t` and `h_t` (their gradients are `∂E/∂x_t`, `∂E/∂h_t`)."""
  h = jnp.zeros((inputs.shape[1], params.w_hh.shape[0]), inputs.dtype)
  for t in range(inputs.shape[0]):
    x = h @ params.w_hh + inputs[t] @ params.w_in + params.b[None, :] + probe_x[t]
    valid = mask[t][:, None]
    h = jnp.where(valid, rnn.activation(unit, x) + probe_h[t], h)
  y = h @ params.w_out + params.b_out[None, :]
  return jnp.mean(jnp.sum((y - targets) ** 2, axis=-1))


def _naive_omega(w_hh, dx, dh, dsigma, mask, form):
  """Ω from adjoints and σ' given as constants (numpy), a function of `w_hh` alone."""
  terms, kept = [], 0
  n_steps, n_batch = mask.shape
  for b in range(n_batch):
    if form == "original":
      # mean over kept (t, b) of (‖(δʰ_t ⊙ σ'_t) W_hhᵀ‖² / ‖δʰ_t‖² − 1)²
      for t in range(n_steps):
        den = float(np.sum(dh[t, b] ** 2))
        if mask[t, b] and den >= BOUND:
          num = jnp.sum(((dh[t, b] * dsigma[t, b]) @ w_hh.T) ** 2)
          terms.append((num / den - 1.0) ** 2)
          kept += 1
    else:
      # Σ_k (‖(δ_{k+1} W_hhᵀ) ⊙ σ'(x_k)‖ / ‖δ_{k+1}‖ − 1)², averaged over the batch
      for k in range(n_steps - 1):
        den = float(np.sum(dx[k + 1, b] ** 2))
        if mask[k + 1, b] and den >= BOUND:
          num = jnp.sum(((dx[k + 1, b] @ w_hh.T) * dsigma[k, b]) ** 2)
          terms.append((jnp.sqrt(num) / np.sqrt(den) - 1.0) ** 2)
          kept += 1
  assert kept >= 10  # the case exercises the terms it claims to
  total = sum(terms)
  return total / kept if form == "original" else total / n_batch


def _one_training_update(config, alpha, monkeypatch, seed=0):
  """The trainer's first update with SGD at lr 1 and no clip: (params, fed gradient,
  batch, Ω it logged). Addition draws its actual length per sequence here (the paper's
  text), so the batch mixes lengths under its mask. The recurrent weights are scaled up so
  the adjoints carry over the whole sequence (at the init's scale Ω's terms would all be
  alike)."""
  with monkeypatch.context() as m:
    m.setattr(train, "get_task", lambda name: addition(per_sequence_length=True))
    trainer = train.make_train(config)
  hp = train.HParams(
    lr=jnp.float32(1.0),
    clip=jnp.float32(np.inf),
    alpha=jnp.float32(alpha),
    init=jnp.int32(rnn.init_id("basic_tanh")),
    elementwise=jnp.bool_(False),
    guarded=jnp.bool_(False),
  )
  state = trainer.init(jax.random.PRNGKey(seed), hp)
  params = state.params.replace(w_hh=state.params.w_hh * 9.0, w_in=state.params.w_in * 5.0)
  state = state.replace(params=params)
  after, metrics = jax.jit(trainer.chunk)(state, hp)
  assert int(after.step) == 1 and not bool(after.diverged)
  fed = jax.tree.map(lambda p, q: p - q, params, after.params)
  # The batch that update drew (train.update_at's key schedule, the one bucket's buffer).
  _, _, k_data = jax.random.split(state.key, 3)
  task = trainer.task
  batch = task.sample(k_data, TRAIN_B, jnp.int32(TRAIN_T), task.buffer_length(TRAIN_T))
  return params, fed, batch, float(metrics.omega[0])


def test_training_gradient_is_error_gradient_plus_alpha_omega_gradient(x64, form, monkeypatch):
  config = _train_config(form)
  params, fed, batch, logged_omega = _one_training_update(config, TRAIN_ALPHA, monkeypatch)
  assert params.w_hh.dtype == jnp.float64 and fed.w_hh.dtype == jnp.float64
  inputs, targets, mask = batch.inputs, batch.targets, batch.mask
  lengths = np.asarray(mask).sum(0)
  assert len(set(lengths.tolist())) > 1 and lengths.max() <= mask.shape[0]  # padded, mixed
  unit = rnn.TANH

  zeros = jnp.zeros(inputs.shape[:2] + (TRAIN_H,), inputs.dtype)
  loss = jax.jit(_naive_loss)
  error_grad = jax.grad(loss)(params, unit, inputs, targets, mask, zeros, zeros)
  dx, dh = jax.grad(loss, argnums=(5, 6))(params, unit, inputs, targets, mask, zeros, zeros)
  # σ'(x_t) from a plain forward pass (0 on padded steps, where no term is kept anyway).
  h, dsigma = jnp.zeros((inputs.shape[1], TRAIN_H)), []
  for t in range(inputs.shape[0]):
    x = h @ params.w_hh + inputs[t] @ params.w_in + params.b[None, :]
    new_h, d = rnn.activation_and_derivative(unit, x)
    h = jnp.where(mask[t][:, None], new_h, h)
    dsigma.append(d)
  consts = [np.asarray(a) for a in (dx, dh, jnp.stack(dsigma), mask)]
  naive_omega = jax.jit(jax.value_and_grad(lambda w: _naive_omega(w, *consts, form)))
  omega_value, omega_grad = naive_omega(params.w_hh)

  # s = 1: the synthetic trainer differentiates the mean cost as it is.
  want_w_hh = error_grad.w_hh + TRAIN_ALPHA * omega_grad
  # Ω's share is large enough that losing half of it, or its sign, cannot hide in the
  # tolerance.
  share = np.abs(np.asarray(TRAIN_ALPHA * omega_grad)).max()
  assert share > 0.2 * np.abs(np.asarray(error_grad.w_hh)).max()
  scale = np.abs(np.asarray(want_w_hh)).max()
  np.testing.assert_allclose(fed.w_hh, want_w_hh, rtol=1e-8, atol=1e-10 * scale)
  for name in ("w_in", "b", "w_out", "b_out"):
    want = getattr(error_grad, name)
    np.testing.assert_allclose(
      getattr(fed, name), want, rtol=1e-8, atol=1e-10 * np.abs(np.asarray(want)).max()
    )
  np.testing.assert_allclose(logged_omega, omega_value, rtol=1e-9)


def test_loss_scale_multiplies_the_error_gradient_only(x64, form, monkeypatch):
  """`add_omega_grad(loss_scale=s)` (the natural trainer's summed cost) gives
  `s·∂E/∂W_hh + α·∂⁺Ω/∂W_hh`: Ω's ratios do not depend on the cost's scale."""
  params, _, batch, _ = _one_training_update(_train_config(form), 0.0, monkeypatch)
  _, grads, fwd = rnn.loss_and_grads(params, rnn.TANH, batch, "last_linear")
  a = fwd.adjoints
  _, omega_grad, _ = omega_and_grad(
    params.w_hh, a, fwd.unroll.dsigma_TxBxH, batch.mask, form=form
  )
  s = 7.0
  scaled = jax.tree.map(lambda g: g * s, grads)
  total, _ = regularizers.add_omega_grad(
    scaled, fwd, batch.mask, TRAIN_ALPHA, enabled=True, loss_scale=s, form=form
  )
  want = s * grads.w_hh + TRAIN_ALPHA * omega_grad
  np.testing.assert_allclose(total.w_hh, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())
  assert total.w_in is scaled.w_in


def test_alpha_zero_trains_bit_identically_to_no_omega():
  """SGD-C with Ω computed (α = 0) and with Ω switched off statically: the same program
  up to Ω's logged value, so every parameter and optimizer leaf agrees bit for bit."""
  out = {}
  for enabled in (True, False):
    config = _train_config("original", omega_enabled=enabled, chunk_size=8)
    config.momentum = 0.9
    trainer = train.make_train(config)
    hp = algorithms.hparams("sgd_c", lr=0.05, clip=0.5, alpha=4.0, init="basic_tanh")
    assert float(hp.alpha) == 0.0
    state = trainer.init(jax.random.PRNGKey(3), hp)
    state = state.replace(params=state.params.replace(w_hh=state.params.w_hh * 9.0))
    out[enabled] = jax.jit(trainer.chunk)(state, hp)
  (with_omega, m_on), (without, m_off) = out[True], out[False]
  assert np.all(np.isfinite(np.asarray(m_on.omega))) and np.all(np.isnan(np.asarray(m_off.omega)))
  assert np.asarray(m_on.clipped).any()  # the clip acted on these gradients
  for a, b in zip(jax.tree.leaves(with_omega), jax.tree.leaves(without), strict=True):
    np.testing.assert_array_equal(a, b)
  for f in ("loss", "grad_norm", "clipped", "error"):
    np.testing.assert_array_equal(getattr(m_on, f), getattr(m_off, f))
