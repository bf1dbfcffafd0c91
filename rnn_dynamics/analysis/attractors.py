"""Fixed points of the autonomous map of a trained network and their stability.

The input-free dynamics `F(x) = σ(x) @ w_hh + b` (or with a constant input folded in,
`F(x) = rnn.step(params, unit, x, ū)`, the paper's `F̃` of §2.2) shape what a network
can remember: the paper suggests (§4.1.1) that a solved temporal-order model keeps the
first symbol in an attractor. This module finds the fixed points from many starts at
once — Adam on `q(x) = ½‖F(x) − x‖²`, vmapped, then safeguarded Newton steps to polish
them to machine precision — removes duplicates, linearises `F` at each (eigenvalues of
`∂F/∂x`) and asks which attractor a state flows to.

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, §2.2 and §4.1.1.
  Sussillo & Barak (2013), Opening the black box: low-dimensional dynamics in
  high-dimensional recurrent neural networks (the `q` minimisation).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnn_dynamics import rnn

__all__ = [
  "FixedPointSet",
  "assign_attractors",
  "centroid_accuracy",
  "find_fixed_points",
  "fixed_points_of",
  "flow",
  "label_purity",
  "linear_stability",
  "map_for",
  "unique_points",
]

Map = Callable[[jax.Array], jax.Array]


def _as_states(xs: jax.typing.ArrayLike) -> jax.Array:
  """States as a floating array: an integer grid of starts is a natural input, but
  `jax.grad`, `jax.jacfwd` and the `lax.scan` carry of `F` all need a float dtype."""
  xs = jnp.asarray(xs)
  return xs if jnp.issubdtype(xs.dtype, jnp.inexact) else xs.astype(jnp.result_type(float))


class FixedPointSet(NamedTuple):
  """Distinct fixed points and their linearisation.

  Attributes:
    x_KxH: the fixed points.
    residual_K: `‖F(x) − x‖` at each.
    eigvals_KxH: eigenvalues of `∂F/∂x` (complex).
    radius_K: their largest modulus.
    stable_K: `radius < 1`: an attractor.
    hits_K: how many starts converged to each.
  """

  x_KxH: np.ndarray
  residual_K: np.ndarray
  eigvals_KxH: np.ndarray
  radius_K: np.ndarray
  stable_K: np.ndarray
  hits_K: np.ndarray


def map_for(params: rnn.Params, unit: rnn.Unit, u_I: jax.Array | None = None) -> Map:
  """The autonomous map `x ↦ rnn.step(params, unit, x, u)` with a constant input.

  `u = 0` (default) gives `rnn.autonomous_map`; the mean input of a task gives the
  map the network sees "on average", the paper's `F̃ ∘ U`.
  """
  if u_I is None:
    u_I = jnp.zeros((params.w_in.shape[0],), params.w_hh.dtype)
  return lambda x: rnn.step(params, unit, x, u_I)


@functools.partial(jax.jit, static_argnames=("map_fn", "num_steps", "newton_steps"))
def _solve(map_fn, x0s_NxH, learning_rate, num_steps, newton_steps):
  q = lambda x: 0.5 * jnp.sum((map_fn(x) - x) ** 2)
  tx = optax.adam(optax.cosine_decay_schedule(learning_rate, num_steps))

  def adam_one(x0):
    def body(carry, _):
      x, state = carry
      g = jax.grad(q)(x)
      step, state = tx.update(g, state, x)
      return (x + step, state), None

    (x, _), _ = jax.lax.scan(body, (x0, tx.init(x0)), None, length=num_steps)
    return x

  def newton_one(x):
    eye = jnp.eye(x.shape[0], dtype=x.dtype)

    def body(x, _):
      r = map_fn(x) - x
      jac = jax.jacfwd(map_fn)(x) - eye
      x_new = x - jnp.linalg.solve(jac, r)
      # Newton diverges from poor starts or near singular (J − I): keep only improvements.
      ok = jnp.all(jnp.isfinite(x_new)) & (q(x_new) < q(x))
      return jnp.where(ok, x_new, x), None

    x, _ = jax.lax.scan(body, x, None, length=newton_steps)
    return x

  xs = jax.vmap(adam_one)(x0s_NxH)
  xs = jax.vmap(newton_one)(xs)
  return xs, jnp.sqrt(2.0 * jax.vmap(q)(xs))


def find_fixed_points(
  map_fn: Map,
  x0s_NxH: jax.typing.ArrayLike,
  learning_rate: float = 0.05,
  num_steps: int = 1000,
  newton_steps: int = 20,
) -> tuple[np.ndarray, np.ndarray]:
  """Minimises `½‖F(x) − x‖²` from every start at once.

  Args:
    map_fn: the map `F` on one state `[H] -> [H]` (hashable: the same callable reuses
      the compiled program).
    x0s_NxH: starts, e.g. states visited on task data plus noise.
    learning_rate: Adam step size (cosine-decayed to 0).
    num_steps: Adam steps.
    newton_steps: safeguarded Newton steps afterwards.

  Returns:
    `(xs_NxH, residual_N)` with `residual = ‖F(x) − x‖`; slow points (local minima of
    `q` that are not zeros) keep a large residual.
  """
  xs, res = _solve(map_fn, _as_states(x0s_NxH), jnp.asarray(learning_rate), num_steps, newton_steps)
  return np.asarray(xs), np.asarray(res)


def unique_points(
  xs_NxH: np.ndarray, residual_N: np.ndarray, tol: float = 1e-4, radius: float = 1e-3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Keeps the converged points (`residual < tol`) and merges those within `radius`.

  Returns:
    `(x_KxH, residual_K, hits_K)`, representatives with the smallest residual first.
  """
  keep = np.isfinite(residual_N) & (residual_N < tol)
  xs, res = np.asarray(xs_NxH)[keep], np.asarray(residual_N)[keep]
  order = np.argsort(res)
  reps, rep_res, hits = [], [], []
  for i in order:
    if reps:
      d = np.linalg.norm(np.stack(reps) - xs[i], axis=1)
      j = int(np.argmin(d))
      if d[j] < radius * (1.0 + np.linalg.norm(reps[j])):
        hits[j] += 1
        continue
    reps.append(xs[i])
    rep_res.append(res[i])
    hits.append(1)
  h = xs_NxH.shape[1]
  return (np.stack(reps) if reps else np.zeros((0, h)), np.asarray(rep_res), np.asarray(hits))


def linear_stability(map_fn: Map, x_KxH: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Eigenvalues of the Jacobian `∂F/∂x` at each point, and their largest modulus.

  Non-symmetric eigenvalues have no accelerator kernel, so they are taken on the host.
  """
  if len(x_KxH) == 0:
    h = x_KxH.shape[1]
    return np.zeros((0, h), np.complex128), np.zeros((0,))
  jac_KxHxH = np.asarray(jax.vmap(jax.jacfwd(map_fn))(_as_states(x_KxH)), np.float64)
  eig = np.linalg.eigvals(jac_KxHxH)
  return eig, np.max(np.abs(eig), axis=-1)


def fixed_points_of(
  map_fn: Map,
  x0s_NxH: jax.typing.ArrayLike,
  tol: float = 1e-4,
  radius: float = 1e-3,
  **solver_kwargs,
) -> FixedPointSet:
  """`find_fixed_points` + `unique_points` + `linear_stability` in one call.

  References:
    Pascanu et al. (2013), §2.2 (attractors of the autonomous map `F̃`).
  """
  xs, res = find_fixed_points(map_fn, x0s_NxH, **solver_kwargs)
  x, r, hits = unique_points(xs, res, tol=tol, radius=radius)
  eig, rad = linear_stability(map_fn, x)
  return FixedPointSet(x, r, eig, rad, rad < 1.0, hits)


@functools.partial(jax.jit, static_argnames=("map_fn", "num_steps"))
def _flow(map_fn, xs_NxH, num_steps):
  def body(x, _):
    return jax.vmap(map_fn)(x), None

  return jax.lax.scan(body, xs_NxH, None, length=num_steps)[0]


def flow(map_fn: Map, xs_NxH: jax.typing.ArrayLike, num_steps: int) -> np.ndarray:
  """`F^num_steps(x)` for every state (vmapped)."""
  return np.asarray(_flow(map_fn, _as_states(xs_NxH), num_steps))


def centroid_accuracy(xs_NxH: np.ndarray, labels_N: np.ndarray) -> float:
  """Nearest-class-centroid accuracy: is a label still readable from the states?

  Complements `label_purity` when the dynamics has no point attractor (a limit cycle
  or slow transient can hold the label too).
  """
  xs_NxH, labels_N = np.asarray(xs_NxH, np.float64), np.asarray(labels_N)
  classes = np.unique(labels_N)
  centroids = np.stack([xs_NxH[labels_N == c].mean(0) for c in classes])
  d = np.linalg.norm(xs_NxH[:, None] - centroids[None], axis=-1)
  return float(np.mean(classes[np.argmin(d, axis=1)] == labels_N))


def assign_attractors(
  map_fn: Map, xs_NxH: jax.typing.ArrayLike, attractors_KxH: np.ndarray, num_steps: int = 500
) -> tuple[np.ndarray, np.ndarray]:
  """Runs `F` from each state for `num_steps` and names the nearest attractor.

  Returns:
    `(index_N, distance_N)`: the nearest attractor's row in `attractors_KxH` (−1 when
    there are none) and the distance left after `num_steps`; a large distance means the
    state did not settle on any listed attractor (a limit cycle, chaos, or a missed one).
  """
  final = flow(map_fn, xs_NxH, num_steps)
  if len(attractors_KxH) == 0:
    return -np.ones(len(final), int), np.full(len(final), np.inf)
  d_NxK = np.linalg.norm(final[:, None, :] - np.asarray(attractors_KxH)[None], axis=-1)
  return np.argmin(d_NxK, axis=1), np.min(d_NxK, axis=1)


def label_purity(index_N: np.ndarray, labels_N: np.ndarray) -> float:
  """How well the attractor reached predicts a label: majority-vote accuracy.

  1.0 means every attractor collects one label only (the label is held by the
  attractor); the fraction of the most common label means the attractors carry no
  information about it.
  """
  index_N, labels_N = np.asarray(index_N), np.asarray(labels_N)
  correct = 0
  for k in np.unique(index_N):
    _, counts = np.unique(labels_N[index_N == k], return_counts=True)
    correct += counts.max()
  return correct / max(len(labels_N), 1)
