"""Fixed points, stability and bifurcations of the one-unit map `x ↦ w σ(x) + b`.

The paper's Figure 3 (after Doya, 1993) follows the attractors of a single recurrent
unit with `w = 5` as the bias `b` is swept. Everything here is *solved*, not simulated:
the fixed points are the roots of `g(x) = w σ(x) + b − x`, found in float64 by bisection
on brackets where `g` is provably monotone.

Why the brackets are exact: for the unit family of `rnn.Unit`,
`σ(x) = scale · tanh(slope · x) + shift`, `σ'` is unimodal with its peak at 0, so
`g'(x) = w σ'(x) − 1` has at most two zeros `x₋ < 0 < x₊` (the tangency states, found by
bisection on `g'`). `g` is monotone on `(−∞, x₋]`, `[x₋, x₊]` and `[x₊, ∞)`, so each piece
holds at most one root, bracketed by a sign change; all roots lie in `b + w · σ(ℝ)`. At a
tangency `g(x±) = 0`, which gives the bifurcation values `b = x± − w σ(x±)` directly.

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, §2.2 and Figure 3.
  Doya (1993), Bifurcations of recurrent neural networks in gradient descent learning.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnn_dynamics import rnn

__all__ = [
  "FixedPoints",
  "basin_boundary",
  "bifurcation_points",
  "branches",
  "fixed_points",
  "iterate",
  "one_unit_params",
]

# 200 halvings take any float64 bracket below machine precision.
_BISECTION_STEPS = 200


class FixedPoints(NamedTuple):
  """Fixed points of `x ↦ w σ(x) + b` for a batch of `(w, b)`, NaN-padded to three.

  Attributes:
    x_Nx3: the fixed points in increasing order; NaN where there are fewer than three.
    slope_Nx3: the map's derivative `w σ'(x*)` there (the linearisation).
    stable_Nx3: `|w σ'(x*)| < 1` (False on padding).
    count_N: how many fixed points there are (1, 2 at a tangency, or 3).
  """

  x_Nx3: np.ndarray
  slope_Nx3: np.ndarray
  stable_Nx3: np.ndarray
  count_N: np.ndarray


def one_unit_params(w: jax.typing.ArrayLike, b: jax.typing.ArrayLike) -> rnn.Params:
  """A one-unit, one-input `rnn.Params` with `w_hh = [[w]]`, `b = [b]` and no input.

  Lets the one-unit analyses run the model's own `rnn.step`.
  """
  w, b = jnp.asarray(w), jnp.asarray(b)
  return rnn.Params(
    w_in=jnp.zeros((1, 1), w.dtype),
    w_hh=jnp.reshape(w, (1, 1)),
    b=jnp.reshape(b, (1,)),
    w_out=jnp.ones((1, 1), w.dtype),
    b_out=jnp.zeros((1,), w.dtype),
  )


def iterate(w, b, unit: rnn.Unit, x0, n_steps: int):
  """`x_n` after `n_steps` applications of `rnn.step` of the one-unit network (no input).

  Works elementwise on broadcastable `w`, `b`, `x0` (vmapped).
  """

  def one(w, b, x0):
    params = one_unit_params(w, b)
    u = jnp.zeros((1,), jnp.result_type(x0))

    def body(x, _):
      return rnn.step(params, unit, x, u), None

    x, _ = jax.lax.scan(body, jnp.reshape(x0, (1,)), None, length=n_steps)
    return x[0]

  w, b, x0 = jnp.broadcast_arrays(jnp.asarray(w), jnp.asarray(b), jnp.asarray(x0))
  flat = jax.vmap(one)(w.ravel(), b.ravel(), x0.ravel())
  return flat.reshape(w.shape)


def _bisect(f, lo, hi):
  """Root of an elementwise-monotone `f` on `[lo, hi]` (assumes a sign change)."""
  f_lo = f(lo)

  def body(_, bracket):
    lo, hi, f_lo = bracket
    mid = 0.5 * (lo + hi)
    f_mid = f(mid)
    left = jnp.sign(f_mid) == jnp.sign(f_lo)
    return jnp.where(left, mid, lo), jnp.where(left, hi, mid), jnp.where(left, f_mid, f_lo)

  lo, hi, _ = jax.lax.fori_loop(0, _BISECTION_STEPS, body, (lo, hi, f_lo))
  return 0.5 * (lo + hi)


def _unit_arrays(unit: rnn.Unit):
  return tuple(jnp.asarray(v, jnp.float64) for v in (unit.scale, unit.slope, unit.shift))


def _sigma(unit, x):
  return rnn.activation_and_derivative(rnn.Unit(*_unit_arrays(unit)), x)


def _tangency_states(w, unit):
  """`x₋ ≤ 0 ≤ x₊` with `w σ'(x±) = 1`, by bisection; NaN where `w σ'(0) ≤ 1`."""
  scale, slope, _ = _unit_arrays(unit)
  has = w * scale * slope > 1.0
  g_prime = lambda x: w * _sigma(unit, x)[1] - 1.0  # decreasing on [0, ∞)
  # σ' ≤ scale·slope·4·exp(−2·slope·x) gives a finite upper bracket.
  hi = jnp.log(jnp.maximum(4.0 * w * scale * slope, 2.0)) / (2.0 * slope) + 1.0
  x_plus = _bisect(g_prime, jnp.zeros_like(w), hi)
  x_plus = jnp.where(has, x_plus, jnp.nan)
  return -x_plus, x_plus  # σ' is even for this unit family.


@jax.jit
def _fixed_points(w, b, unit):
  scale, _, shift = _unit_arrays(unit)
  lo_sigma, hi_sigma = shift - jnp.abs(scale), shift + jnp.abs(scale)
  # Every root satisfies x = wσ(x) + b ∈ b + w·[lo, hi]; widen a little so endpoints
  # are strict sign changes.
  left = b + jnp.minimum(w * lo_sigma, w * hi_sigma) - 1.0
  right = b + jnp.maximum(w * lo_sigma, w * hi_sigma) + 1.0
  x_minus, x_plus = _tangency_states(w, unit)
  two = jnp.isfinite(x_plus)
  c1 = jnp.clip(jnp.where(two, x_minus, right), left, right)
  c2 = jnp.clip(jnp.where(two, x_plus, right), left, right)
  g = lambda x: w * _sigma(unit, x)[0] + b - x
  roots = []
  for lo, hi in ((left, c1), (c1, c2), (c2, right)):
    g_lo, g_hi = g(lo), g(hi)
    has_root = (g_lo * g_hi <= 0.0) & (hi > lo)
    root = _bisect(g, lo, hi)
    # A root exactly at a bracket end (a tangency) is picked up by both neighbours.
    roots.append(jnp.where(has_root, root, jnp.nan))
  x = jnp.stack(roots, axis=-1)
  dup = jnp.abs(x[..., 1:] - x[..., :-1]) < 1e-9 * (1.0 + jnp.abs(x[..., 1:]))
  x = x.at[..., 1:].set(jnp.where(dup, jnp.nan, x[..., 1:]))
  # Keep the NaN padding at the end while preserving the increasing order.
  x = jnp.sort(x, axis=-1)
  slope_ = w[..., None] * _sigma(unit, x)[1]
  return x, slope_


def fixed_points(w, b, unit: rnn.Unit = rnn.SIGMOID) -> FixedPoints:
  """All fixed points of `x ↦ w σ(x) + b` and their linear stability, in float64.

  Args:
    w: recurrent weight(s); broadcast against `b`.
    b: bias value(s), e.g. a sweep `np.linspace(-4, 0, 2001)`.
    unit: the non-linearity (default the logistic sigmoid of Figures 3 and 6).

  Returns:
    `FixedPoints` with leading shape `broadcast(w, b).shape` flattened to `N`.

  References:
    Pascanu et al. (2013), §2.2, Figure 3.
  """
  with jax.enable_x64(True):
    w_, b_ = np.broadcast_arrays(np.asarray(w, np.float64), np.asarray(b, np.float64))
    x, slope = _fixed_points(jnp.asarray(w_.ravel()), jnp.asarray(b_.ravel()), unit)
    x, slope = np.asarray(x), np.asarray(slope)
  finite = np.isfinite(x)
  return FixedPoints(
    x_Nx3=x,
    slope_Nx3=slope,
    stable_Nx3=finite & (np.abs(np.nan_to_num(slope, nan=np.inf)) < 1.0),
    count_N=finite.sum(axis=-1),
  )


def basin_boundary(w, b, unit: rnn.Unit = rnn.SIGMOID) -> np.ndarray:
  """The unstable fixed point separating the two basins (NaN outside the bistable range).

  For `w > 0` the map is increasing, so in the three-fixed-point regime the middle one
  is repelling and every start below it goes to the lower attractor, every start above
  it to the upper one: the dashed line of Figure 3.
  """
  fp = fixed_points(w, b, unit)
  return np.where(fp.count_N == 3, fp.x_Nx3[:, 1], np.nan)


def bifurcation_points(w: float = 5.0, unit: rnn.Unit = rnn.SIGMOID) -> dict[str, float]:
  """The two saddle-node bifurcations `b1 > b2` of `x ↦ w σ(x) + b`, located numerically.

  A fixed point is born or dies where it is tangent to the diagonal: `g(x) = 0` and
  `w σ'(x) = 1`. The tangency states `x±` come from bisection on `w σ'(x) − 1`, and
  `b = x − w σ(x)` there.

  Returns:
    `{"b1", "b2", "x1", "x2"}`: following the paper, `b1` is where a second attractor
    emerges as `b` decreases from `+∞` (born at state `x1`), `b2 < b1` where the upper
    one disappears (at `x2`). NaN when `w σ'(0) ≤ 1` (a single attractor for every `b`).

  References:
    Pascanu et al. (2013), §2.2, Figure 3 (the filled circles).
  """
  with jax.enable_x64(True):
    w_ = jnp.asarray(w, jnp.float64)
    x_minus, x_plus = _tangency_states(w_, unit)
    b_of = lambda x: x - w_ * _sigma(unit, x)[0]
    b_minus, b_plus = float(b_of(x_minus)), float(b_of(x_plus))
  (b1, x1), (b2, x2) = sorted(
    [(b_minus, float(x_minus)), (b_plus, float(x_plus))], key=lambda p: -np.nan_to_num(p[0])
  )
  return {"b1": b1, "b2": b2, "x1": x1, "x2": x2}


def branches(w: float, bs_N, unit: rnn.Unit = rnn.SIGMOID) -> dict[str, np.ndarray]:
  """The diagram of Figure 3 as three curves over `bs_N` (NaN where a branch is absent).

  Returns:
    `{"lower", "upper"}`: the two attractor branches (split at the middle of the
    tangency states, which separates them for `w > 0`), `"boundary"`: the repelling
    fixed point between them, `"count"`: the number of fixed points.
  """
  fp = fixed_points(w, bs_N, unit)
  with jax.enable_x64(True):
    x_minus, x_plus = (float(v) for v in _tangency_states(jnp.asarray(w, jnp.float64), unit))
  split = 0.5 * (x_minus + x_plus) if np.isfinite(x_plus) else np.inf
  x = np.where(fp.stable_Nx3, fp.x_Nx3, np.nan)
  with np.errstate(invalid="ignore"):
    lower = np.nanmin(np.where(x < split, x, np.nan), axis=1, initial=np.inf)
    upper = np.nanmax(np.where(x >= split, x, np.nan), axis=1, initial=-np.inf)
  return {
    "lower": np.where(np.isfinite(lower), lower, np.nan),
    "upper": np.where(np.isfinite(upper), upper, np.nan),
    "boundary": np.where(fp.count_N == 3, fp.x_Nx3[:, 1], np.nan),
    "count": fp.count_N,
  }
