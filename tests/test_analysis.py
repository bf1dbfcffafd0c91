"""Tests of rnn_dynamics.analysis against known answers.

References:
  Pascanu, Mikolov & Bengio (2013), §2.1-2.3, Figures 3 and 6.
"""

import functools
import os

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402
from scipy import optimize  # noqa: E402

from rnn_dynamics import rnn  # noqa: E402
from rnn_dynamics.analysis import (  # noqa: E402
  attractors,
  bifurcation,
  curvature,
  mechanics,
  surface,
)
from rnn_dynamics.tasks.base import Batch  # noqa: E402


def _sigma64(unit_name, x):
  # Independent float64 definitions, not the model's Unit arithmetic.
  return 1.0 / (1.0 + np.exp(-x)) if unit_name == "sigmoid" else np.tanh(x)


def _brentq_roots(w, b, unit_name):
  g = lambda x: w * _sigma64(unit_name, x) + b - x
  grid = np.linspace(b - abs(w) - 2, b + abs(w) + 2, 200_001)
  vals = g(grid)
  roots = []
  for i in np.nonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) <= 0)[0]:
    if vals[i] == 0:
      roots.append(grid[i])
    elif vals[i + 1] != 0:
      roots.append(optimize.brentq(g, grid[i], grid[i + 1], xtol=1e-15, rtol=1e-15))
  return np.unique(np.round(roots, 12))


@pytest.mark.parametrize(
  "unit_name, unit, w, bs",
  [
    ("sigmoid", rnn.SIGMOID, 5.0, [-4.0, -2.6, -2.5, -2.4, -2.35, -1.0, 3.0]),
    ("sigmoid", rnn.SIGMOID, 8.0, [-6.0, -4.0, -3.0]),
    ("tanh", rnn.TANH, 2.0, [-1.0, -0.3, 0.0, 0.2, 2.0]),
    ("tanh", rnn.TANH, -3.0, [-1.0, 0.5]),
  ],
)
def test_fixed_points_match_brentq(unit_name, unit, w, bs):
  fp = bifurcation.fixed_points(w, np.asarray(bs), unit)
  for i, b in enumerate(bs):
    expected = _brentq_roots(w, b, unit_name)
    got = fp.x_Nx3[i][np.isfinite(fp.x_Nx3[i])]
    assert fp.count_N[i] == len(expected), (b, got, expected)
    np.testing.assert_allclose(got, expected, atol=1e-10)
    slope = w * np.gradient(_sigma64(unit_name, np.array([got - 1e-6, got + 1e-6])), axis=0)[0] / 2e-6
    np.testing.assert_array_equal(fp.stable_Nx3[i][: len(got)], np.abs(slope) < 1)


def test_bifurcation_points_closed_form():
  # Tangency w σ'(x) = 1 with σ' = σ(1 − σ): σ = (1 ± √(1 − 4/w)) / 2, b = x − w σ(x).
  w = 5.0
  s = (1 + np.array([-1.0, 1.0]) * np.sqrt(1 - 4 / w)) / 2
  x = np.log(s / (1 - s))
  b = x - w * s
  got = bifurcation.bifurcation_points(w)
  np.testing.assert_allclose([got["b1"], got["b2"]], b, atol=1e-12)
  np.testing.assert_allclose([got["x1"], got["x2"]], x, atol=1e-9)
  # The number of fixed points changes exactly there: 1 | 3 | 1.
  eps = 1e-7
  counts = bifurcation.fixed_points(
    w, [got["b2"] - eps, got["b2"] + eps, got["b1"] - eps, got["b1"] + eps]).count_N
  np.testing.assert_array_equal(counts, [1, 3, 3, 1])
  assert np.isnan(bifurcation.bifurcation_points(3.9)["b1"])  # w σ'(0) < 1: no bifurcation


def test_basin_boundary_separates_attractors():
  w, b = 5.0, -2.45
  boundary = float(bifurcation.basin_boundary(w, b)[0])
  fp = bifurcation.fixed_points(w, b)
  lower, upper = fp.x_Nx3[0, 0], fp.x_Nx3[0, 2]
  assert fp.stable_Nx3[0, 0] and fp.stable_Nx3[0, 2] and not fp.stable_Nx3[0, 1]
  ends = np.asarray(bifurcation.iterate(w, b, rnn.SIGMOID, np.array([boundary - 1e-3,
                                                                      boundary + 1e-3]), 300))
  np.testing.assert_allclose(ends, [lower, upper], atol=1e-4)


# rnn.unroll adds the `[H]` bias to `[T, B, H]` drives by rank promotion; allow it inside
# the model, while every analysis-side array operation stays checked.
_allow_rnn = functools.partial(jax.numpy_rank_promotion, "allow")


def _tiny_problem():
  key = jax.random.key(0)
  params = rnn.init_params(key, 2, 3, 2, "basic_tanh")
  params = jax.tree.map(lambda a: a * 8.0, params)  # away from the linear regime
  inputs = jax.random.normal(jax.random.key(1), (6, 4, 2))
  targets = jnp.array([0, 1, 1, 0])
  batch = Batch(inputs, targets, jnp.ones((6, 4), bool))
  def loss(p):
    with _allow_rnn():
      return rnn.loss_fn(p, rnn.TANH, batch, "last_softmax")[0]

  return params, loss


def test_lanczos_top_eigenpair_matches_dense_hessian():
  params, loss = _tiny_problem()
  flat, unravel = ravel_pytree(params)
  dense = np.asarray(jax.hessian(lambda f: loss(unravel(f)))(flat), np.float64)
  evals, evecs = np.linalg.eigh((dense + dense.T) / 2)
  top = np.argmax(np.abs(evals))
  # Hessian-vector products agree with the dense Hessian.
  v = jax.random.normal(jax.random.key(2), flat.shape)
  hv = ravel_pytree(curvature.hvp(loss, params, unravel(v)))[0]
  np.testing.assert_allclose(hv, dense @ np.asarray(v), rtol=1e-3, atol=1e-4)
  value, vector, ritz = curvature.top_eigenpair(loss, params, jax.random.key(3), flat.size)
  np.testing.assert_allclose(float(value), evals[top], rtol=1e-3)
  np.testing.assert_allclose(np.sort(np.asarray(ritz)), evals, atol=2e-3 * abs(evals[top]))
  assert float(curvature.alignment(vector, unravel(jnp.asarray(evecs[:, top], flat.dtype)))) > 0.999
  # A short Lanczos run already finds the extreme eigenvalue.
  value8, _, _ = curvature.top_eigenpair(loss, params, jax.random.key(3), 12)
  np.testing.assert_allclose(float(value8), evals[top], rtol=2e-2)


def test_alignment_and_grad_curvature_on_a_quadratic():
  # E = ½ θᵀ diag(100, 1) θ: at θ = (1, 0) the gradient is the top eigenvector.
  loss = lambda t: 0.5 * (100.0 * t[0] ** 2 + t[1] ** 2)
  c = curvature.curvature_diagnostics(loss, jnp.array([1.0, 0.0]), jax.random.key(0), 2)
  np.testing.assert_allclose([c.top_eigenvalue, c.alignment, c.grad_curvature], [100, 1, 100],
                             rtol=1e-5)
  c = curvature.curvature_diagnostics(loss, jnp.array([0.0, 1.0]), jax.random.key(0), 2)
  assert float(c.alignment) < 1e-5 and abs(float(c.grad_curvature) - 1.0) < 1e-4


def _params(w_hh, n_in=1):
  h = w_hh.shape[0]
  return rnn.Params(w_in=jnp.ones((n_in, h)) * 0.3, w_hh=w_hh, b=jnp.zeros((h,)),
                    w_out=jnp.zeros((h, 1)), b_out=jnp.zeros((1,)))


@pytest.mark.parametrize("rho", [0.9, 1.1])
def test_linear_lag_curve_is_rho_power_for_normal_matrix(rho):
  w = mechanics.scaled_orthogonal(jax.random.key(4), 10, rho)
  step = mechanics.linear_step(_params(w))
  norms = mechanics.jacobian_norms_by_lag(step, jnp.ones(10), jnp.ones((40, 1)))
  np.testing.assert_allclose(norms, rho ** np.arange(41), rtol=2e-5)
  assert mechanics.decay_rate(norms) == pytest.approx(rho, rel=1e-5)


def test_linear_lag_curve_is_matrix_power_norm_for_non_normal_matrix():
  w = mechanics.scaled_gaussian(jax.random.key(5), 6, 0.95)
  norms = mechanics.jacobian_norms_by_lag(mechanics.linear_step(_params(w)), jnp.ones(6),
                                          jnp.zeros((15, 1)))
  w64 = np.asarray(w, np.float64)
  expected = [np.linalg.norm(np.linalg.matrix_power(w64, k), 2) for k in range(16)]
  np.testing.assert_allclose(norms, expected, rtol=1e-4)
  assert np.all(np.asarray(norms) >= 0.95 ** np.arange(16) * (1 - 1e-4))  # ‖W^k‖ ≥ ρ^k


@pytest.mark.parametrize("unit, gamma", [(rnn.TANH, 1.0), (rnn.SIGMOID, 0.25)])
def test_nonlinear_lag_curve_obeys_gamma_rho_bound(unit, gamma):
  rho = 1.3 / gamma
  w = mechanics.scaled_orthogonal(jax.random.key(6), 8, rho)
  step = functools.partial(rnn.step, _params(w, 8), unit)
  us = jax.random.normal(jax.random.key(7), (30, 8))
  norms = np.asarray(mechanics.jacobian_norms_by_lag(step, jnp.zeros(8), us))
  bound = (gamma * rho) ** np.arange(31)
  assert np.all(norms <= bound * (1 + 1e-4))
  assert norms[-1] < 1e-2 * bound[-1]  # saturation keeps it far below the bound


def test_adjoint_norms_by_lag_matches_autodiff():
  params, _ = _tiny_problem()
  inputs = jax.random.normal(jax.random.key(1), (6, 4, 2))
  batch = Batch(inputs, jnp.array([0, 1, 1, 0]), jnp.ones((6, 4), bool))
  with _allow_rnn():
    mean, count = mechanics.adjoint_norms_by_lag(params, rnn.TANH, batch, "last_softmax")
  # Perturb x_k additively through the bias of step k (an extra input): ∂E/∂x_k.
  def loss_with(delta_TxBxH):
    def body(h, xs):
      u, d = xs
      x = h @ params.w_hh + u @ params.w_in + params.b[None, :] + d
      h = rnn.activation(rnn.TANH, x)
      return h, None
    h, _ = jax.lax.scan(body, jnp.zeros((4, 3)), (inputs, delta_TxBxH))
    logp = jax.nn.log_softmax(h @ params.w_out + params.b_out[None, :])
    return -jnp.mean(jnp.take_along_axis(logp, batch.targets[:, None], axis=1))
  dx = jax.grad(loss_with)(jnp.zeros((6, 4, 3)))
  expected = np.linalg.norm(np.asarray(dx), axis=-1).mean(axis=1)[::-1]
  np.testing.assert_allclose(mean, expected, rtol=1e-4)
  np.testing.assert_array_equal(count, 4)


def test_attractor_finder_one_unit_known_fixed_points():
  w, b = 5.0, -2.45
  f = attractors.map_for(bifurcation.one_unit_params(w, b), rnn.SIGMOID)
  fps = attractors.fixed_points_of(f, jnp.linspace(-6, 6, 48)[:, None], num_steps=400)
  order = np.argsort(fps.x_KxH[:, 0])
  exact = bifurcation.fixed_points(w, b)
  np.testing.assert_allclose(fps.x_KxH[order, 0], exact.x_Nx3[0], atol=1e-5)
  np.testing.assert_array_equal(fps.stable_K[order], exact.stable_Nx3[0])
  np.testing.assert_allclose(fps.radius_K[order], np.abs(exact.slope_Nx3[0]), atol=1e-4)


def test_attractor_finder_two_units_and_basins():
  # Two uncoupled bistable units: 3 × 3 = 9 fixed points, 2 × 2 = 4 of them attractors.
  w, b = 5.0, -2.45
  params = rnn.Params(w_in=jnp.zeros((1, 2)), w_hh=w * jnp.eye(2), b=jnp.full((2,), b),
                      w_out=jnp.zeros((2, 1)), b_out=jnp.zeros((1,)))
  f = attractors.map_for(params, rnn.SIGMOID)
  grid = jnp.stack(jnp.meshgrid(jnp.linspace(-5, 5, 9), jnp.linspace(-5, 5, 9)), -1).reshape(-1, 2)
  fps = attractors.fixed_points_of(f, grid, num_steps=600)
  assert len(fps.x_KxH) == 9 and int(fps.stable_K.sum()) == 4
  one = bifurcation.fixed_points(w, b).x_Nx3[0]
  expected = np.array([[a, c] for a in one for c in one])
  d = np.linalg.norm(fps.x_KxH[:, None] - expected[None], axis=-1)
  assert np.all(d.min(axis=1) < 1e-4)
  # Starts in opposite corners flow to different attractors; the label is held.
  starts = np.array([[-4.0, -4.0], [-3.0, -4.5], [4.0, 4.0], [4.5, 3.0]])
  idx, dist = attractors.assign_attractors(f, starts, fps.x_KxH[fps.stable_K], 200)
  assert np.all(dist < 1e-4) and idx[0] == idx[1] != idx[2] == idx[3]
  assert attractors.label_purity(idx, np.array([0, 0, 1, 1])) == 1.0


def test_cliff_gradient_finite_and_clipping_bounds_the_step():
  setup = surface.CliffSetup()
  # Across the soft part of the wall at w = 5 the gradient is large but finite.
  bs = np.linspace(-2.75, -2.55, 401)
  loss, gnorm = surface.loss_surface(np.array([5.0]), bs, setup)
  assert np.all(np.isfinite(gnorm)) and np.all(np.isfinite(loss))
  assert gnorm.max() > 100 * np.median(gnorm)
  assert abs(bs[np.argmax(gnorm)] - surface.wall_bias([5.0], setup)[0]) < 0.05
  start = np.array([[5.2, -4.6]])
  plain = surface.descend(start, 1.0, 150, None, setup)
  clipped = surface.descend(start, 1.0, 150, 1.0, setup)
  step_plain = np.linalg.norm(np.asarray(plain.step_NxSx2), axis=-1)
  step_clip = np.linalg.norm(np.asarray(clipped.step_NxSx2), axis=-1)
  assert np.all(np.isfinite(np.asarray(plain.grad_norm_NxS)))
  assert step_clip.max() <= 1.0 + 1e-5 < 10 < step_plain.max()
  # Plain GD is thrown onto the far plateau; clipped GD stays by the wall and descends.
  assert float(clipped.loss_NxS[0, -1]) < 0.03 < 0.08 < float(plain.loss_NxS[0, -1])


def test_bifurcation_binary_writes_outputs(tmp_path):
  from experiments import bifurcation as binary
  from experiments.configs.bifurcation import get_config

  summary = binary.run(get_config("test"), str(tmp_path))
  for name in ("bifurcation.npz", "bifurcation.json", "bifurcation.png", "bifurcation.svg"):
    assert os.path.getsize(tmp_path / name) > 0
  assert summary["sim_max_distance_to_solved_fixed_point"] < 1e-3
