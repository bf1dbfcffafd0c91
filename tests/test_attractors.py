"""The fixed-point finder (`rnn_dynamics.analysis.attractors`) on maps with known answers.

Each map here has fixed points and Jacobians known independently of the finder: a tanh RNN
with a diagonal recurrent matrix, whose units are decoupled so that every unit's fixed
points solve a 1-D equation (bracketed on a fine grid and solved by `brentq`) and the
fixed points of the whole map are their Cartesian product; an affine map with a chosen
fixed point and chosen (complex, non-normal) Jacobian eigenvalues; and a map with no fixed
point but with slow points, which must yield nothing.
"""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from rnn_dynamics import rnn
from rnn_dynamics.analysis import attractors

# Decoupled tanh units `x ← w tanh(x) + b`: (w, b) per unit. w > 1 with a small bias is
# bistable (two attractors around one unstable point); w = 0.5 is contracting (one point).
UNITS_WB = ((2.0, 0.3), (0.5, 0.2), (3.0, -0.5))


def _unit_fixed_points(w, b):
  """Roots of `w tanh(x) + b − x` in float64, found without the finder."""
  g = lambda x: w * np.tanh(x) + b - x
  # Every root lies in [b − |w|, b + |w|], where |w tanh(x)| ≤ |w| puts it.
  grid = np.linspace(b - abs(w) - 1, b + abs(w) + 1, 100_001)
  v = g(grid)
  idx = np.nonzero(np.sign(v[:-1]) != np.sign(v[1:]))[0]
  return np.array([optimize.brentq(g, grid[i], grid[i + 1], xtol=1e-14) for i in idx])


def _diagonal_tanh_map():
  w = np.array([wb[0] for wb in UNITS_WB])
  b = np.array([wb[1] for wb in UNITS_WB])
  h = len(w)
  params = rnn.Params(
    w_in=jnp.zeros((1, h)),
    w_hh=jnp.diag(jnp.asarray(w, jnp.float32)),
    b=jnp.asarray(b, jnp.float32),
    w_out=jnp.zeros((h, 1)),
    b_out=jnp.zeros((1,)),
  )
  return attractors.map_for(params, rnn.TANH), w, b


def test_diagonal_tanh_rnn_all_fixed_points_locations_and_stability():
  f, w, b = _diagonal_tanh_map()
  per_unit = [_unit_fixed_points(wi, bi) for wi, bi in zip(w, b)]
  assert [len(r) for r in per_unit] == [3, 1, 3]  # the set-up itself: 9 fixed points in all
  # The map's fixed points are all combinations of the units' ones; its Jacobian at each is
  # diagonal, `w_i sech²(x_i)`, so the eigenvalues are known too.
  exact = np.array(list(itertools.product(*per_unit)))
  slopes = w[None, :] / np.cosh(exact) ** 2
  exact_stable = np.all(np.abs(slopes) < 1, axis=1)
  assert int(exact_stable.sum()) == 4  # 2 × 1 × 2 attractors, 5 saddles

  axes = [np.linspace(lo, hi, n) for lo, hi, n in ((-3, 3, 7), (-1, 1, 2), (-4, 4, 7))]
  starts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
  fps = attractors.fixed_points_of(f, starts, num_steps=600)

  assert len(fps.x_KxH) == len(exact)
  # Match each found point to its exact one, one to one.
  d = np.linalg.norm(fps.x_KxH[:, None] - exact[None], axis=-1)
  match = np.argmin(d, axis=1)
  assert sorted(match) == list(range(len(exact)))
  np.testing.assert_allclose(fps.x_KxH, exact[match], atol=1e-5)
  assert np.all(fps.residual_K < 1e-5)
  np.testing.assert_array_equal(fps.stable_K, exact_stable[match])
  np.testing.assert_allclose(
    np.sort(fps.eigvals_KxH.real, axis=1), np.sort(slopes[match], axis=1), atol=1e-4
  )
  np.testing.assert_allclose(fps.eigvals_KxH.imag, 0.0, atol=1e-6)
  np.testing.assert_allclose(fps.radius_K, np.abs(slopes[match]).max(axis=1), atol=1e-4)
  assert fps.hits_K.sum() <= len(starts) and np.all(fps.hits_K >= 1)


def test_diagonal_tanh_rnn_states_flow_to_the_attractor_of_their_basin():
  f, w, b = _diagonal_tanh_map()
  per_unit = [_unit_fixed_points(wi, bi) for wi, bi in zip(w, b)]
  exact = np.array(list(itertools.product(*per_unit)))
  stable = np.all(np.abs(w[None, :] / np.cosh(exact) ** 2) < 1, axis=1)
  att = exact[stable].astype(np.float32)
  # Decoupled units: a state's basin is, per bistable unit, the side of its unstable
  # (middle) fixed point it starts on; the contracting unit always goes to its one point.
  rng = np.random.default_rng(0)
  xs = rng.uniform(-4, 4, (400, 3)).astype(np.float32)
  far = (np.abs(xs[:, 0] - per_unit[0][1]) > 0.05) & (np.abs(xs[:, 2] - per_unit[2][1]) > 0.05)
  xs = xs[far]
  expected_point = np.stack(
    [
      np.where(xs[:, 0] < per_unit[0][1], per_unit[0][0], per_unit[0][2]),
      np.full(len(xs), per_unit[1][0]),
      np.where(xs[:, 2] < per_unit[2][1], per_unit[2][0], per_unit[2][2]),
    ],
    axis=1,
  )
  expected = np.argmin(np.linalg.norm(expected_point[:, None] - att[None], axis=-1), axis=1)
  idx, dist = attractors.assign_attractors(f, xs, att, num_steps=200)
  np.testing.assert_array_equal(idx, expected)
  assert np.all(dist < 1e-4)
  assert attractors.label_purity(idx, expected) == 1.0


def _affine_map(eigs_real, rotation, seed):
  """`F(x) = x @ A + c` with a chosen spectrum and fixed point `x* = c (I − A)⁻¹`.

  `A = P⁻¹ D P` with `D` block-diagonal: a rotation-scaling block (the complex pair
  `r e^{±iθ}`) and the given real eigenvalues; `P` is random, so `A` is not normal.
  """
  r, theta = rotation
  blocks = [r * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])]
  d = np.zeros((2 + len(eigs_real),) * 2)
  d[:2, :2] = blocks[0]
  d[2:, 2:] = np.diag(eigs_real)
  rng = np.random.default_rng(seed)
  p = rng.normal(size=d.shape) + 2 * np.eye(len(d))
  a = np.linalg.solve(p, d @ p)
  x_star = rng.normal(size=len(d))
  c = x_star - x_star @ a  # so that x* @ A + c = x*
  expected_eigs = np.concatenate([r * np.exp([1j * theta, -1j * theta]), eigs_real])
  a32, c32 = jnp.asarray(a, jnp.float32), jnp.asarray(c, jnp.float32)
  return (lambda x: x @ a32 + c32), x_star, expected_eigs


@pytest.mark.parametrize(
  "eigs_real, rotation, stable",
  [
    ((0.5, -0.3), (0.9, 0.7), True),  # a spiralling attractor
    ((0.5, -1.3), (0.9, 0.7), False),  # a flip direction: |λ| > 1 although λ < 1
    ((0.2, 0.1), (1.2, 2.0), False),  # an unstable complex pair: |λ| = 1.2, Re λ < 0
  ],
)
def test_affine_map_one_fixed_point_with_known_spectrum(eigs_real, rotation, stable):
  f, x_star, expected_eigs = _affine_map(eigs_real, rotation, seed=1)
  rng = np.random.default_rng(2)
  starts = x_star + rng.normal(0, 3, (64, len(x_star)))
  fps = attractors.fixed_points_of(f, starts, num_steps=800)

  assert len(fps.x_KxH) == 1  # an affine map with I − A invertible has exactly one
  assert fps.hits_K[0] == len(starts)
  np.testing.assert_allclose(fps.x_KxH[0], x_star, atol=1e-4)
  found = fps.eigvals_KxH[0]
  # Each expected eigenvalue has a found one within tolerance, and vice versa.
  d = np.abs(found[:, None] - expected_eigs[None])
  assert d.min(axis=0).max() < 1e-4 and d.min(axis=1).max() < 1e-4
  np.testing.assert_allclose(fps.radius_K[0], np.abs(expected_eigs).max(), atol=1e-4)
  assert bool(fps.stable_K[0]) is stable


def test_map_without_fixed_points_yields_none_and_keeps_slow_points_out():
  # F(x) − x = 0.3 + 0.1 (x² − 1)² never vanishes: q has local minima (slow points) at
  # x = ±1 with residual 0.3, which descent reaches and which must not be reported.
  f = lambda x: x + 0.3 + 0.1 * (x**2 - 1.0) ** 2
  starts = np.linspace(-2, 2, 16, dtype=np.float32)[:, None]
  xs, res = attractors.find_fixed_points(f, starts, num_steps=400)
  assert np.all(res > 0.29)
  near_slow = np.minimum(np.abs(xs[:, 0] - 1), np.abs(xs[:, 0] + 1)) < 0.05
  assert near_slow.mean() > 0.5  # the search did converge, onto the slow points
  fps = attractors.fixed_points_of(f, starts, num_steps=400)
  assert fps.x_KxH.shape == (0, 1) and fps.eigvals_KxH.shape == (0, 1)
  assert len(fps.stable_K) == 0 and len(fps.hits_K) == 0


def test_integer_starts_are_accepted():
  # A grid built with integer steps is a natural start set; the search must not fail or
  # round on it.
  f, _, _ = _diagonal_tanh_map()
  starts = np.array(list(itertools.product((-3, 3), (0,), (-3, 3))))
  fps = attractors.fixed_points_of(f, starts, num_steps=300)
  assert len(fps.x_KxH) == 4 and bool(np.all(fps.stable_K))
  idx, dist = attractors.assign_attractors(f, starts, fps.x_KxH, num_steps=100)
  assert np.all(dist < 1e-4) and len(set(idx.tolist())) == 4
