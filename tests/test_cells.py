"""The cell interface: the autodiff path and the generic Ω against the paper's hand-written
BPTT and Ω, and any cell through the trainer.

The `tanh` cell is the paper's network written as a `Cell` (pre-activation carry), so on
the same weights its loss, gradient, adjoints and Ω must equal `rnn.loss_and_grads` and
`regularizers.omega` to round-off (float64). A cell with the post-activation `h` as its
carry (defined here) must reproduce the `original` form's value, which the authors' code
computed on `h`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_dynamics import algorithms, cells, regularizers, rnn
from rnn_dynamics.cells import autodiff, vanilla
from rnn_dynamics.cells.base import Cell, CellParams
from rnn_dynamics.synthetic import train
from rnn_dynamics.tasks.base import Batch
from conftest import tiny_trainer_config

T, B, I, H, O = 7, 3, 4, 5, 3


def _rnn_params(seed=0):
  rng = np.random.default_rng(seed)
  f = lambda std, *shape: jnp.asarray(std * rng.standard_normal(shape), jnp.float64)  # noqa: E731
  return rnn.Params(
    w_in=f(1.0, I, H), w_hh=f(0.8, H, H), b=f(0.3, H), w_out=f(1.0, H, O), b_out=f(0.3, O)
  )


def _as_cell_params(p: rnn.Params) -> CellParams:
  return CellParams(dict(w_in=p.w_in, w_hh=p.w_hh, b=p.b), p.w_out, p.b_out)


def _batch(head, seed=1):
  """A padded batch: sequences of lengths T, T-2 and T-4 (valid steps a prefix)."""
  rng = np.random.default_rng(seed)
  lengths = np.array([T, T - 2, T - 4])
  mask = np.arange(T)[:, None] < lengths[None, :]
  inputs = np.where(mask[..., None], rng.standard_normal((T, B, I)), 0.0)
  if head == "last_softmax":
    targets = jnp.asarray(rng.integers(0, O, B), jnp.int32)
  else:
    targets = jnp.asarray(rng.integers(0, O, (T, B)), jnp.int32)
  return Batch(jnp.asarray(inputs, jnp.float64), targets, jnp.asarray(mask))


def _close(a, b, rtol=1e-10, atol=1e-12):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


@pytest.mark.parametrize("head", ["last_softmax", "all_softmax"])
def test_autodiff_tanh_cell_equals_hand_written_bptt(x64, head):
  params, batch = _rnn_params(), _batch(head)
  loss, grads, fwd = rnn.loss_and_grads(params, rnn.TANH, batch, head)
  value, error, g, adjoints, _ = autodiff.loss_and_adjoints(
    vanilla.tanh(), _as_cell_params(params), batch, head
  )
  _close(value, loss)
  _close(error, fwd.error)
  for name in ("w_in", "w_hh", "b"):
    _close(g.cell[name], getattr(grads, name))
  _close(g.w_out, grads.w_out)
  _close(g.b_out, grads.b_out)
  # ∂E/∂x_t on valid steps is the paper's δ_t (the hand-written pass zeroes padded ones).
  valid = np.asarray(batch.mask)[..., None]
  _close(np.where(valid, adjoints, 0.0), fwd.adjoints.dx_TxBxH)


@pytest.mark.parametrize("head", ["last_softmax", "all_softmax"])
def test_generic_omega_equals_paper_form_value_and_gradient(x64, head):
  """Ω of the `tanh` cell's transition is the paper's eq. (9); its immediate gradient is
  eq. (10)'s W_rec gradient, and zero for the input weights and bias (with the carry
  held constant, the Jacobian `W_recᵀ diag σ'(x_{k})` does not involve them)."""
  params, batch = _rnn_params(2), _batch(head, 3)
  _, _, fwd = rnn.loss_and_grads(params, rnn.TANH, batch, head)
  a = fwd.adjoints
  want, want_kept = regularizers.omega(
    params.w_hh, a.dx_TxBxH, a.dh_TxBxH, fwd.unroll.dsigma_TxBxH, batch.mask, form="paper"
  )
  want_grad = jax.grad(
    lambda w: regularizers.omega(
      w, a.dx_TxBxH, a.dh_TxBxH, fwd.unroll.dsigma_TxBxH, batch.mask, form="paper"
    )[0]
  )(params.w_hh)

  cell = vanilla.tanh()
  cp = _as_cell_params(params)
  _, _, _, adjoints, out = autodiff.loss_and_adjoints(cell, cp, batch, head)
  transition = lambda p, before: jax.vmap(lambda c, d: cell.step(p, c, d))(  # noqa: E731
    before, cell.drive(p, batch.inputs)
  )
  before = jax.tree.map(
    lambda c0, cs: jnp.concatenate([c0[None], cs[:-1]]), out.carry0, out.carries
  )
  got, grad, kept = regularizers.omega_of_transition(
    transition, cp.cell, before, adjoints, batch.mask, form="paper"
  )
  assert float(want) > 1e-3  # not a vacuous comparison
  _close(got, want)
  _close(kept, want_kept)
  _close(grad["w_hh"], want_grad)
  _close(grad["w_in"], np.zeros((I, H)))
  _close(grad["b"], np.zeros(H))


def _h_carry_tanh() -> Cell:
  """The paper's tanh network with the post-activation `h` as its carry (the authors'
  code's state)."""

  def step(p, h, u):
    return jnp.tanh(h @ p["w_hh"] + u @ p["w_in"] + p["b"][None, :])

  return Cell(
    name="tanh_h",
    init=None,
    initial_carry=lambda p, batch, dtype: jnp.zeros((batch, p["w_hh"].shape[0]), dtype),
    step=step,
    features=lambda p, h: h,
    n_features=lambda n: n,
  )


def test_generic_omega_on_h_carry_equals_original_form_value(x64):
  params, batch = _rnn_params(4), _batch("last_softmax", 5)
  _, _, fwd = rnn.loss_and_grads(params, rnn.TANH, batch, "last_softmax")
  a = fwd.adjoints
  want, _ = regularizers.omega(
    params.w_hh, a.dx_TxBxH, a.dh_TxBxH, fwd.unroll.dsigma_TxBxH, batch.mask, form="original"
  )
  cell = _h_carry_tanh()
  cp = _as_cell_params(params)
  _, _, _, adjoints, out = autodiff.loss_and_adjoints(cell, cp, batch, "last_softmax")
  _close(adjoints, a.dh_TxBxH)
  transition = lambda p, before: jax.vmap(lambda c, u: cell.step(p, c, u))(  # noqa: E731
    before, batch.inputs
  )
  before = jnp.concatenate([out.carry0[None], out.carries[:-1]])
  got, _, _ = regularizers.omega_of_transition(
    transition, cp.cell, before, adjoints, batch.mask, form="original"
  )
  assert float(want) > 1e-3
  _close(got, want)


@pytest.mark.parametrize("alpha", [0.0, 2.5])
def test_update_gradient_is_error_plus_alpha_omega(x64, alpha):
  """What the trainer gets from a cell model: `∂E/∂θ + α ∂⁺Ω/∂θ`, matching the paper's
  fast path (paper form) on the same weights."""
  params, batch = _rnn_params(6), _batch("last_softmax", 7)
  hp = algorithms.hparams("sgd_cr", lr=0.01, clip=1.0, alpha=alpha, init="basic_tanh")
  omega = cells.OmegaSettings(jnp.float64(alpha), True, "paper", 1e-20)
  fast = cells.get_model("rnn").loss_and_grads(params, hp, batch, "last_softmax", omega)
  slow = cells.get_model("tanh").loss_and_grads(
    _as_cell_params(params), hp, batch, "last_softmax", omega
  )
  _close(slow.loss, fast.loss)
  _close(slow.omega, fast.omega)
  for name in ("w_in", "w_hh", "b"):
    _close(slow.grads.cell[name], getattr(fast.grads, name))
  off = cells.OmegaSettings(jnp.float64(alpha), False, "paper", 1e-20)
  skipped = cells.get_model("tanh").loss_and_grads(
    _as_cell_params(params), hp, batch, "last_softmax", off
  )
  assert np.isnan(skipped.omega)
  if alpha:
    assert not np.allclose(skipped.grads.cell["w_hh"], slow.grads.cell["w_hh"])


@pytest.mark.parametrize("cell", cells.CELLS)
def test_every_cell_trains_through_the_trainer(cell):
  """One chunk of SGD-CR for every registered cell: finite loss and Ω, parameters moved,
  and the update count advanced, all through the one `make_train`; then the top
  Lyapunov exponents the traces log, from JVPs of the cell's step."""
  config = tiny_trainer_config(cell=cell)
  trainer = train.make_train(config)
  hp = algorithms.hparams("sgd_cr", lr=0.05, clip=1.0, alpha=2.0, init="basic_tanh")
  state = jax.jit(trainer.init)(jax.random.PRNGKey(0), hp)
  new, m = jax.jit(trainer.chunk)(state, hp)
  assert int(new.step) == config.chunk_size
  assert np.all(np.isfinite(np.asarray(m.loss)))
  assert np.all(np.isfinite(np.asarray(m.omega)))
  moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new.params, state.params)
  assert any(jax.tree.leaves(moved))
  err = trainer.evaluate(new.params, hp, jax.random.PRNGKey(1), 20)
  assert 0.0 <= float(err) <= 1.0
  # What the traces log after a chunk: the top exponents of the cell's carry.
  exps = jax.jit(trainer.exponents, static_argnums=(3, 4))(
    new.params, hp, jax.random.PRNGKey(2), 4, 2
  )
  assert exps.shape == (2,) and np.all(np.isfinite(np.asarray(exps))) and exps[0] >= exps[1]


def test_irnn_initialisation():
  """IRNN: identity recurrent matrix, zero biases, ReLU units (Le et al. 2015)."""
  cell = cells.get_cell("irnn")
  p = cell.init(jax.random.PRNGKey(0), I, H)
  np.testing.assert_array_equal(p["w_hh"], np.eye(H))
  np.testing.assert_array_equal(p["b"], np.zeros(H))
  x = jnp.array([[-1.0, 2.0, -3.0, 0.5, 0.0]])
  np.testing.assert_array_equal(cell.features(p, x), [[0.0, 2.0, 0.0, 0.5, 0.0]])


def test_unknown_cell_is_refused():
  with pytest.raises(ValueError, match="unknown cell 'lsmt'"):
    cells.get_model("lsmt")
