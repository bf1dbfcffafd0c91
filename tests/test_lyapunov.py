"""Tests of rnn_dynamics.analysis.lyapunov against closed forms and exact identities.

References:
  docs/reference.md §6 (Lyapunov exponents by repeated QR, gradient flossing).
"""

import decimal
import functools

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rnn_dynamics import rnn  # noqa: E402
from rnn_dynamics.analysis import lyapunov  # noqa: E402


def _random_rnn(key, n_in, n_hidden, gain, in_scale=1.0, dtype=jnp.float64):
  """The paper's network with `W_rec` of gain `gain`, input weights of scale `in_scale`
  (weak inputs and a gain above 1 can make a tanh network chaotic)."""
  k_in, k_hh, k_b = jax.random.split(key, 3)
  return rnn.Params(
    w_in=in_scale * jax.random.normal(k_in, (n_in, n_hidden), dtype),
    w_hh=gain * jax.random.normal(k_hh, (n_hidden, n_hidden), dtype) / np.sqrt(n_hidden),
    b=0.1 * jax.random.normal(k_b, (n_hidden,), dtype),
    w_out=jnp.zeros((n_hidden, 1), dtype),
    b_out=jnp.zeros((1,), dtype),
  )


def _spectrum(tangent, h0_H, xs_TxI, k, **kwargs):
  """`lyapunov_spectrum` compiled as one program (eager, every small op compiles alone)."""
  run = lambda h0, xs: lyapunov.lyapunov_spectrum(tangent, h0, xs, k, **kwargs)
  return jax.jit(run)(h0_H, xs_TxI)


def _linear_step(a_HxH, b_IxH):
  # Row vectors like the rest of the code, so the column-vector map is h -> A h with A = aᵀ;
  # the input only shifts the state and leaves the Jacobian alone.
  return lambda h_H, x_I: h_H @ a_HxH + x_I @ b_IxH


def _tanh_trajectory_jacobians(params, inputs_TxI):
  """Float64 NumPy, independent of the module: `h_t` and `J_t = diag(1 − h_t²) w_hhᵀ`."""
  w_hh, w_in, b = (np.asarray(a, np.float64) for a in (params.w_hh, params.w_in, params.b))
  h = np.zeros(w_hh.shape[0])
  hs, jacs = [], []
  for u in np.asarray(inputs_TxI, np.float64):
    h = np.tanh(h @ w_hh + u @ w_in + b)
    hs.append(h)
    jacs.append((1.0 - h * h)[:, None] * w_hh.T)
  return np.stack(hs), np.stack(jacs)


def _exact_log_r(jacs_TxHxH, q0_HxK, digits=120):
  """`log R_jj` of the QR of `J_T ⋯ J_1 Q₀` in 120-digit decimal arithmetic.

  One QR of the explicit product cannot be done in float64 once its singular values span
  more than about e^{30} (the small ones drown in round-off of the large); 120 digits
  hold e^{270}. The float64 Jacobians are converted exactly.
  """
  exact = lambda a: [[decimal.Decimal(float(x)) for x in row] for row in np.asarray(a)]
  with decimal.localcontext() as ctx:
    ctx.prec = digits
    g = exact(q0_HxK)
    for jac in jacs_TxHxH:
      jac = exact(jac)
      g = [[sum(a * g[l][c] for l, a in enumerate(row)) for c in range(len(g[0]))] for row in jac]
    basis, logs = [], []
    for c in range(len(g[0])):  # Gram–Schmidt: R_jj is the norm left after projecting out
      v = [row[c] for row in g]
      for q in basis:
        dot = sum(a * b for a, b in zip(q, v, strict=True))
        v = [a - dot * b for a, b in zip(v, q, strict=True)]
      norm = sum(a * a for a in v).sqrt()
      basis.append([a / norm for a in v])
      logs.append(float(norm.ln()))
  return np.array(logs)


def _product(jacs_TxHxH):
  """`J_T ⋯ J_1` as `(log scale, normalised product)`, renormalised so long products
  neither overflow nor underflow."""
  prod, log_scale = np.eye(jacs_TxHxH.shape[1]), 0.0
  for jac in jacs_TxHxH:
    prod = jac @ prod
    norm = np.linalg.norm(prod)
    prod, log_scale = prod / norm, log_scale + np.log(norm)
  return log_scale, prod


def test_positive_qr_is_the_unique_factorisation(x64):
  # With diag R > 0 the QR of a full-rank A is unique: R is the Cholesky factor of AᵀA.
  a = np.asarray(jax.random.normal(jax.random.key(1), (7, 4), jnp.float64))
  q, r_diag = lyapunov.positive_qr(jnp.asarray(a))
  chol_r = np.linalg.cholesky(a.T @ a).T
  np.testing.assert_allclose(r_diag, np.diag(chol_r), rtol=1e-12)
  np.testing.assert_allclose(q, a @ np.linalg.inv(chol_r), atol=1e-12)


def test_linear_map_real_eigenvalues(x64):
  # A = S diag(λ) S⁻¹ with |λ| distinct: once the basis has turned onto the invariant flag
  # (error ~ e^{−warmup·min gap}, here e^{−60·log 2} ≈ 1e-18), every step's R has
  # diagonal |λ_i| exactly, so the exponents equal log|λ_i| to round-off.
  eigs = np.array([-0.5, 2.0, 0.25, -1.25])
  s = np.eye(4) + 0.3 * np.asarray(jax.random.normal(jax.random.key(2), (4, 4), jnp.float64))
  a = s @ np.diag(eigs) @ np.linalg.inv(s)
  step = _linear_step(jnp.asarray(a.T), jnp.ones((2, 4), jnp.float64))
  xs = jax.random.normal(jax.random.key(3), (100, 2), jnp.float64)
  expected = np.sort(np.log(np.abs(eigs)))[::-1]
  spec = _spectrum(
    lyapunov.jvp_tangent(step), jnp.ones(4, jnp.float64), xs, 3, warmup=60, horizon=40
  )
  np.testing.assert_allclose(spec.exponents_K, expected[:3], atol=1e-9)
  # All n exponents: the volume growth, log|det A|, at any horizon and with no warm-up.
  spec = _spectrum(lyapunov.jvp_tangent(step), jnp.ones(4), xs[:7], 4)
  np.testing.assert_allclose(jnp.sum(spec.exponents_K), np.log(abs(np.linalg.det(a))), atol=1e-12)


def test_linear_map_complex_pair(x64):
  # A = S diag(ρ·Rot(θ), μ) S⁻¹: the pair ρ e^{±iθ} gives two exponents log ρ, μ one.
  rho, theta, mu = 1.1, 1.0, 0.6
  rot = rho * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
  block = np.zeros((3, 3))
  block[:2, :2], block[2, 2] = rot, mu
  s = np.eye(3) + 0.4 * np.asarray(jax.random.normal(jax.random.key(4), (3, 3), jnp.float64))
  a = s @ block @ np.linalg.inv(s)
  np.testing.assert_allclose(np.sort(np.abs(np.linalg.eigvals(a))), [mu, rho, rho])
  step = _linear_step(jnp.asarray(a.T), jnp.ones((1, 3), jnp.float64))
  warmup, horizon = 100, 400
  xs = jnp.zeros((warmup + horizon, 1), jnp.float64)
  spec = _spectrum(lyapunov.jvp_tangent(step), jnp.ones(3), xs, 3, warmup=warmup, horizon=horizon)
  # The 2-volume in the invariant plane grows by exactly |det| = ρ² per step, and the
  # 3-volume by ρ²μ: the pair's sum and the third exponent are exact after the warm-up.
  pair = spec.exponents_K[0] + spec.exponents_K[1]
  np.testing.assert_allclose(pair, 2 * np.log(rho), atol=1e-9)
  np.testing.assert_allclose(spec.exponents_K[2], np.log(mu), atol=1e-9)
  # One vector in the plane rotates: ‖S₂ Rot^T S₂⁺ q‖ / ρ^T lies in [1/κ, κ], κ = cond(S₂),
  # so each of the pair is within log κ / horizon of log ρ (≈ 1e-3 here), not exact.
  kappa = np.linalg.cond(s[:, :2])
  bound = np.log(kappa) / horizon
  assert 0 < bound < 5e-3
  np.testing.assert_array_less(np.abs(spec.exponents_K[:2] - np.log(rho)), bound + 1e-9)


def test_logistic_map_at_r4_has_exponent_ln2(x64):
  # x -> 4x(1−x) is conjugate to the tent map, whose invariant measure gives λ = ln 2. The
  # estimate is a time average of log|4 − 8x_t| along one orbit, so it fluctuates like
  # O(1/√T) (about 0.01 at T = 20 000): hence the tolerance, 0.03, not round-off.
  step = lambda x_1, _: 4.0 * x_1 * (1.0 - x_1)
  xs = jnp.zeros((20_100, 1), jnp.float64)
  spec = _spectrum(lyapunov.jvp_tangent(step), jnp.array([0.3]), xs, 1, warmup=100)
  assert abs(float(spec.exponents_K[0]) - np.log(2.0)) < 0.03


@pytest.mark.parametrize("k", [1, 3, 6])
def test_tanh_network_short_horizon_exact_identities(x64, k):
  """At any horizon T, the per-step QR's accumulated `log R_jj` are exactly those of one
  QR of the explicit product `P Q₀` (the product of triangular factors is triangular), so
  column j's estimate is `(1/T) log R(P Q₀)_jj` to round-off. Singular values of P only
  bound the partial sums `S_j = Σ_{i≤j} T λ_i` (the log j-volume of `P Q₀`), by
  Cauchy–Binet: `Σ_{i≤j} log σ_i + log|det(V_jᵀ Q₀_j)| ≤ S_j ≤ Σ_{i≤j} log σ_i`.
  With k = H, `S_H = Σ_t log|det J_t|` exactly."""
  n_hidden, horizon = 6, 20
  # Mildly contracting, so that float64 singular values of P resolve several σ_j below.
  params = _random_rnn(jax.random.key(5), 2, n_hidden, gain=1.5, in_scale=0.3)
  inputs = jax.random.normal(jax.random.key(6), (horizon, 2), jnp.float64)
  spec = lyapunov.rnn_spectrum(params, rnn.TANH, inputs[:, None, :], k)
  column_exponents = np.asarray(spec.running_TxK[0, -1])
  _, jacs = _tanh_trajectory_jacobians(params, inputs)
  q0 = np.asarray(lyapunov.default_basis(n_hidden, k, jnp.float64))
  # Round-off: 20 backward-stable QR steps in float64, each step's R graded by at most e^5.
  np.testing.assert_allclose(horizon * column_exponents, _exact_log_r(jacs, q0), atol=1e-9)
  np.testing.assert_array_equal(spec.exponents_K[0], np.sort(column_exponents)[::-1])

  log_scale, prod = _product(jacs)  # P = e^{log_scale} · prod
  _, sv, vt = np.linalg.svd(prod)
  partial = np.cumsum(horizon * column_exponents)
  upper = np.cumsum(np.log(sv[:k]) + log_scale)
  lower = upper + [np.log(abs(np.linalg.det(vt[:j] @ q0[:, :j]))) for j in range(1, k + 1)]
  # float64 singular values are accurate to ~1e-16 σ₁ only: check the j with σ_j ≥ 1e-6 σ₁.
  resolved = sv[:k] >= 1e-6 * sv[0]
  assert resolved.sum() >= min(k, 3)
  np.testing.assert_array_less(partial[resolved], upper[resolved] + 1e-9)
  np.testing.assert_array_less(lower[resolved], partial[resolved] + 1e-9)
  if k == n_hidden:
    log_det = sum(np.log(abs(np.linalg.det(j))) for j in jacs)
    np.testing.assert_allclose(partial[-1], log_det, atol=1e-9)


def test_tanh_network_long_horizon_converges(x64):
  # At T = 400 the finite-time estimates forget the initial basis: the bounds above put λ₁
  # within |log|v₁ᵀq₀|| / T of (1/T) log σ₁(P) (about 1e-3 for a generic q₀), and two
  # different initial bases agree on all k exponents to O(1/T); 0.02 is loose for both.
  n_hidden, horizon, k = 6, 400, 3
  params = _random_rnn(jax.random.key(7), 2, n_hidden, gain=2.0)
  inputs = jax.random.normal(jax.random.key(8), (horizon, 2), jnp.float64)
  tangent = lyapunov.rnn_tangent(params, rnn.TANH)
  h0 = jnp.zeros(n_hidden)
  spec = _spectrum(tangent, h0, inputs, k)
  _, jacs = _tanh_trajectory_jacobians(params, inputs)
  log_scale, prod = _product(jacs)
  log_sigma1 = log_scale + np.log(np.linalg.svd(prod, compute_uv=False)[0])
  assert abs(float(spec.exponents_K[0]) - log_sigma1 / horizon) < 0.02
  other_q0 = lyapunov.positive_qr(jax.random.normal(jax.random.key(9), (n_hidden, k)))[0]
  other = _spectrum(tangent, h0, inputs, k, q0_HxK=other_q0)
  np.testing.assert_allclose(other.exponents_K, spec.exponents_K, atol=0.02)


@pytest.mark.parametrize("unit", [rnn.TANH, rnn.SIGMOID], ids=["tanh", "sigmoid"])
def test_hand_written_jacobian_equals_jvp(x64, unit):
  params = _random_rnn(jax.random.key(10), 3, 5, gain=3.0)
  inputs = jax.random.normal(jax.random.key(11), (30, 4, 3), jnp.float64)
  mask = jnp.arange(30)[:, None] < jnp.array([30, 25, 12, 30])[None, :]
  run = functools.partial(lyapunov.rnn_spectrum, params, unit, inputs, 3, warmup=5, mask_TxB=mask)
  analytic, jvp = run(jacobian="analytic"), run(jacobian="jvp")
  for a, b in zip(analytic, jvp, strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
  # The state is the one training carries: rnn.unroll's last state, from h_{-1} = 0.
  unrolled = rnn.unroll(params, unit, inputs, mask)
  np.testing.assert_allclose(analytic.h_H, unrolled.h_last_BxH, rtol=1e-12)
  # A padded sequence is the truncated one: padded steps hold the state and basis and are
  # not counted in the mean.
  short = _spectrum(lyapunov.rnn_tangent(params, unit), jnp.zeros(5), inputs[:12, 2], 3, warmup=5)
  np.testing.assert_allclose(analytic.exponents_K[2], short.exponents_K, rtol=1e-12)
  np.testing.assert_allclose(analytic.q_HxK[2], short.q_HxK, rtol=1e-12, atol=1e-13)


def test_vmap_over_runs_and_jit_match_a_loop(x64):
  # Float64: vmap batches the matmuls differently from the loop, so the programs agree to
  # round-off, not bit for bit; in float32 that round-off, grown over 50 steps, is ~1e-5.
  keys = jax.random.split(jax.random.key(14), 3)
  gains = [0.5, 1.5, 3.0]
  runs = [_random_rnn(key, 2, 8, g, dtype=jnp.float64) for key, g in zip(keys, gains, strict=True)]
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *runs)
  inputs = jax.random.normal(jax.random.key(15), (40, 4, 2), jnp.float64)
  exponents = functools.partial(lyapunov.rnn_lyapunov_exponents, k=3, warmup=10)
  batched = jax.vmap(lambda p: exponents(p, rnn.TANH, inputs))(stacked)

  @jax.jit
  def per_sequence(params):  # the generic core, one sequence at a time (a loop, not vmap)
    one = lambda xs: (
      lyapunov.lyapunov_spectrum(
        lyapunov.rnn_tangent(params, rnn.TANH), jnp.zeros(8), xs, 3, warmup=10
      ).exponents_K
    )
    return jax.lax.map(one, jnp.swapaxes(inputs, 0, 1))

  for i, params in enumerate(runs):
    looped = exponents(params, rnn.TANH, inputs)
    np.testing.assert_allclose(batched[i], looped, rtol=1e-10, atol=1e-12)
    # The batch mean is the mean of each sequence's own spectrum.
    mean = jnp.mean(per_sequence(params), axis=0)
    np.testing.assert_allclose(looped, mean, rtol=1e-10, atol=1e-12)
  assert batched.shape == (3, 3) and np.all(np.diff(batched, axis=1) <= 0)


# One compiled program for both flossing tests: a tiny float64 network, k = 2.
_floss_value_and_grad = jax.jit(
  jax.value_and_grad(lambda p, xs: lyapunov.flossing_loss(p, rnn.TANH, xs, 2, warmup=4))
)


def _floss_setup():
  # Contracting (λ₁ ≈ −1.3): the loss is far from its minimum and its gradient large.
  params = _random_rnn(jax.random.key(16), 1, 4, gain=0.5)
  return params, jax.random.normal(jax.random.key(17), (16, 2, 1), jnp.float64)


def test_flossing_gradient_matches_finite_differences(x64):
  params, inputs = _floss_setup()
  _, grad = _floss_value_and_grad(params, inputs)
  direction = jax.tree.map(
    lambda a, k: jax.random.normal(k, a.shape, a.dtype),
    params,
    rnn.Params(*jax.random.split(jax.random.key(18), 5)),
  )
  eps = 1e-6
  shifted = lambda s: _floss_value_and_grad(
    jax.tree.map(lambda p, d: p + s * d, params, direction), inputs
  )[0]
  numeric = (shifted(eps) - shifted(-eps)) / (2 * eps)
  leaves = zip(jax.tree.leaves(grad), jax.tree.leaves(direction), strict=True)
  analytic = sum(jnp.vdot(g, d) for g, d in leaves)
  # Central differences: truncation O(eps²) and round-off O(1e-16/eps) are both ~1e-10.
  np.testing.assert_allclose(analytic, numeric, rtol=1e-7)
  assert abs(float(analytic)) > 1e-3


def test_flossing_steps_move_top_exponent_towards_zero(x64):
  # Plain gradient steps on Σλ² raise a contracting network's λ₁ towards 0. (In a chaotic
  # network the exact gradient of a finite-horizon estimate grows like e^{λ₁T} through the
  # trajectory, so fixed-size steps need clipping; not this test's subject.)
  params, inputs = _floss_setup()
  top = lambda p: float(lyapunov.rnn_lyapunov_exponents(p, rnn.TANH, inputs, 2, warmup=4)[0])
  before, (loss_before, _) = top(params), _floss_value_and_grad(params, inputs)
  for _ in range(5):
    _, grad = _floss_value_and_grad(params, inputs)
    params = jax.tree.map(lambda p, g: p - 0.1 * g, params, grad)
  after, (loss_after, _) = top(params), _floss_value_and_grad(params, inputs)
  assert before < -1.0 and abs(after) < 0.25 * abs(before), (before, after)
  assert loss_after < 0.1 * loss_before, (loss_before, loss_after)


def test_bad_arguments_are_refused():
  tangent = lyapunov.jvp_tangent(lambda h, x: h)
  xs = jnp.zeros((10, 1))
  with pytest.raises(ValueError, match="k"):
    lyapunov.lyapunov_spectrum(tangent, jnp.zeros(3), xs, 4)
  with pytest.raises(ValueError, match="horizon"):
    lyapunov.lyapunov_spectrum(tangent, jnp.zeros(3), xs, 2, warmup=5, horizon=6)
