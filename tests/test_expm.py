"""`cells.expm` against scipy's Padé `expm` and `expm_frechet` (an independent algorithm):
values, reverse-mode derivatives, a `vmap`ped batch of different norms, non-finite input,
and the absence of linear solves in the compiled program."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from rnn_dynamics.cells import expm as expm_lib


def _skew(n, scale, seed=0):
  a = np.random.default_rng(seed).normal(size=(n, n)) * scale / np.sqrt(n)
  return a - a.T


# Norms from no squaring (‖S‖₁ < θ) to several, and a general (not skew) matrix.
_CASES = [(6, 0.05), (30, 1.0), (50, 4.0), (12, 60.0)]


@pytest.mark.parametrize("n,scale", _CASES)
def test_value_and_derivative_match_scipy_in_float64(x64, n, scale):
  s = _skew(n, scale)
  g = np.random.default_rng(1).normal(size=(n, n))
  np.testing.assert_allclose(expm_lib.expm(jnp.asarray(s)), scipy.linalg.expm(s), atol=1e-13)
  grad = jax.grad(lambda a: jnp.sum(expm_lib.expm(a) * g))(jnp.asarray(s))
  # ⟨G, L(S, E)⟩ = ⟨L(Sᵀ, G), E⟩: the gradient is the Fréchet derivative at Sᵀ.
  frechet = scipy.linalg.expm_frechet(s.T, g, compute_expm=False)
  np.testing.assert_allclose(grad, frechet, atol=1e-12 * np.abs(frechet).max())


def test_general_matrix_and_float32():
  a = np.random.default_rng(2).normal(size=(20, 20)).astype(np.float32)
  got = expm_lib.expm(jnp.asarray(a))
  assert got.dtype == jnp.float32
  ref = scipy.linalg.expm(a.astype(np.float64))
  np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-5 * np.abs(ref).max())


def test_vmapped_runs_each_stop_at_their_own_squarings(x64):
  # One run needs no squaring, the other five: the batched while loop must not square the
  # first past its own count.
  small, large = _skew(8, 0.01), _skew(8, 20.0)
  got = jax.vmap(expm_lib.expm)(jnp.asarray(np.stack([small, large])))
  np.testing.assert_allclose(got[0], scipy.linalg.expm(small), atol=1e-14)
  np.testing.assert_allclose(got[1], scipy.linalg.expm(large), atol=1e-12)
  g = np.ones((2, 8, 8))
  grads = jax.grad(lambda a: jnp.sum(jax.vmap(expm_lib.expm)(a) * g))(
    jnp.asarray(np.stack([small, large]))
  )
  for i, s in enumerate((small, large)):
    np.testing.assert_allclose(
      grads[i], scipy.linalg.expm_frechet(s.T, g[i], compute_expm=False), atol=1e-11
    )


def test_non_finite_and_huge_input_give_nan_not_a_hang():
  assert np.isnan(expm_lib.expm(jnp.full((3, 3), jnp.nan))).all()
  huge = expm_lib.THETA * 2.0 ** (expm_lib.MAX_SQUARINGS + 1) * jnp.eye(3)
  assert np.isnan(expm_lib.expm(huge)).all()


def _lowered(expm):
  s = jnp.asarray(_skew(10, 2.0), jnp.float32)[None]
  return jax.jit(jax.grad(lambda a: jnp.sum(jax.vmap(expm)(a)))).lower(s).as_text().lower()


def test_no_linear_solve_in_the_program():
  # Two batched LU solves at once deadlock XLA's CPU runtime (module docstring). The check
  # sees scipy's Padé solve, so its silence about this one means something.
  assert "getrf" in _lowered(jax.scipy.linalg.expm)
  assert "getrf" not in _lowered(expm_lib.expm)
