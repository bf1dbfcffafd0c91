"""The Flax cell computes the trainer's recurrence from the trainer's initial weights."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_dynamics import rnn
from rnn_dynamics.cells import flax_paper as cell


@pytest.mark.parametrize("init", ["sigmoid", "smart_tanh"])
def test_flax_rnn_of_cell_equals_unroll(init):
  key, k_x = jax.random.split(jax.random.PRNGKey(0))
  T, B, I, H = 9, 3, 4, 6
  xs_BxTxI = jax.random.normal(k_x, (B, T, I))
  model = nn.RNN(cell.PaperRNNCell(H, init=init))
  variables = model.init(key, xs_BxTxI)
  hs_BxTxH = model.apply(variables, xs_BxTxI)

  params = cell.to_params(variables["params"]["cell"], jnp.zeros((H, 2)), jnp.zeros(2))
  mask = jnp.ones((T, B), bool)
  out = rnn.unroll(params, rnn.unit_for_init(init), xs_BxTxI.transpose(1, 0, 2), mask)
  np.testing.assert_allclose(hs_BxTxH, out.h_TxBxH.transpose(1, 0, 2), rtol=1e-5, atol=1e-6)


def test_cell_draws_the_named_initialisation():
  H = 40
  variables = nn.RNN(cell.PaperRNNCell(H, init="smart_tanh")).init(
    jax.random.PRNGKey(1), jnp.zeros((1, 3, 2))
  )
  w_hh = variables["params"]["cell"]["rnn"]["w_hh"]
  # smart_tanh: 15 non-zeros per row and spectral radius 0.95 (docs/reference.md §1).
  np.testing.assert_array_equal(np.count_nonzero(np.asarray(w_hh), axis=1), 15)
  assert np.max(np.abs(np.linalg.eigvals(np.asarray(w_hh)))) == pytest.approx(0.95, rel=1e-4)
