"""The model: initialisations, exact BPTT, adjoints, masking."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import chex  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rnn_dynamics import heads, rnn  # noqa: E402
from rnn_dynamics.tasks.base import Batch  # noqa: E402

T, B, I, H, O = 7, 3, 4, 5, 3
HEADS = ("last_softmax", "all_softmax", "last_linear", "all_bernoulli")


def _batch(key, head, lengths=(7, 4, 1), dtype=jnp.float64):
  k_x, k_t = jax.random.split(key)
  mask = jnp.arange(T)[:, None] < jnp.asarray(lengths)[None, :]
  x = jax.random.normal(k_x, (T, B, I), dtype) * mask[..., None]
  if head == "last_softmax":
    targets = jnp.asarray([0, 2, 1])
  elif head == "all_softmax":
    targets = jax.random.randint(k_t, (T, B), 0, O)
  elif head == "last_linear":
    targets = jax.random.normal(k_t, (B, O), dtype)
  else:
    targets = (jax.random.uniform(k_t, (T, B, O)) > 0.5).astype(dtype)
  return Batch(x, targets, mask)


def _params(key, init, scale=5.0):
  # Larger weights than the inits so the recurrence is far from linear.
  p = rnn.init_params(key, I, H, O, init)
  return jax.tree.map(lambda a: a.astype(jnp.float64) * scale + 0.1, p)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("init", ["sigmoid", "basic_tanh"])
@pytest.mark.parametrize("lengths", [(7, 7, 7), (7, 4, 1)], ids=["full", "masked"])
def test_gradient_matches_finite_differences(x64, head, init, lengths):
  key = jax.random.PRNGKey(0)
  params, unit = _params(key, init), rnn.unit_for_init(init)
  batch = _batch(jax.random.PRNGKey(1), head, lengths)
  _, grads, _ = rnn.loss_and_grads(params, unit, batch, head)
  flat, unravel = ravel_pytree(params)
  loss = lambda f: rnn.loss_fn(unravel(f), unit, batch, head)[0]
  g_flat = ravel_pytree(grads)[0]
  eps = 1e-6
  coords = np.random.default_rng(0).choice(flat.size, size=40, replace=False)
  steps = jnp.zeros((coords.size, flat.size), flat.dtype).at[np.arange(coords.size), coords].set(eps)
  # All 40 central differences in one compiled program (a Python loop re-traces every call).
  fd = jax.jit(jax.vmap(lambda e: (loss(flat + e) - loss(flat - e)) / (2 * eps)))(steps)
  np.testing.assert_allclose(g_flat[coords], fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("head", HEADS)
def test_gradient_matches_autodiff(x64, head):
  params, unit = _params(jax.random.PRNGKey(2), "smart_tanh"), rnn.TANH
  batch = _batch(jax.random.PRNGKey(3), head)
  loss, grads, fwd = rnn.loss_and_grads(params, unit, batch, head)
  ref_loss, ref_grads = jax.value_and_grad(lambda p: rnn.loss_fn(p, unit, batch, head)[0])(params)
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
  # The same tree as the parameters, leaf for leaf (a zip of leaves would not notice a
  # missing or reordered field), and autodiff's values.
  chex.assert_trees_all_equal_shapes_and_dtypes(grads, params)
  chex.assert_trees_all_close(grads, ref_grads, rtol=1e-9, atol=1e-12)
  # What the backward pass hands out beside the gradient: per-step, per-sequence adjoints.
  adj = fwd.adjoints
  chex.assert_shape([adj.dx_TxBxH, adj.dh_TxBxH, adj.back_TxBxH, fwd.h_prev_TxBxH], (T, B, H))
  chex.assert_shape([adj.dh_sq_TxB, adj.back_sq_TxB, adj.back_act_sq_TxB], (T, B))
  chex.assert_tree_all_finite(fwd)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("init", ["sigmoid", "basic_tanh"])
def test_initial_state_gradient_matches_autodiff(x64, head, init):
  # Truncated BPTT starts a segment from the carried state, held constant.
  params, unit = _params(jax.random.PRNGKey(6), init), rnn.unit_for_init(init)
  batch = _batch(jax.random.PRNGKey(7), head)
  h0 = rnn.activation(unit, jax.random.normal(jax.random.PRNGKey(8), (B, H), jnp.float64))
  loss, grads, fwd = rnn.loss_and_grads(params, unit, batch, head, h0_BxH=h0)
  ref = lambda p: rnn.loss_fn(p, unit, batch, head, h0_BxH=h0)[0]
  ref_loss, ref_grads = jax.value_and_grad(ref)(params)
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
  np.testing.assert_allclose(
    fwd.adjoints.dx_TxBxH, _probe_adjoints(params, unit, batch, head, h0=h0), atol=1e-12
  )
  # The default is the zero state.
  zero = rnn.loss_and_grads(params, unit, batch, head, h0_BxH=jnp.zeros((B, H)))
  default = rnn.loss_and_grads(params, unit, batch, head)
  for a, b in zip(jax.tree.leaves(zero[1]), jax.tree.leaves(default[1])):
    np.testing.assert_array_equal(a, b)


def _probe_adjoints(params, unit, batch, head, h0=None):
  """∂E/∂x_t by autodiff: add a zero probe to every pre-activation and differentiate."""

  def loss(probe_TxBxH):
    def body(h_prev, xs):
      drive, valid, probe = xs
      x = h_prev @ params.w_hh + drive + probe
      h = jnp.where(valid[:, None], rnn.activation(unit, x), h_prev)
      return h, h

    drive = batch.inputs @ params.w_in + params.b[None, None, :]
    start = jnp.zeros((B, H)) if h0 is None else h0
    h_last, hs = jax.lax.scan(body, start, (drive, batch.mask, probe_TxBxH))
    return heads.readout_loss(params, hs, h_last, batch, head)[0]

  return jax.grad(loss)(jnp.zeros((T, B, H)))


@pytest.mark.parametrize("head", HEADS)
def test_saved_adjoints_match_probe_autodiff(x64, head):
  params, unit = _params(jax.random.PRNGKey(4), "sigmoid"), rnn.SIGMOID
  batch = _batch(jax.random.PRNGKey(5), head)
  _, _, fwd = rnn.loss_and_grads(params, unit, batch, head)
  adj = fwd.adjoints
  np.testing.assert_allclose(adj.dx_TxBxH, _probe_adjoints(params, unit, batch, head), atol=1e-12)
  # The other saved quantities are consistent with dx.
  np.testing.assert_allclose(adj.back_TxBxH, adj.dx_TxBxH @ params.w_hh.T, atol=1e-12)
  valid = batch.mask[..., None]
  np.testing.assert_allclose(
    jnp.where(valid, adj.dh_TxBxH * fwd.unroll.dsigma_TxBxH, 0.0), adj.dx_TxBxH, atol=1e-12
  )
  np.testing.assert_allclose(adj.dh_sq_TxB, jnp.sum(adj.dh_TxBxH**2, -1), rtol=1e-10, atol=1e-20)
  np.testing.assert_allclose(adj.back_sq_TxB, jnp.sum(adj.back_TxBxH**2, -1), rtol=1e-10,
                             atol=1e-20)


def test_state_at_t_does_not_depend_on_later_inputs(x64):
  params, unit = _params(jax.random.PRNGKey(6), "basic_tanh"), rnn.TANH
  batch = _batch(jax.random.PRNGKey(7), "all_softmax", (7, 7, 7))
  jac = jax.jacobian(lambda u: rnn.unroll(params, unit, u, batch.mask).h_TxBxH)(batch.inputs)
  # jac[t, b, :, s, b', :] = ∂h_t/∂u_s: zero for s > t, non-zero for s = t.
  jac = np.asarray(jac)
  for t in range(T):
    assert np.all(jac[t, :, :, t + 1 :] == 0.0)
    assert np.abs(jac[t, :, :, t]).max() > 0


@pytest.mark.parametrize("head", HEADS)
def test_nothing_depends_on_inputs_after_a_sequence_ends(x64, head):
  """The adjoint at step t (and every gradient) ignores what the padding holds."""
  params, unit = _params(jax.random.PRNGKey(8), "basic_tanh"), rnn.TANH
  batch = _batch(jax.random.PRNGKey(9), head, (7, 4, 1))
  junk = jax.random.normal(jax.random.PRNGKey(10), batch.inputs.shape) * ~batch.mask[..., None]
  noisy = batch._replace(inputs=batch.inputs + 100.0 * junk)
  a = rnn.loss_and_grads(params, unit, batch, head)
  b = rnn.loss_and_grads(params, unit, noisy, head)
  np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
  np.testing.assert_allclose(a[2].adjoints.dx_TxBxH, b[2].adjoints.dx_TxBxH, atol=1e-13)
  for x, y in zip(jax.tree.leaves(a[1]), jax.tree.leaves(b[1])):
    np.testing.assert_allclose(x, y, atol=1e-12)


def test_masked_sequence_equals_its_unpadded_self(x64):
  params, unit = _params(jax.random.PRNGKey(11), "basic_tanh"), rnn.TANH
  batch = _batch(jax.random.PRNGKey(12), "last_softmax", (4, 4, 4))
  short = Batch(batch.inputs[:4], batch.targets, batch.mask[:4])
  np.testing.assert_allclose(
    rnn.loss_fn(params, unit, batch, "last_softmax")[0],
    rnn.loss_fn(params, unit, short, "last_softmax")[0],
    rtol=1e-12,
  )


def test_units_are_tanh_and_sigmoid():
  x = jnp.linspace(-6, 6, 101)
  np.testing.assert_allclose(rnn.activation(rnn.TANH, x), jnp.tanh(x), atol=1e-6)
  np.testing.assert_allclose(rnn.activation(rnn.SIGMOID, x), jax.nn.sigmoid(x), atol=1e-6)
  for unit, f in [(rnn.TANH, jnp.tanh), (rnn.SIGMOID, jax.nn.sigmoid)]:
    d = jax.vmap(jax.grad(f))(x)
    np.testing.assert_allclose(rnn.activation_and_derivative(unit, x)[1], d, atol=1e-6)
    np.testing.assert_allclose(rnn.derivative_from_output(unit, f(x)), d, atol=1e-6)


def test_init_statistics():
  key = jax.random.PRNGKey(13)
  for name, scale in [("sigmoid", 0.01), ("basic_tanh", 0.1)]:
    p = rnn.init_params(key, 6, 200, 4, name)
    assert abs(float(jnp.std(p.w_hh)) - scale) < 0.05 * scale
    assert abs(float(jnp.std(p.w_in)) - scale) < 0.1 * scale
    assert float(jnp.abs(p.b).max()) == 0.0 and float(jnp.abs(p.b_out).max()) == 0.0
  p = rnn.init_params(key, 6, 50, 4, "smart_tanh")
  w = np.asarray(p.w_hh, np.float64)
  assert np.all((w != 0).sum(axis=1) == 15)
  np.testing.assert_allclose(np.max(np.abs(np.linalg.eigvals(w))), 0.95, rtol=1e-5)
  assert abs(float(jnp.std(p.w_in)) - 0.01) < 0.002


def test_init_by_traced_id_matches_by_name():
  key = jax.random.PRNGKey(14)
  ids = jnp.asarray([rnn.init_id(n) for n in rnn.INITS])
  stacked = jax.jit(jax.vmap(lambda i: rnn.init_params(key, 6, 50, 4, i)))(ids)
  chex.assert_tree_shape_prefix(stacked, (len(rnn.INITS),))  # one row per init, every leaf
  for k, name in enumerate(rnn.INITS):
    by_name = rnn.init_params(key, 6, 50, 4, name)
    for a, b in zip(jax.tree.leaves(stacked), jax.tree.leaves(by_name)):
      np.testing.assert_allclose(a[k], b, rtol=1e-5, atol=1e-7)
    u = rnn.unit_for_init(ids[k])
    assert float(u.scale) == rnn.INITS[name].unit.scale


def test_unknown_init_is_a_clear_error():
  with pytest.raises(ValueError, match="smart_tanh"):
    rnn.init_params(jax.random.PRNGKey(0), 2, 3, 2, "smart")
