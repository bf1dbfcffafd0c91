"""Gradient flossing as a regularizer (`rnn_dynamics.flossing`) through the trainer.

One update of the real trainer (SGD at learning rate 1, no clipping, no momentum: the
step IS minus the gradient it was fed) against `jax.grad` of `loss + w·Σλ²` written from
scratch in float64, for the paper's RNN (hand-written BPTT + the flossing gradient) and an
autodiff cell; weight 0 and updates outside the phases train bit for bit as SGD-C; a few
flossing updates pull a contracting network's top exponent towards 0.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_dynamics import algorithms, cells, flossing, heads, rnn, runs
from rnn_dynamics.analysis import lyapunov
from rnn_dynamics.cells import autodiff
from rnn_dynamics.synthetic import sweep, train
from conftest import tiny_trainer_config

T, B, H, K, N_SEQ = 12, 4, 6, 2, 2
WARMUP = lyapunov.training_warmup(T)


def _config(cell="rnn", **overrides):
  """One update per chunk at T = 12, 6 units, every update flossed; `overrides` set fields."""
  fields = dict(
    cell=cell,
    n_hidden=H,
    batch_size=B,
    min_length=T,
    max_length=T,
    chunk_size=1,
    screen_size=10,
    eval_size=10,
    eval_batch=10,
    floss_enabled=True,
    floss_k=K,
    floss_sequences=N_SEQ,
    floss_every=1,
    floss_for=1,
    floss_phases=0,
  )
  return tiny_trainer_config(**dict(fields, **overrides))


def _hp(algorithm, weight, *, lr=1.0, clip=math.inf, init="basic_tanh"):
  return algorithms.hparams(algorithm, lr=lr, clip=clip, alpha=0.0, init=init, floss=weight)


def _scaled(state, gain):
  """The run's state with its recurrent weights multiplied by `gain`."""
  p = state.params
  if isinstance(p, rnn.Params):
    return state.replace(params=p.replace(w_hh=p.w_hh * gain))
  return state.replace(params=p.replace(cell=dict(p.cell, w_hh=p.cell["w_hh"] * gain)))


def _batch(trainer, state):
  """The batch the trainer's first update drew (`train.update_at`'s key schedule)."""
  _, _, k_data = jax.random.split(state.key, 3)
  return trainer.task.sample(k_data, B, jnp.int32(T), trainer.task.buffer_length(T))


def _rnn_reference(params, batch):
  """`(loss, Σλ²)` of the paper's RNN: the loss by the plain forward (`rnn.loss_fn`) and
  the exponents with the tangent map by JVPs, not the hand-written ones the trainer uses."""
  loss, _ = rnn.loss_fn(params, rnn.TANH, batch, "last_softmax")
  spectrum = lyapunov.rnn_spectrum(
    params,
    rnn.TANH,
    batch.inputs[:, :N_SEQ],
    K,
    warmup=WARMUP,
    mask_TxB=batch.mask[:, :N_SEQ],
    jacobian="jvp",
  )
  return loss, jnp.mean(jnp.sum(spectrum.exponents_K**2, axis=-1))


def _tanh_cell_reference(params, batch):
  """`(loss, Σλ²)` of the `tanh` cell (`x_t = tanh(x_{t-1}) W + u_t W_in + b`): the loss
  by its unroll and readout, the exponents with its Jacobian written out,
  `J q = Wᵀ (tanh'(x) ⊙ q)`, instead of JVPs of the flattened carry."""
  cell = cells.get_cell("tanh")
  p = params.cell
  out = autodiff.unroll(cell, p, batch.inputs, batch.mask)
  hs = jnp.tanh(out.carries)
  loss, _ = heads.readout_loss(params, hs, jnp.tanh(out.last), batch, "last_softmax")

  def tangent(x, u, q):
    x_next = jnp.tanh(x) @ p["w_hh"] + u @ p["w_in"] + p["b"]
    return x_next, p["w_hh"].T @ ((1.0 - jnp.tanh(x) ** 2)[:, None] * q)

  one = lambda xs, valid: (
    lyapunov.lyapunov_spectrum(
      tangent, jnp.zeros((H,), xs.dtype), xs, K, warmup=WARMUP, valid_T=valid
    ).exponents_K
  )
  exps = jax.vmap(one, in_axes=(1, 1))(batch.inputs[:, :N_SEQ], batch.mask[:, :N_SEQ])
  return loss, jnp.mean(jnp.sum(exps**2, axis=-1))


@pytest.mark.parametrize(
  "cell, reference, gain", [("rnn", _rnn_reference, 8.0), ("tanh", _tanh_cell_reference, 8.0)]
)
def test_update_gradient_is_grad_of_loss_plus_weight_times_flossing(x64, cell, reference, gain):
  weight = 2.0  # exact in float32, as `HParams` keeps it
  trainer = train.make_train(_config(cell))
  hp = _hp("sgd_cf", weight)
  state = _scaled(trainer.init(jax.random.PRNGKey(4), hp), gain)
  params = state.params
  after, metrics = jax.jit(trainer.chunk)(state, hp, 0)
  assert int(after.step) == 1 and not bool(after.diverged)
  fed = jax.tree.map(lambda p, q: p - q, params, after.params)
  assert jax.tree.leaves(fed)[0].dtype == jnp.float64

  batch = _batch(trainer, state)
  loss_grad = jax.grad(lambda p: reference(p, batch)[0])(params)
  floss_grad = jax.grad(lambda p: reference(p, batch)[1])(params)
  want = jax.tree.map(lambda g, f: g + weight * f, loss_grad, floss_grad)
  # Flossing's share is large enough that losing it, or its sign, cannot hide in the
  # tolerance (and the readout, which the exponents do not see, gets none of it).
  share = lambda tree: max(float(jnp.abs(x).max()) for x in jax.tree.leaves(tree))
  assert share(jax.tree.map(lambda f: weight * f, floss_grad)) > 0.2 * share(loss_grad)
  for (path, got), w in zip(jax.tree_util.tree_leaves_with_path(fed), jax.tree.leaves(want)):
    scale = float(jnp.abs(w).max())
    np.testing.assert_allclose(
      got, w, rtol=1e-8, atol=1e-10 * scale, err_msg=jax.tree_util.keystr(path)
    )
  np.testing.assert_allclose(metrics.loss[0], reference(params, batch)[0], rtol=1e-10)


@pytest.mark.parametrize("cell", ["rnn", "tanh"])
def test_weight_zero_trains_bit_identically_to_sgd_c(cell):
  """SGD-CF at weight 0 in a flossing program (every update flossed, the penalty's
  gradient computed) and SGD-C in a program without flossing: every parameter, optimizer
  leaf and metric agrees bit for bit. So do SGD-CF at weight 1 and SGD-C on updates
  outside the flossing phases."""
  common = dict(chunk_size=8, momentum=0.9)
  plain = train.make_train(_config(cell, floss_enabled=False, **common))
  flossed = train.make_train(_config(cell, **common))
  # Flossing on update 0 only: the chunk at index 1 (updates 8-15) has none.
  once = train.make_train(_config(cell, floss_every=100, floss_for=1, floss_phases=1, **common))
  sgd_c = _hp("sgd_c", 1.0, lr=0.05, clip=0.5)
  assert float(sgd_c.floss) == 0.0

  def chunk(trainer, hp, index):
    state = _scaled(trainer.init(jax.random.PRNGKey(3), hp), 6.0)
    return jax.jit(trainer.chunk)(state, hp, index)

  for trainer, weight, index in ((flossed, 0.0, 0), (once, 1.0, 1)):
    ref, m_ref = chunk(plain, sgd_c, index)
    got, m_got = chunk(trainer, _hp("sgd_cf", weight, lr=0.05, clip=0.5), index)
    assert np.asarray(m_ref.clipped).any()  # the clip acted on these gradients
    for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got), strict=True):
      np.testing.assert_array_equal(a, b)
    for a, b in zip(m_ref, m_got, strict=True):
      np.testing.assert_array_equal(a, b)
  # ... and on a flossing update weight 1 does change the step (the test above can fail).
  ref, _ = chunk(plain, sgd_c, 0)
  got, _ = chunk(once, _hp("sgd_cf", 1.0, lr=0.05, clip=0.5), 0)
  assert not np.array_equal(
    ref.params.w_hh if cell == "rnn" else ref.params.cell["w_hh"],
    got.params.w_hh if cell == "rnn" else got.params.cell["w_hh"],
  )


def test_flossing_updates_pull_the_top_exponent_towards_zero():
  """Sigmoid units with N(0, 0.01²) weights contract hard (λ₁ ≈ −4): 20 SGD-CF updates
  (clipped, as trained) bring λ₁ much closer to 0; the same 20 SGD-C updates do not."""
  config = _config(n_hidden=8, min_length=20, max_length=20, chunk_size=20, floss_k=1)
  trainer = train.make_train(config)
  exps = jax.jit(lambda p, hp: trainer.exponents(p, hp, jax.random.PRNGKey(9), 8, 1)[0])
  top = {}
  for algorithm in ("sgd_c", "sgd_cf"):
    hp = _hp(algorithm, 1.0, lr=0.1, clip=1.0, init="sigmoid")
    state = trainer.init(jax.random.PRNGKey(5), hp)
    after, _ = jax.jit(trainer.chunk)(state, hp, 0)
    top[algorithm] = float(exps(state.params, hp)), float(exps(after.params, hp))
  before, flossed = top["sgd_cf"]
  assert before < -2.0, top
  assert abs(flossed) < 0.3 * abs(before), top
  assert abs(top["sgd_c"][1]) > 0.8 * abs(before), top


def test_schedule_is_phases_of_updates():
  s = flossing.FlossSettings(enabled=True, every=10, for_=3, phases=2)
  on = np.asarray(jax.vmap(lambda i: flossing.scheduled(s, i))(jnp.arange(40)))
  assert np.flatnonzero(on).tolist() == [0, 1, 2, 10, 11, 12]
  always = flossing.FlossSettings(enabled=True, every=1, for_=1, phases=0)
  assert bool(flossing.scheduled(always, 10**6))


@pytest.mark.parametrize(
  "field, value, message",
  [
    ("floss_k", H + 1, "floss_k <= n_hidden"),
    ("floss_sequences", B + 1, "floss_sequences <= batch_size"),
    ("floss_for", 2, "floss_for <= floss_every"),
  ],
)
def test_bad_settings_are_one_clear_error(field, value, message):
  with pytest.raises(ValueError, match=message):
    train.make_train(_config(**{field: value}))


def test_a_flossing_weight_without_a_flossing_program_is_refused():
  """A run with a weight in a program that does not floss would silently train as SGD-C."""
  config = _config(floss_enabled=False, max_updates=1)
  hps = runs.stack([_hp("sgd_cf", 1.0)])
  with pytest.raises(ValueError, match="floss_enabled"):
    sweep.run_group(
      train.make_train(config),
      config,
      labels=[{}],
      hparams=hps,
      keys=jax.random.split(jax.random.PRNGKey(0), 1),
    )
  # ... and a flossing program needs every run's weight.
  hp = _hp("sgd_c", 0.0).replace(floss=None)
  trainer = train.make_train(_config())
  with pytest.raises(ValueError, match="HParams.floss"):
    trainer.chunk(trainer.init(jax.random.PRNGKey(0), hp), hp, 0)
