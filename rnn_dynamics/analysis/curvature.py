"""Curvature by Hessian-vector products: the leading eigenpair and its alignment.

The paper's hypothesis (§2.3): when the gradient explodes along a direction `v`, so does
the curvature along `v`, so the error surface has a wall perpendicular to the gradient.
Checking it needs the leading Hessian eigenpair at many points of a training run, which
for any real model must come from Hessian-vector products (`jax.jvp` of `jax.grad`,
forward-over-reverse) and Lanczos, never from a dense Hessian.

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, §2.3.
  Pearlmutter (1994), Fast exact multiplication by the Hessian.
  Golub & Van Loan, Matrix Computations, §10.1 (Lanczos with full reorthogonalisation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

__all__ = [
  "Curvature",
  "alignment",
  "curvature_diagnostics",
  "hvp",
  "lanczos",
  "spike_mask",
  "spike_statistics",
  "top_eigenpair",
]

PyTree = Any


def hvp(loss_fn: Callable[[PyTree], jax.Array], params: PyTree, v: PyTree) -> PyTree:
  """`H v` for `H = ∇²loss_fn(params)`, by forward-over-reverse differentiation.

  Costs about two gradient evaluations and no `O(n²)` memory.

  References:
    Pearlmutter (1994), Fast exact multiplication by the Hessian.
  """
  return jax.jvp(jax.grad(loss_fn), (params,), (v,))[1]


def lanczos(
  matvec: Callable[[jax.Array], jax.Array], v0: jax.Array, num_iters: int
) -> tuple[jax.Array, jax.Array]:
  """Ritz values and vectors of a symmetric operator from `num_iters` Lanczos steps.

  Full reorthogonalisation (twice, against every previous vector) keeps the basis
  orthonormal in float32, so the extreme Ritz values converge without ghost copies.
  With `num_iters ≥ dim` the Ritz values are the exact spectrum.

  Args:
    matvec: `v ↦ A v` on flat vectors of size `dim`.
    v0: starting vector `[dim]` (need not be normalised; should not be orthogonal to the
      wanted eigenvector, a random one almost surely is not).
    num_iters: Krylov dimension `m` (capped at `dim`).

  Returns:
    `(values_M, vectors_MxD)`: Ritz values in increasing order and the corresponding
    unit Ritz vectors as rows.

  References:
    Golub & Van Loan, Matrix Computations, Algorithm 10.1.1 with reorthogonalisation.
  """
  dim = v0.shape[0]
  m = min(num_iters, dim)
  basis_MxD = jnp.zeros((m, dim), v0.dtype)
  v = v0 / jnp.linalg.norm(v0)

  def body(i, carry):
    basis, alphas, betas, v, v_prev, beta_prev = carry
    basis = basis.at[i].set(v)
    w = matvec(v) - beta_prev * v_prev
    alpha = jnp.vdot(w, v)
    w = w - alpha * v
    for _ in range(2):  # "twice is enough" (Kahan–Parlett)
      w = w - basis.T @ (basis @ w)
    beta = jnp.linalg.norm(w)
    # Breakdown: the Krylov space is invariant and the spectrum found is exact; stop
    # feeding new directions (a zero vector contributes nothing after this step).
    v_next = jnp.where(beta > 1e-6 * jnp.abs(alpha) + 1e-30, w / beta, jnp.zeros_like(w))
    return basis, alphas.at[i].set(alpha), betas.at[i].set(beta), v_next, v, beta

  zeros = jnp.zeros((m,), v0.dtype)
  init = (basis_MxD, zeros, zeros, v, jnp.zeros_like(v), jnp.zeros((), v0.dtype))
  basis_MxD, alphas, betas, *_ = jax.lax.fori_loop(0, m, body, init)
  tri = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
  values, s_MxM = jnp.linalg.eigh(tri)
  vectors_MxD = s_MxM.T @ basis_MxD
  vectors_MxD = vectors_MxD / jnp.linalg.norm(vectors_MxD, axis=1, keepdims=True).clip(1e-30)
  return values, vectors_MxD


def top_eigenpair(
  loss_fn: Callable[[PyTree], jax.Array], params: PyTree, key: jax.Array, num_iters: int = 20
) -> tuple[jax.Array, PyTree, jax.Array]:
  """The Hessian eigenvalue of largest magnitude and its unit eigenvector, by Lanczos.

  Args:
    loss_fn: scalar function of a parameter pytree.
    params: where to take the Hessian.
    key: PRNG key for the Lanczos start vector.
    num_iters: Lanczos steps (Hessian-vector products).

  Returns:
    `(eigenvalue, eigenvector, ritz_values)`; the eigenvector has the structure of
    `params`.
  """
  flat, unravel = ravel_pytree(params)
  matvec = lambda v: ravel_pytree(hvp(loss_fn, params, unravel(v)))[0]
  v0 = jax.random.normal(key, flat.shape, flat.dtype)
  values, vectors = lanczos(matvec, v0, num_iters)
  i = jnp.argmax(jnp.abs(values))
  return values[i], unravel(vectors[i]), values


def alignment(a: PyTree, b: PyTree) -> jax.Array:
  """`|cos ∠(a, b)|` of two pytrees seen as flat vectors (eigenvectors have no sign)."""
  fa, fb = ravel_pytree(a)[0], ravel_pytree(b)[0]
  den = jnp.linalg.norm(fa) * jnp.linalg.norm(fb)
  return jnp.abs(jnp.vdot(fa, fb)) / jnp.where(den > 0, den, 1.0)


class Curvature(NamedTuple):
  """Gradient and curvature at one point.

  Attributes:
    loss: the loss.
    grad_norm: `‖∇E‖`.
    top_eigenvalue: the Hessian eigenvalue of largest magnitude, `λ₁`.
    alignment: `|cos ∠(∇E, v₁)|` with `v₁` its eigenvector.
    grad_curvature: `gᵀHg / ‖g‖²`, the curvature along the gradient (the wall's
      steepness in the direction plain gradient descent steps).
  """

  loss: jax.Array
  grad_norm: jax.Array
  top_eigenvalue: jax.Array
  alignment: jax.Array
  grad_curvature: jax.Array


def curvature_diagnostics(
  loss_fn: Callable[[PyTree], jax.Array], params: PyTree, key: jax.Array, num_iters: int = 20
) -> Curvature:
  """Gradient norm, leading Hessian eigenpair and their alignment at `params`.

  Pure and jit-able (close over the data in `loss_fn`); vmap it over points of a
  trajectory to test the hypothesis of §2.3.

  References:
    Pascanu et al. (2013), §2.3: "when gradients explode so does the curvature along v".
  """
  loss, grad = jax.value_and_grad(loss_fn)(params)
  value, vector, _ = top_eigenpair(loss_fn, params, key, num_iters)
  g = ravel_pytree(grad)[0]
  g_sq = jnp.vdot(g, g)
  hg = ravel_pytree(hvp(loss_fn, params, grad))[0]
  return Curvature(
    loss=loss,
    grad_norm=jnp.sqrt(g_sq),
    top_eigenvalue=value,
    alignment=alignment(grad, vector),
    grad_curvature=jnp.vdot(g, hg) / jnp.where(g_sq > 0, g_sq, 1.0),
  )


def spike_mask(grad_norm_N, factor: float = 3.0, window: int | None = None):
  """Gradient-norm spikes: points above `factor` × the median of their neighbourhood.

  `window` (odd, in points) uses a running median, so a spike is judged against the
  current phase of training rather than against the whole run; `None`: global median.
  """
  import numpy as np

  g = np.asarray(grad_norm_N, np.float64)
  if window is None or window >= len(g):
    return g > factor * np.nanmedian(g)
  half = window // 2
  padded = np.pad(g, half, mode="edge")
  windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
  return g > factor * np.nanmedian(windows, axis=1)


def spike_statistics(
  grad_norm_N, top_eigenvalue_N, alignment_N, factor: float = 3.0, window: int | None = None
) -> dict[str, float]:
  """Compares curvature and alignment at gradient-norm spikes with everywhere else.

  Spikes are given by `spike_mask(grad_norm_N, factor, window)`. Also
  returns the Spearman rank correlation of `‖g‖` with `|λ₁|` over all points: near 1
  when gradient and curvature explode together.

  Returns:
    A flat dict with `n_spikes`, `n_other`, `alignment_spikes`, `alignment_other`
    (means), `top_eig_spikes`, `top_eig_other` (medians of `|λ₁|`) and `spearman`.
  """
  import numpy as np  # Host-side statistics on a handful of points.

  g = np.asarray(grad_norm_N, np.float64)
  lam = np.abs(np.asarray(top_eigenvalue_N, np.float64))
  a = np.asarray(alignment_N, np.float64)
  ok = np.isfinite(g) & np.isfinite(lam) & np.isfinite(a)
  spikes = spike_mask(g, factor, window)[ok]
  g, lam, a = g[ok], lam[ok], a[ok]
  rank = lambda x: np.argsort(np.argsort(x)).astype(float)
  rho = float(np.corrcoef(rank(g), rank(lam))[0, 1]) if len(g) > 2 else float("nan")
  stat = lambda f, x: float(f(x)) if len(x) else float("nan")
  return {
    "n_spikes": int(spikes.sum()),
    "n_other": int((~spikes).sum()),
    "alignment_spikes": stat(np.mean, a[spikes]),
    "alignment_other": stat(np.mean, a[~spikes]),
    "top_eig_spikes": stat(np.median, lam[spikes]),
    "top_eig_other": stat(np.median, lam[~spikes]),
    "spearman": rho,
  }
