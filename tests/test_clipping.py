"""Tests for rnn_dynamics.clipping: properties of each transformation and its state."""

import dataclasses

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import pytest  # noqa: E402
from flax import struct  # noqa: E402

from rnn_dynamics import clipping  # noqa: E402


@struct.dataclass
class Params:
  w_in: jax.Array
  w_hh: jax.Array
  b: jax.Array
  w_out: jax.Array
  b_out: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class PlainParams:
  w_hh: jax.Array
  w_out: jax.Array


def _random_tree(seed, scale=1.0):
  rng = np.random.default_rng(seed)
  return {
    "w": jnp.asarray(scale * rng.standard_normal((4, 3)), jnp.float32),
    "b": jnp.asarray(scale * rng.standard_normal((3,)), jnp.float32),
    "nested": [jnp.asarray(scale * rng.standard_normal((2, 2, 2)), jnp.float32)],
  }


def _np_norm(tree):
  return np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in jax.tree.leaves(tree)))


def _rnn_params(seed=0):
  rng = np.random.default_rng(seed)
  f = lambda *s: jnp.asarray(rng.standard_normal(s), jnp.float32)  # noqa: E731
  return Params(w_in=f(2, 5), w_hh=f(5, 5), b=f(5), w_out=f(5, 1), b_out=f(1))


def _apply(tx, updates, params=None):
  return tx.update(updates, tx.init(updates if params is None else params), params)


# --- global norm --------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-30, 1e-3, 1.0, 1e3, 1e25])
def test_global_norm_matches_numpy_without_overflow(scale):
  tree = _random_tree(0, scale)
  np.testing.assert_allclose(clipping.global_norm(tree), _np_norm(tree), rtol=1e-5)


def test_global_norm_nonfinite_and_zero():
  assert np.isnan(clipping.global_norm({"a": jnp.array([1.0, jnp.nan])}))
  assert not np.isfinite(clipping.global_norm({"a": jnp.array([1.0, jnp.inf])}))
  assert clipping.global_norm({"a": jnp.zeros(3)}) == 0.0


# --- norm clipping ------------------------------------------------------------


def test_norm_clip_bounds_norm_over_scales():
  threshold = 1.5
  tx = clipping.clip_by_global_norm_with_stats(threshold)
  update = jax.jit(tx.update)
  for i, scale in enumerate(np.logspace(-4, 20, 13)):
    grads = _random_tree(i, scale)
    out, state = update(grads, tx.init(grads))
    norm = _np_norm(grads)
    np.testing.assert_allclose(state.preclip_norm, norm, rtol=1e-5)
    assert bool(state.clipped) == (norm >= threshold)
    assert _np_norm(out) <= threshold * (1 + 1e-6)
    if norm >= threshold:
      # Rescaled, not truncated: the direction is kept.
      for o, g in zip(jax.tree.leaves(out), jax.tree.leaves(grads)):
        np.testing.assert_allclose(o, np.asarray(g) * (threshold / norm), rtol=1e-5, atol=1e-30)


def test_norm_clip_below_threshold_is_exact_identity():
  grads = _random_tree(1, 1e-2)
  out, state = _apply(clipping.clip_by_global_norm_with_stats(10.0), grads)
  assert not bool(state.clipped)
  jax.tree.map(np.testing.assert_array_equal, out, grads)


def test_norm_clip_is_idempotent():
  tx = clipping.clip_by_global_norm_with_stats(0.7)
  grads = _random_tree(2, 5.0)
  once, _ = _apply(tx, grads)
  twice, _ = _apply(tx, once)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), twice, once)


def test_norm_clip_equality_counts_as_clipped_and_is_noop():
  grads = _random_tree(3)
  _, probe = _apply(clipping.clip_by_global_norm_with_stats(jnp.inf), grads)
  out, state = _apply(clipping.clip_by_global_norm_with_stats(probe.preclip_norm), grads)
  assert bool(state.clipped)
  jax.tree.map(np.testing.assert_array_equal, out, grads)
  # And the hand-checkable case: ||(3, 4)|| = 5.
  out, state = _apply(clipping.clip_by_global_norm_with_stats(5.0), jnp.array([3.0, 4.0]))
  assert bool(state.clipped)
  np.testing.assert_array_equal(out, [3.0, 4.0])


def test_norm_clip_zero_over_zero_gives_no_nan():
  grads = {"a": jnp.zeros((3,)), "b": jnp.zeros((2, 2))}
  out, state = jax.jit(clipping.clip_by_global_norm_with_stats(0.0).update)(
    grads, clipping.ClipByNormState(jnp.zeros(()), jnp.zeros((), bool))
  )
  assert bool(state.clipped)
  assert float(state.preclip_norm) == 0.0
  for x in jax.tree.leaves(out):
    np.testing.assert_array_equal(x, 0.0)


def test_norm_clip_state_shapes_are_fixed_for_scan():
  grads = _random_tree(4)
  norm = _np_norm(grads)
  threshold = 0.5 * norm  # the middle step's gradient (scale 1) is over it, 0.1 is not
  tx = clipping.clip_by_global_norm_with_stats(threshold)
  init = tx.init(grads)
  assert (init.preclip_norm.shape, init.preclip_norm.dtype) == ((), jnp.float32)
  assert (init.clipped.shape, init.clipped.dtype) == ((), jnp.bool_)

  def step(state, scale):
    g = jax.tree.map(lambda x: x * scale, grads)
    out, state = tx.update(g, state)
    return state, (state.preclip_norm, state.clipped, out)

  # lax.scan fails if update changes the state's shapes or dtypes.
  scales = np.array([0.1, 1.0, 10.0])
  final, (norms, clipped, outs) = jax.lax.scan(step, init, jnp.asarray(scales))
  np.testing.assert_allclose(norms, norm * scales, rtol=1e-5)
  # Each step's state describes that step's own gradient, and the step did what it says:
  # below the threshold the gradient passes as is, above it is rescaled to the threshold.
  np.testing.assert_array_equal(clipped, [False, True, True])
  for i, scale in enumerate(scales):
    factor = min(1.0, threshold / (norm * scale))
    for got, g in zip(jax.tree.leaves(outs), jax.tree.leaves(grads), strict=True):
      np.testing.assert_allclose(got[i], np.asarray(g) * scale * factor, rtol=1e-5)
    out_i = jax.tree.map(lambda x: x[i], outs)  # noqa: B023
    np.testing.assert_allclose(_np_norm(out_i), min(norm * scale, threshold), rtol=1e-5)
  # The carried state is the last step's, readable by name as a metrics logger reads it.
  np.testing.assert_allclose(float(optax.tree.get(final, "preclip_norm")), 10 * norm, rtol=1e-5)
  assert bool(optax.tree.get(final, "clipped"))


def test_norm_clip_traced_threshold_under_jit_and_vmap():
  grads = jnp.array([3.0, 4.0])  # norm 5

  @jax.jit
  def clip(threshold):
    tx = clipping.clip_by_global_norm_with_stats(threshold)
    return tx.update(grads, tx.init(grads))

  thresholds = jnp.array([1.0, 2.5, 5.0, 10.0])
  out, state = jax.vmap(clip)(thresholds)
  expected = np.stack([[3.0, 4.0]] * 4) * np.minimum(1.0, np.asarray(thresholds) / 5.0)[:, None]
  np.testing.assert_allclose(out, expected, rtol=1e-6)
  np.testing.assert_array_equal(state.clipped, [True, True, True, False])
  np.testing.assert_allclose(state.preclip_norm, 5.0)


def test_norm_clip_rejects_non_scalar_threshold():
  with pytest.raises(ValueError, match="scalar"):
    clipping.clip_by_global_norm_with_stats(jnp.ones(2))


# --- element-wise clipping ----------------------------------------------------


def test_elementwise_clip_bounds_entries_and_keeps_small_ones():
  grads = _random_tree(5, 3.0)
  c = 1.0
  out, state = _apply(clipping.clip_elementwise(c), grads)
  g_all = np.concatenate([np.ravel(x) for x in jax.tree.leaves(grads)])
  o_all = np.concatenate([np.ravel(x) for x in jax.tree.leaves(out)])
  assert np.all(np.abs(o_all) <= c)
  small = np.abs(g_all) <= c
  np.testing.assert_array_equal(o_all[small], g_all[small])
  np.testing.assert_array_equal(o_all[~small], c * np.sign(g_all[~small]))
  np.testing.assert_allclose(state.fraction_clipped, np.mean(~small), rtol=1e-6)
  assert bool(state.clipped) == bool(np.any(~small))
  np.testing.assert_allclose(state.preclip_norm, _np_norm(grads), rtol=1e-5)


def test_elementwise_clip_traced_threshold_under_vmap():
  grads = jnp.array([-3.0, 0.5, 2.0])

  def clip(c):
    tx = clipping.clip_elementwise(c)
    return tx.update(grads, tx.init(grads))

  out, state = jax.jit(jax.vmap(clip))(jnp.array([0.25, 1.0, 5.0]))
  np.testing.assert_array_equal(
    out, [[-0.25, 0.25, 0.25], [-1.0, 0.5, 1.0], [-3.0, 0.5, 2.0]]
  )
  np.testing.assert_allclose(state.fraction_clipped, [1.0, 2 / 3, 0.0], rtol=1e-6)


# --- non-finite fallback ------------------------------------------------------


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf, -jnp.inf, 1e11])
def test_fallback_replaces_bad_step(bad):
  params = _rnn_params()
  grads = jax.tree.map(jnp.ones_like, params).replace(w_in=jnp.full((2, 5), bad))
  tx = clipping.nonfinite_fallback()
  out, state = jax.jit(tx.update)(grads, tx.init(params), params)
  assert bool(state.triggered)
  np.testing.assert_allclose(out.w_hh, 0.02 * np.asarray(params.w_hh), rtol=1e-6)
  for name in ("w_in", "b", "w_out", "b_out"):
    np.testing.assert_array_equal(getattr(out, name), 0.0)
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(out))


def test_fallback_passes_good_step_unchanged():
  params = _rnn_params()
  grads = _rnn_params(seed=1)
  tx = clipping.nonfinite_fallback()
  out, state = tx.update(grads, tx.init(params), params)
  assert not bool(state.triggered)
  jax.tree.map(np.testing.assert_array_equal, out, grads)


def test_fallback_with_dict_dataclass_and_predicate():
  params = {"cell": {"w_hh": jnp.ones((2, 2)), "b": jnp.ones(2)}, "w_out": jnp.ones(2)}
  grads = jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), params)
  out, state = _apply(clipping.nonfinite_fallback(weight_decay=0.5), grads, params)
  assert bool(state.triggered)
  np.testing.assert_array_equal(out["cell"]["w_hh"], 0.5)
  np.testing.assert_array_equal(out["cell"]["b"], 0.0)
  np.testing.assert_array_equal(out["w_out"], 0.0)

  plain = PlainParams(w_hh=jnp.full((2, 2), 2.0), w_out=jnp.ones(2))
  bad = PlainParams(w_hh=jnp.full((2, 2), jnp.inf), w_out=jnp.ones(2))
  out, _ = _apply(clipping.nonfinite_fallback(), bad, plain)
  np.testing.assert_allclose(out.w_hh, 0.04)
  np.testing.assert_array_equal(out.w_out, 0.0)

  # A predicate on the key path picks a differently named leaf.
  tx = clipping.nonfinite_fallback(
    weight_decay=1.0, decay_path=lambda path: jax.tree_util.keystr(path) == "['w_out']"
  )
  out, _ = _apply(tx, grads, params)
  np.testing.assert_array_equal(out["w_out"], 1.0)
  np.testing.assert_array_equal(out["cell"]["w_hh"], 0.0)


def test_fallback_errors():
  params = _rnn_params()
  tx = clipping.nonfinite_fallback()
  with pytest.raises(ValueError, match="params"):
    tx.update(params, tx.init(params))
  tx = clipping.nonfinite_fallback(decay_path="w_rec")
  with pytest.raises(ValueError, match="w_rec"):
    tx.update(params, tx.init(params), params)


def test_fallback_without_a_recurrent_matrix_skips_the_update():
  """decay_path=None (a cell with no recurrent weight matrix): a bad step becomes zero
  everywhere, a good one passes unchanged."""
  params = _rnn_params()
  tx = clipping.nonfinite_fallback(decay_path=None)
  bad = jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), params)
  out, state = _apply(tx, bad, params)
  assert bool(state.triggered)
  for leaf in jax.tree.leaves(out):
    np.testing.assert_array_equal(leaf, 0.0)
  good = _rnn_params(seed=1)
  out, state = _apply(tx, good, params)
  assert not bool(state.triggered)
  jax.tree.map(np.testing.assert_array_equal, out, good)


def test_guard_wraps_the_clip_and_its_fallback_is_not_clipped():
  """The original code decides on the pre-clip norm and uses the fallback unclipped."""
  params = jax.tree.map(lambda x: 100.0 * x, _rnn_params())  # ‖0.02·W_hh‖ ≫ threshold
  threshold = 1e-3
  tx = clipping.nonfinite_fallback(clipping.clip_by_global_norm_with_stats(threshold))
  bad = jax.tree.map(jnp.ones_like, params).replace(b=jnp.full((5,), jnp.inf))
  out, state = jax.jit(tx.update)(bad, tx.init(params), params)
  assert bool(state.triggered)
  np.testing.assert_allclose(out.w_hh, 0.02 * np.asarray(params.w_hh), rtol=1e-6)
  assert _np_norm(out) > 100 * threshold  # not rescaled to the threshold
  # The clip inside saw the true, non-finite norm, and that is what the stats report.
  stats = clipping.clipping_stats(state)
  assert np.isinf(float(stats["grads/norm_preclip"])) and bool(stats["grads/nonfinite"])

  good = jax.tree.map(lambda x: 10.0 * x, _rnn_params(seed=3))
  out, state = tx.update(good, state, params)
  assert not bool(state.triggered)
  np.testing.assert_allclose(_np_norm(out), threshold, rtol=1e-5)  # clipped as usual
  np.testing.assert_allclose(
    float(clipping.clipping_stats(state)["grads/norm_preclip"]), _np_norm(good), rtol=1e-5
  )


def test_guard_can_be_switched_off_per_run_under_vmap():
  params = _rnn_params()
  nan_grads = jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), params)

  def one(enabled):
    tx = clipping.nonfinite_fallback(clipping.clip_by_global_norm_with_stats(1.0), enabled=enabled)
    return tx.update(nan_grads, tx.init(params), params)

  out, state = jax.vmap(one)(jnp.asarray([True, False]))
  np.testing.assert_array_equal(np.asarray(state.triggered), [True, False])
  # On: the finite fallback. Off: the run's own NaN step goes through (plain SGD in the
  # original code had no guard).
  assert np.all(np.isfinite(np.asarray(out.w_hh[0])))
  assert np.all(np.isnan(np.asarray(out.w_hh[1])))


# --- composition --------------------------------------------------------------


def test_chain_with_sgd_gives_params_minus_lr_times_clipped_grad():
  params = _rnn_params()
  grads = jax.tree.map(lambda x: 10.0 * x, _rnn_params(seed=2))
  threshold, lr = 1.0, 0.1
  tx = optax.chain(
    clipping.nonfinite_fallback(),
    clipping.clip_by_global_norm_with_stats(threshold),
    optax.sgd(lr),
  )
  state = tx.init(params)
  updates, state = jax.jit(tx.update)(grads, state, params)
  new_params = optax.apply_updates(params, updates)
  norm = _np_norm(grads)
  expected = jax.tree.map(
    lambda p, g: np.asarray(p) - lr * np.asarray(g) * threshold / norm, params, grads
  )
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), new_params, expected
  )

  stats = clipping.clipping_stats(state)
  np.testing.assert_allclose(stats["grads/norm_preclip"], norm, rtol=1e-5)
  assert bool(stats["grads/clipped"]) and not bool(stats["grads/nonfinite"])

  # A NaN step after the fallback and the clip: a finite, small decay step.
  nan_grads = grads.replace(b=jnp.full((5,), jnp.nan))
  updates, state = jax.jit(tx.update)(nan_grads, state, params)
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(updates))
  np.testing.assert_allclose(updates.w_hh, -lr * 0.02 * np.asarray(params.w_hh), rtol=1e-5)
  assert bool(clipping.clipping_stats(state)["grads/nonfinite"])


def test_chain_with_adam_runs_in_scan():
  params = _rnn_params()
  tx = optax.chain(clipping.clip_by_global_norm_with_stats(0.5), optax.adam(1e-2))
  loss = lambda p: jnp.sum(p.w_hh**2) + jnp.sum(p.w_in**2)  # noqa: E731

  def step(carry, _):
    p, s = carry
    updates, s = tx.update(jax.grad(loss)(p), s, p)
    return (optax.apply_updates(p, updates), s), clipping.clipping_stats(s)

  (p, _), stats = jax.lax.scan(step, (params, tx.init(params)), length=5)
  assert loss(p) < loss(params)
  assert stats["grads/norm_preclip"].shape == (5,)
  assert np.all(stats["grads/clipped"])


def test_clipping_stats_defaults_and_elementwise():
  params = _rnn_params()
  stats = clipping.clipping_stats(optax.sgd(0.1).init(params))
  assert float(stats["grads/norm_preclip"]) == 0.0
  assert not bool(stats["grads/clipped"]) and not bool(stats["grads/nonfinite"])
  assert set(stats) == {
    "grads/norm_preclip",
    "grads/clipped",
    "grads/fraction_clipped",
    "grads/nonfinite",
  }

  tx = optax.chain(clipping.clip_elementwise(0.1), optax.sgd(0.1))
  _, state = tx.update(params, tx.init(params), params)
  stats = clipping.clipping_stats(state)
  assert float(stats["grads/fraction_clipped"]) > 0.5
  np.testing.assert_allclose(stats["grads/norm_preclip"], _np_norm(params), rtol=1e-5)


# --- per-run choice of the clipping kind --------------------------------------


@pytest.mark.parametrize("elementwise", [False, True])
def test_norm_or_elementwise_matches_the_chosen_clip(elementwise):
  grads = _random_tree(7, 3.0)
  chosen = clipping.clip_elementwise(1.0) if elementwise else (
    clipping.clip_by_global_norm_with_stats(1.0)
  )
  want, want_state = _apply(chosen, grads)
  got, state = _apply(clipping.clip_norm_or_elementwise(1.0, elementwise), grads)
  jax.tree.map(np.testing.assert_array_equal, got, want)
  assert bool(state.clipped) == bool(want_state.clipped)
  np.testing.assert_allclose(state.preclip_norm, want_state.preclip_norm, rtol=1e-6)
  assert (float(state.fraction_clipped) > 0) == elementwise


def test_norm_or_elementwise_flag_under_vmap():
  grads = {"w": jnp.asarray([3.0, 0.5])}  # norm ≈ 3.04

  def clip(flag):
    tx = clipping.clip_norm_or_elementwise(1.0, flag)
    return tx.update(grads, tx.init(grads))[0]["w"]

  out = jax.vmap(clip)(jnp.asarray([False, True]))
  np.testing.assert_allclose(out[0], np.asarray([3.0, 0.5]) / np.hypot(3.0, 0.5), rtol=1e-6)
  np.testing.assert_allclose(out[1], [1.0, 0.5])
