"""The matrix exponential from matrix products alone: a Taylor polynomial with scaling and
squaring, and a reverse pass through the same steps.

`expRNN`'s recurrent matrix is `expm(S)`, recomputed and differentiated once per update of
every run. `jax.scipy.linalg.expm` (Padé, scipy's algorithm) is a poor fit for that, for
three reasons measured in docs/results/benchmarks (jax 0.10.2, 2-core CPU):

* its Padé step ends in an LU solve, and two batched LU solves at once (two CPU devices,
  or the forward and the Ω pass of one update) deadlock XLA's CPU runtime;
* under `vmap` its `lax.switch` over Padé orders computes all three orders, and its
  squaring is a scan of 16 conditional squarings, all 16 computed and, for reverse mode,
  stored;
* so the engine's expRNN update ran 7× slower than the same update batched in PyTorch
  (whose `matrix_exp` is a Taylor method).

Here (docs/reference.md §6, "The matrix exponential"): `X = S / 2^s` with `s` the fewest
halvings that bring the 1-norm to `θ` or below; `exp(X) ≈ T_m(X) = Σ_{j≤m} X^j / j!`,
evaluated by Paterson–Stockmeyer in powers of `X⁴`; then `s` squarings. With `θ = 1/2`,
degree 11 in float32 and 15 in float64 keep the truncation error of `T_m` and of its
derivative below the unit round-off (the tail `Σ_{j>m} θ^{j-1}/(j-1)!` is 1.2e-11 and
2.3e-17), so the reverse pass — the exact derivative of these same steps, squarings
undone in reverse order from the stored powers — is as accurate as the forward one.
`s` changes with `S`, so the squarings are a `while` loop (each run of a `vmap`ped batch
stops at its own `s`), and reverse mode through it is the `custom_vjp` below. A 1-norm
past `θ · 2^MAX_SQUARINGS` (or a non-finite `S`) gives NaN, as in `jax.scipy.linalg.expm`:
a diverged run, not a crash.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["MAX_SQUARINGS", "THETA", "degree", "expm"]

THETA = 0.5
MAX_SQUARINGS = 16


def degree(dtype) -> int:
  """The Taylor degree for `dtype` (module docstring)."""
  return 15 if jnp.dtype(dtype) == jnp.float64 else 11


def _taylor(x: jax.Array) -> jax.Array:
  """`Σ_{j≤m} x^j / j!` by Paterson–Stockmeyer: `x², x³, x⁴`, then Horner in `x⁴`."""
  m = degree(x.dtype)
  eye = jnp.eye(x.shape[-1], dtype=x.dtype)
  powers = [eye, x, x @ x]
  powers.append(powers[2] @ x)
  x4 = powers[2] @ powers[2]
  coefficients = [1.0 / math.factorial(j) for j in range(m + 1)]
  blocks = [
    sum(c * powers[r] for r, c in enumerate(coefficients[i : i + 4])) for i in range(0, m + 1, 4)
  ]
  result = blocks[-1]
  for block in reversed(blocks[:-1]):
    result = block + x4 @ result
  return result


def _scaling(a: jax.Array) -> tuple[jax.Array, jax.Array]:
  """`(s, 2^-s)`: the squarings that bring `‖a‖₁` to `THETA` or below (NaN past the cap)."""
  norm = jnp.max(jnp.sum(jnp.abs(a), axis=-2))
  s = jnp.ceil(jnp.log2(jnp.maximum(norm, THETA) / THETA))
  finite = jnp.isfinite(s) & (s <= MAX_SQUARINGS)
  s = jnp.where(finite, s, 0.0).astype(jnp.int32)
  scale = jnp.where(finite, jnp.exp2(-s.astype(a.dtype)), jnp.nan)
  return s, scale


def _forward(a: jax.Array):
  s, scale = _scaling(a)
  x = a * scale
  r = _taylor(x)

  def square(i, carry):
    r, stored = carry
    return r @ r, stored.at[i].set(r)

  stored = jnp.zeros((MAX_SQUARINGS,) + a.shape, a.dtype)
  r, stored = jax.lax.fori_loop(0, s, square, (r, stored))
  return r, (x, scale, s, stored)


@jax.custom_vjp
def expm(a: jax.Array) -> jax.Array:
  """`exp(a)` of one square matrix (`vmap` it for a batch)."""
  return _forward(a)[0]


def _expm_bwd(residuals, g):
  x, scale, s, stored = residuals

  def unsquare(i, g):
    # r_{k+1} = r_k r_k gives ∂/∂r_k = g r_kᵀ + r_kᵀ g, from the last squaring back.
    r = stored[s - 1 - i]
    return g @ r.T + r.T @ g

  g = jax.lax.fori_loop(0, s, unsquare, g)
  (g_x,) = jax.vjp(_taylor, x)[1](g)
  # The scale is piecewise constant in `a` (a power of 2), so `a` enters only through `x`.
  return (g_x * scale,)


expm.defvjp(_forward, _expm_bwd)
