"""Shared test set-up: float64 where asked, and a persistent compilation cache."""

import os
import tempfile

import jax
import pytest

# Compiled programs are reused across test processes (the subprocess tests in particular).
os.environ.setdefault(
  "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "rnn_dynamics_test_jax_cache")
)
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
# Implicit rank promotion hides shape bugs; every test runs with it off (one setting for
# the whole session, so the outcome does not depend on which modules share a worker).
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
  """Runs a test in float64 (gradient checks against finite differences need it)."""
  jax.config.update("jax_enable_x64", True)
  try:
    yield
  finally:
    jax.config.update("jax_enable_x64", False)
