"""The later cells (`rnn_dynamics.cells`: lstm, gru, irnn, orthogonal, exprnn, lru) against
independent definitions: Flax's own modules for the adapter, the orthogonal group for
expRNN, a complex-number recurrence for the LRU, explicit per-step Jacobians for the
generic Ω of a gated cell. Their initialisations are the ones docs/reference.md §6 states.
(That every registered cell trains through the trainer is `test_cells.py`'s.)
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_dynamics import algorithms, cells, clipping, heads
from rnn_dynamics.cells import autodiff, exprnn, flax_adapter, lru
from rnn_dynamics.cells.base import CellParams
from rnn_dynamics.synthetic import sweep, train
from rnn_dynamics.tasks.base import Batch
from conftest import tiny_trainer_config

T, B, I, H, O = 6, 3, 4, 5, 3


def _close(a, b, rtol=1e-10, atol=1e-12):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def _inputs(seed=0, shape=(T, B, I)):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


_MODULES = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}


# --- the Flax adapter -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_flax_cell_step_is_the_modules_apply(x64, name):
  """One step of the `Cell` is Flax's `module.apply` on the same variables: the same new
  carry, and the features are the module's output."""
  cell = cells.get_cell(name)
  variables = cell.init(jax.random.PRNGKey(0), I, H)
  module = _MODULES[name](H, param_dtype=jnp.float64)
  carry = jax.tree.map(
    lambda a: jnp.asarray(np.random.default_rng(1).standard_normal(a.shape)),
    cell.initial_carry(variables, B, jnp.float64),
  )
  u = _inputs(2, (B, I))
  want_carry, want_out = module.apply(variables, carry, u)
  got = cell.step(variables, carry, u)
  jax.tree.map(_close, got, want_carry)
  _close(cell.features(variables, got), want_out)
  assert float(jnp.max(jnp.abs(want_out))) > 1e-2  # not a vacuous comparison


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_flax_cell_unroll_is_nn_rnn(x64, name):
  """The autodiff unroll of the `Cell` is `nn.RNN(module)` on padded sequences: the same
  outputs on every valid step and the same final carry (each sequence's own last)."""
  cell = cells.get_cell(name)
  variables = cell.init(jax.random.PRNGKey(3), I, H)
  lengths = np.array([T, T - 2, T - 4])
  mask = jnp.asarray(np.arange(T)[:, None] < lengths[None, :])
  u = _inputs(4)
  out = autodiff.unroll(cell, variables, u, mask)
  features = jax.vmap(lambda c: cell.features(variables, c))(out.carries)

  rnn = nn.RNN(_MODULES[name](H, param_dtype=jnp.float64), return_carry=True)
  last, outputs = rnn.apply(
    {"params": {"cell": variables["params"]}},
    jnp.swapaxes(u, 0, 1),
    seq_lengths=jnp.asarray(lengths),
  )
  valid = np.asarray(mask)[..., None]
  _close(np.where(valid, features, 0.0), np.where(valid, jnp.swapaxes(outputs, 0, 1), 0.0))
  jax.tree.map(_close, out.last, last)


def test_lstm_initialisation_is_flax_with_forget_bias_one():
  """Forget-gate bias 1, every other bias 0, recurrent kernels orthogonal (Flax's
  defaults), input kernels LeCun-scaled."""
  v = cells.get_cell("lstm").init(jax.random.PRNGKey(5), 40, 30)["params"]
  np.testing.assert_array_equal(v[flax_adapter.FORGET_GATE]["bias"], np.ones(30))
  for gate in ("hi", "hg", "ho"):
    np.testing.assert_array_equal(v[gate]["bias"], np.zeros(30))
  for gate in ("hi", "hf", "hg", "ho"):
    w = np.asarray(v[gate]["kernel"], np.float64)
    _close(w.T @ w, np.eye(30), atol=1e-5)
  for gate in ("ii", "if", "ig", "io"):
    assert 0.7 / np.sqrt(40) < np.std(v[gate]["kernel"]) < 1.3 / np.sqrt(40)
  g = cells.get_cell("gru").init(jax.random.PRNGKey(5), 40, 30)["params"]
  for gate in ("ir", "iz", "in", "hn"):
    np.testing.assert_array_equal(g[gate]["bias"], np.zeros(30))


def test_guard_decays_each_cells_recurrent_weights():
  """The non-finite guard's fallback (`Model.decay_path`) decays exactly the recurrent
  weights: `w_hh` of the plain cells, the hidden-state kernels of Flax's cells; nothing
  for expRNN and the LRU, whose fallback skips the update."""
  want = {
    "tanh": {".cell['w_hh']"},
    "irnn": {".cell['w_hh']"},
    "orthogonal": {".cell['w_hh']"},
    "lstm": {f".cell['params']['{g}']['kernel']" for g in ("hi", "hf", "hg", "ho")},
    "gru": {f".cell['params']['{g}']['kernel']" for g in ("hr", "hz", "hn")},
    "exprnn": set(),
    "lru": set(),
  }
  assert set(want) == set(cells.CELLS) - {"rnn"}
  for name, paths in want.items():
    model = cells.get_model(name)
    params = model.init(jax.random.PRNGKey(0), I, H, O, None)
    tx = clipping.nonfinite_fallback(decay_path=model.decay_path, weight_decay=0.5)
    bad = jax.tree.map(lambda a: jnp.full_like(a, jnp.nan), params)
    out, state = tx.update(bad, tx.init(params), params)
    assert bool(state.triggered)
    decayed = set()
    for path, leaf in jax.tree_util.tree_leaves_with_path(out):
      if np.any(np.asarray(leaf) != 0):
        decayed.add(jax.tree_util.keystr(path))
    assert decayed == paths, name


# --- generic Ω of a gated cell against explicit Jacobians --------------------------------


def _brute_force_omega(cell, params: CellParams, batch: Batch, form: str):
  """Ω of `cell` from first principles (last_softmax head, no padding): carries by a
  Python loop, `δ_t = ∂E/∂c_t` by differentiating the rest of the sequence from `c_t`,
  and `‖δ_t J_t‖` with `J_t = jax.jacobian` of one step for one sequence."""
  n_t, n_b = batch.inputs.shape[:2]
  head = "last_softmax"

  def run(p, carry, t0):
    prepared = cell.prepare(p)
    for t in range(t0, n_t):
      carry = cell.step(prepared, carry, cell.drive(prepared, batch.inputs)[t])
    return carry

  def loss_from(carry, t):
    last = run(params.cell, carry, t + 1)
    h_last = cell.features(cell.prepare(params.cell), last)
    zeros = jnp.zeros((n_t,) + h_last.shape, h_last.dtype)
    return heads.readout_loss(params, zeros, h_last, batch, head)[0]

  prepared = cell.prepare(params.cell)
  drives = cell.drive(prepared, batch.inputs)
  carries = [cell.initial_carry(prepared, n_b, batch.inputs.dtype)]
  for t in range(n_t):
    carries.append(cell.step(prepared, carries[-1], drives[t]))
  deltas = [jax.grad(loss_from)(carries[t + 1], t) for t in range(n_t)]

  flat = lambda c, b: jnp.concatenate([leaf[b] for leaf in jax.tree.leaves(c)])  # noqa: E731

  def value(p):
    total, kept = 0.0, 0
    for t in range(n_t):
      for b in range(n_b):
        before = jax.tree.map(lambda leaf, b=b: leaf[b : b + 1], carries[t])
        treedef = jax.tree.structure(before)
        sizes = [leaf.shape[-1] for leaf in jax.tree.leaves(before)]

        def one_step(c_flat, t=t, b=b, treedef=treedef, sizes=sizes):
          parts = jnp.split(c_flat, np.cumsum(sizes)[:-1])
          c = jax.tree.unflatten(treedef, [x[None, :] for x in parts])
          pr = cell.prepare(p)
          d = cell.drive(pr, batch.inputs)[t][b : b + 1]
          return flat(cell.step(pr, c, d), 0)

        jac = jax.jacobian(one_step)(flat(before, 0))
        delta = jax.lax.stop_gradient(flat(deltas[t], b))
        num_sq = jnp.sum((delta @ jac) ** 2)
        den_sq = jnp.sum(delta**2)
        if form == "original":
          total, kept = total + (num_sq / den_sq - 1.0) ** 2, kept + 1
        elif t >= 1:
          total = total + (jnp.sqrt(num_sq / den_sq) - 1.0) ** 2
    return total / kept if form == "original" else total / n_b

  return value


@pytest.mark.parametrize("form", ["original", "paper"])
def test_lstm_generic_omega_equals_explicit_jacobians(x64, form):
  """On a tiny LSTM (T=4, B=2, H=3) the model's Ω and its immediate gradient (what an
  update adds, α ∂⁺Ω/∂θ with α=1) equal Ω computed from explicit per-step Jacobians of
  the `(c, h)` carry, and `jax.grad` of that value with carries and adjoints fixed."""
  n_t, n_b, n_h, n_in = 4, 2, 3, 2
  cell = cells.get_cell("lstm")
  model = cells.get_model("lstm")
  params = model.init(jax.random.PRNGKey(7), n_in, n_h, O, None)
  # Larger weights than at initialisation, so the gates are far from linear.
  params = jax.tree.map(lambda a: 2.0 * a, params)
  rng = np.random.default_rng(8)
  batch = Batch(
    jnp.asarray(rng.standard_normal((n_t, n_b, n_in))),
    jnp.asarray(rng.integers(0, O, n_b), jnp.int32),
    jnp.ones((n_t, n_b), bool),
  )
  hp = algorithms.hparams("sgd_cr", lr=0.01, clip=1.0, alpha=1.0, init="basic_tanh")
  on = cells.OmegaSettings(jnp.float64(1.0), True, form, 1e-20)
  off = cells.OmegaSettings(jnp.float64(0.0), False, form, 1e-20)
  with_omega = model.loss_and_grads(params, hp, batch, "last_softmax", on)
  without = model.loss_and_grads(params, hp, batch, "last_softmax", off)

  value = _brute_force_omega(cell, params, batch, form)
  want = value(params.cell)
  assert float(want) > 1e-3
  _close(with_omega.omega, want)
  want_grad = jax.grad(value)(params.cell)
  got_grad = jax.tree.map(jnp.subtract, with_omega.grads.cell, without.grads.cell)
  jax.tree.map(_close, got_grad, want_grad)


def test_lstm_exponents_sum_to_the_log_determinants_of_its_jacobians(x64):
  """The model's Lyapunov exponents of the LSTM's whole `(c, h)` carry (k = 2H: every
  one), by JVPs of its flattened step: their sum is exactly the mean of `log |det J_t|`
  over the accumulated valid steps, with `J_t` the explicit Jacobian of the step written
  on `[c; h]`, whatever the basis (QR of `J Q` with a square orthogonal `Q`). One
  sequence ends early: its padded steps count for nothing."""
  n_t, n_b, n_h, n_in, warmup = 9, 2, 3, 2, 2
  cell = cells.get_cell("lstm")
  model = cells.get_model("lstm")
  params = jax.tree.map(lambda a: 2.0 * a, model.init(jax.random.PRNGKey(3), n_in, n_h, O, None))
  inputs = jnp.asarray(np.random.default_rng(4).standard_normal((n_t, n_b, n_in)))
  valid = [n_t, 6]
  mask = jnp.asarray(np.arange(n_t)[:, None] < np.asarray(valid)[None, :])
  got = model.exponents(params, None, inputs, mask, 2 * n_h, warmup)
  assert got.shape == (n_b, 2 * n_h)

  def step(v, u):
    c, h = cell.step(params.cell, (v[None, :n_h], v[None, n_h:]), u[None])
    return jnp.concatenate([c[0], h[0]])

  for b in range(n_b):
    v, logdets = jnp.zeros(2 * n_h), []
    for t in range(valid[b]):
      logdets.append(jnp.linalg.slogdet(jax.jacfwd(step)(v, inputs[t, b]))[1])
      v = step(v, inputs[t, b])
    want = np.mean(logdets[warmup:])
    _close(jnp.sum(got[b]), want, rtol=1e-9, atol=1e-12)
  assert np.all(np.diff(np.asarray(got), axis=1) <= 0)  # sorted, largest first
  assert abs(float(jnp.sum(got[0]) - jnp.sum(got[1]))) > 1e-3  # the mask mattered


# --- expRNN -------------------------------------------------------------------------------


def _exprnn_w(params):
  return exprnn.exprnn().prepare(params)["w_hh"]


def test_exprnn_is_orthogonal_at_initialisation(x64):
  """W = expm(A − Aᵀ) is orthogonal to round-off; with the Henaff initialisation it is a
  block of plane rotations by angles in [−π, π]; modReLU has its bias in ±0.01."""
  p = cells.get_cell("exprnn").init(jax.random.PRNGKey(0), I, 7)
  w = np.asarray(_exprnn_w(p))
  _close(w.T @ w, np.eye(7), atol=1e-12)
  s = np.asarray(p["a"])[[0, 2, 4], [1, 3, 5]]
  assert np.all(np.abs(s) <= np.pi) and np.any(s != 0)
  for k, angle in enumerate(s):
    rot = [[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]]
    _close(w[2 * k : 2 * k + 2, 2 * k : 2 * k + 2], rot)
  assert w[6, 6] == pytest.approx(1.0)  # the odd unit's block is zero
  assert np.all(np.abs(np.asarray(p["b"])) <= 0.01)
  _close(
    exprnn.modrelu(jnp.array([[-2.0, 0.5, 0.0]]), jnp.array([-1.0, 0.1, 0.3])), [[-1.0, 0.6, 0.0]]
  )


def test_exprnn_stays_orthogonal_through_the_trainer():
  """float32: after a chunk of SGD-CR (with Ω) the skew parameter has moved, W is still
  orthogonal to 1e-5, and the ρ trace reads 1."""
  trainer = train.make_train(tiny_trainer_config(cell="exprnn", n_hidden=8))
  hp = algorithms.hparams("sgd_cr", lr=0.5, clip=1.0, alpha=2.0, init="basic_tanh")
  state = jax.jit(trainer.init)(jax.random.PRNGKey(0), hp)
  new, _ = jax.jit(trainer.chunk)(state, hp)
  assert not np.allclose(new.params.cell["a"], state.params.cell["a"])
  for params in (state.params, new.params):
    w = np.asarray(trainer.model.recurrent_matrix(params), np.float64)
    assert w.dtype == np.float64 and np.asarray(params.cell["a"]).dtype == np.float32
    _close(w.T @ w, np.eye(8), atol=1e-5)
    _close(sweep._spectral_radii(w[None]), [1.0], atol=1e-5)


# --- LRU ----------------------------------------------------------------------------------


def test_lru_ring_initialisation(x64):
  """|λ| uniform-in-area on the ring [r_min, r_max], phases in [0, max_phase], and
  γ = √(1 − |λ|²) (the normalisation), for non-default ring parameters."""
  cell = lru.lru(r_min=0.4, r_max=0.9, max_phase=np.pi / 10)
  p = cell.init(jax.random.PRNGKey(1), I, 400)
  lam_re, lam_im, modulus = lru.eigenvalues(p)
  assert np.all((modulus >= 0.4) & (modulus <= 0.9))
  assert modulus.min() < 0.45 and modulus.max() > 0.85
  phase = np.asarray(jnp.exp(p["theta_log"]))
  assert np.all((phase >= 0) & (phase <= np.pi / 10))
  _close(np.abs(np.asarray(lam_re + 1j * lam_im)), modulus)
  _close(jnp.exp(p["gamma_log"]), np.sqrt(1 - np.asarray(modulus) ** 2))
  # |λ|² uniform on [r_min², r_max²]: its mean is the interval's midpoint.
  assert np.mean(np.asarray(modulus) ** 2) == pytest.approx((0.16 + 0.81) / 2, abs=0.03)
  # B's entries N(0, 1/(2I)), C's N(0, 1/N).
  assert np.std(p["b_re"]) == pytest.approx(1 / np.sqrt(2 * I), rel=0.1)
  assert np.std(p["c_im"]) == pytest.approx(1 / np.sqrt(400), rel=0.05)
  # Default ring: the appendix code's r_min = 0, r_max = 1, all finite.
  d = cells.get_cell("lru").init(jax.random.PRNGKey(2), I, 400)
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(d))
  assert 0 <= float(lru.eigenvalues(d)[2].min()) and float(lru.eigenvalues(d)[2].max()) < 1


def test_lru_matches_a_complex_reference(x64):
  """The real-carry LRU against the recurrence written with complex numbers: carries,
  features (Re(x C) → GELU → GLU) and the recurrent matrix's eigenvalues (λ and conj λ)."""
  cell = cells.get_cell("lru")
  p = cell.init(jax.random.PRNGKey(3), I, H)
  # Perturb every parameter so no term is special (γ no longer tied to λ, biases ≠ 0).
  rng = np.random.default_rng(4)
  p = {k: v + 0.1 * jnp.asarray(rng.standard_normal(v.shape)) for k, v in p.items()}
  lengths = np.array([T, T - 1, T - 3])
  mask = jnp.asarray(np.arange(T)[:, None] < lengths[None, :])
  u = np.asarray(_inputs(5))

  lam = np.exp(-np.exp(np.asarray(p["nu_log"])) + 1j * np.exp(np.asarray(p["theta_log"])))
  b_mat = np.asarray(p["b_re"]) + 1j * np.asarray(p["b_im"])
  c_mat = np.asarray(p["c_re"]) + 1j * np.asarray(p["c_im"])
  gamma = np.exp(np.asarray(p["gamma_log"]))
  x = np.zeros((B, H), complex)
  want_x, want_f = [], []
  for t in range(T):
    new = lam[None, :] * x + gamma[None, :] * (u[t] @ b_mat)
    x = np.where(np.asarray(mask[t])[:, None], new, x)
    y = (x @ c_mat).real
    z = np.asarray(jax.nn.gelu(jnp.asarray(y)))
    glu = (z @ np.asarray(p["w_1"]) + np.asarray(p["b_1"])) / (
      1 + np.exp(-(z @ np.asarray(p["w_2"]) + np.asarray(p["b_2"])))
    )
    want_x.append(x)
    want_f.append(glu)
  want_x, want_f = np.stack(want_x), np.stack(want_f)

  out = autodiff.unroll(cell, p, jnp.asarray(u), mask)
  prepared = cell.prepare(p)
  re, im = out.carries
  _close(re, want_x.real)
  _close(im, want_x.imag)
  _close(jax.vmap(lambda c: cell.features(prepared, c))(out.carries), want_f)
  eig = np.linalg.eigvals(np.asarray(cell.recurrent_matrix(prepared)))
  _close(np.sort_complex(eig), np.sort_complex(np.concatenate([lam, lam.conj()])))


# --- IRNN and orthogonal --------------------------------------------------------------------


def test_irnn_and_orthogonal_initialisations():
  """IRNN: W = I, biases 0, input and readout weights N(0, 0.001²) (Le et al. 2015).
  orthogonal: W orthogonal, input and readout N(0, 0.1²), biases 0 (the `tanh` cell's)."""
  n_in, n_hidden, n_out = 50, 60, 40
  irnn = cells.get_model("irnn").init(jax.random.PRNGKey(0), n_in, n_hidden, n_out, None)
  np.testing.assert_array_equal(irnn.cell["w_hh"], np.eye(n_hidden))
  np.testing.assert_array_equal(irnn.cell["b"], np.zeros(n_hidden))
  np.testing.assert_array_equal(irnn.b_out, np.zeros(n_out))
  assert np.std(irnn.cell["w_in"]) == pytest.approx(0.001, rel=0.05)
  assert np.std(irnn.w_out) == pytest.approx(0.001, rel=0.05)

  orth = cells.get_model("orthogonal").init(jax.random.PRNGKey(1), n_in, n_hidden, n_out, None)
  w = np.asarray(orth.cell["w_hh"], np.float64)
  _close(w.T @ w, np.eye(n_hidden), atol=1e-5)
  np.testing.assert_array_equal(orth.cell["b"], np.zeros(n_hidden))
  assert np.std(orth.cell["w_in"]) == pytest.approx(0.1, rel=0.05)
  assert np.std(orth.w_out) == pytest.approx(0.1, rel=0.05)
  x = jnp.linspace(-2.0, 2.0, n_hidden)[None, :]
  _close(cells.get_cell("orthogonal").features(orth.cell, x), np.tanh(x), atol=1e-6)
