"""The sweep traces its chunk program once per group, however many chunks it runs; and
what its traces hold beside the chunk's metrics: the top Lyapunov exponents.

A whole chunk of updates is one compiled call; a change that made the program depend on
something that varies per chunk (the chunk index that picks mixed lengths, a Python
scalar, a sharding left to the compiler) would retrace and recompile it on every call:
correct results, a fraction of the speed. `chex.assert_max_traces` wraps the trainer's
functions, so the second trace of one raises inside the sweep and fails the test.
"""

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from rnn_dynamics import algorithms, rnn, runs
from rnn_dynamics.analysis import lyapunov
from rnn_dynamics.synthetic import record, sweep, train
from conftest import tiny_trainer_config

# Lengths drawn in [10, 14) per update, four length buckets: the chunk index changes the
# lengths of every chunk, and must stay a traced argument. Plain SGD on sigmoid units does
# not solve in 150 updates, so every chunk runs.
CONFIG = tiny_trainer_config(
  min_length=10,
  max_length=14,
  length_buckets=4,
  chunk_size=25,
  max_updates=150,
  screen_size=50,
  eval_size=100,
  eval_batch=50,
)
N_CHUNKS = CONFIG.max_updates // CONFIG.chunk_size


def _group(n_runs, algs=("sgd", "sgd_cr")):
  labels = [dict(algorithm=a, seed=s) for s in range(n_runs // 2) for a in algs]
  hps = [
    algorithms.hparams(lab["algorithm"], lr=0.01, clip=1.0, alpha=4.0, init="sigmoid", floss=1.0)
    for lab in labels
  ]
  keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(0), lab["seed"]) for lab in labels])
  return labels, runs.stack(hps), keys


def _at_most_once(trainer):
  """The trainer with each function allowed one trace (chex raises on the second)."""
  return trainer._replace(
    init=chex.assert_max_traces(trainer.init, n=1),
    chunk=chex.assert_max_traces(trainer.chunk, n=1),
  )


@pytest.fixture(autouse=True)
def _fresh_counters():
  chex.clear_trace_counter()
  yield
  chex.clear_trace_counter()


# Flossing on some updates of every chunk (its schedule reads the chunk index too) and
# the exponents traced after each.
FLOSSING = dict(floss_enabled=True, floss_k=1, floss_every=20, floss_for=5, lyapunov_k=2)


@pytest.mark.parametrize("flossing", [False, True])
def test_groups_compile_their_chunk_program_once(flossing):
  config = ml_collections.ConfigDict(dict(CONFIG.to_dict(), **(FLOSSING if flossing else {})))
  trainer = _at_most_once(train.make_train(config))
  programs = sweep._Programs(trainer, config)
  # Two groups of one shape (as the lengths of Figure 7 are) sharing `programs`.
  for seed in (0, 1):
    labels, hp, keys = _group(4, ("sgd", "sgd_cf") if flossing else ("sgd", "sgd_cr"))
    keys = jax.vmap(lambda k: jax.random.fold_in(k, seed))(keys)  # noqa: B023
    result = sweep.run_group(
      trainer, config, labels=labels, hparams=hp, keys=keys, programs=programs,
      on_progress=lambda line: None,
    )
    # Every chunk ran (nothing was solved early), each a call of the one compiled program.
    assert result.traces["loss"].shape == (len(labels), N_CHUNKS)
  assert programs.chunk_and_screen._cache_size() == 1
  # The run state that crosses chunk boundaries keeps its runs axis on every leaf.
  chex.assert_tree_shape_prefix(programs.init(keys, hp), (len(labels),))


def test_the_check_itself_catches_a_retrace():
  # A program whose chunk index is static (one compilation per chunk) must fail the check.
  trainer = _at_most_once(train.make_train(CONFIG))
  labels, hp, keys = _group(2)
  state = jax.jit(jax.vmap(trainer.init))(keys, hp)
  per_chunk = jax.jit(jax.vmap(trainer.chunk, in_axes=(0, 0, None)), static_argnums=2)
  state, _ = per_chunk(state, hp, 0)
  with pytest.raises(AssertionError, match="traced > 1 times"):
    per_chunk(state, hp, 1)


# --- the top Lyapunov exponents in the traces ---------------------------------------------


def _run(config, labels, hp, keys, initial_params=None):
  trainer = train.make_train(config)
  return sweep.run_group(
    trainer,
    config,
    labels=labels,
    hparams=hp,
    keys=keys,
    on_progress=lambda line: None,
    initial_params=initial_params,
  )


def test_traced_exponents_change_no_run_and_are_each_runs_exponents():
  """`lyapunov_k` = 2 against 0: every run and every other trace bit for bit the same;
  `lyapunov_1`, `lyapunov_2` are the top exponents of each run's parameters at the end of
  the chunk on fresh sequences of the longest training length (recomputed here with the
  analysis module), the other three and all five at k = 0 NaN."""
  labels, hp, keys = _group(4)
  config = CONFIG.copy_and_resolve_references()
  config.max_updates = 2 * config.chunk_size
  # Inputs strong enough to saturate the units, so that the exponents depend on which
  # sequences drive the network (at the init's scale σ' is nearly constant and they would
  # not, and any sequences would match).
  start = jax.vmap(train.make_train(config).init)(keys, hp).params
  start = start.replace(w_in=start.w_in * 300.0, w_hh=start.w_hh * 300.0)
  out = {}
  for k in (0, 2):
    config.lyapunov_k = k
    out[k] = _run(config, labels, hp, keys, start)
  off, on = out[0], out[2]
  for a, b in zip(jax.tree.leaves(off.state), jax.tree.leaves(on.state), strict=True):
    np.testing.assert_array_equal(a, b)
  lyapunov_fields = [f"lyapunov_{i}" for i in range(1, 6)]
  assert set(lyapunov_fields) <= set(sweep.TRACE_FIELDS)
  for f in sweep.TRACE_FIELDS:
    if f not in lyapunov_fields:
      np.testing.assert_array_equal(off.traces[f], on.traces[f], err_msg=f)
  for f in lyapunov_fields:
    assert np.isnan(off.traces[f]).all(), f
    assert np.isnan(on.traces[f]).all() == (f not in ("lyapunov_1", "lyapunov_2")), f
  # The last chunk's value, recomputed: 8 sequences (the default) of length 13, the
  # longest drawn in [10, 14), the first 13 // 4 steps warm-up, from the run's key.
  task = train.make_train(config).task
  length = CONFIG.max_length - 1
  for i in range(len(labels)):
    params = jax.tree.map(lambda a: a[i], on.state.params)  # noqa: B023
    key = jax.random.fold_in(on.state.key[i], 3)
    batch = task.sample(key, 8, jnp.int32(length), task.buffer_length(length))
    want = lyapunov.rnn_lyapunov_exponents(
      params, rnn.SIGMOID, batch.inputs, 2, warmup=length // 4, mask_TxB=batch.mask
    )
    got = [on.traces[f"lyapunov_{j}"][i, -1] for j in (1, 2)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert got[0] >= got[1]


def test_a_checkpoint_written_before_the_exponents_resumes(tmp_path, monkeypatch):
  """A group checkpointed by code whose traces had no exponent fields resumes under this
  code: its earlier chunks read NaN there, the chunks after the resume have them, and
  every trace it had is kept as it was."""
  old = tuple(f for f in sweep.TRACE_FIELDS if not f.startswith("lyapunov_"))
  config = CONFIG.copy_and_resolve_references()
  config.lyapunov_k = 1
  trainer = train.make_train(config)
  programs = sweep._Programs(trainer, config)
  labels, hp, keys = _group(2)

  def group():
    return sweep._Group(
      trainer,
      config,
      labels,
      hp,
      keys,
      checkpoint_dir=tmp_path / "ck",
      name="g",
      say=lambda line: None,
      programs=programs,
    )

  with monkeypatch.context() as m:
    m.setattr(record, "TRACE_FIELDS", old)
    m.setattr(sweep, "TRACE_FIELDS", old)
    first = group()
    for _ in range(2):
      first.step()
    first.save()
  assert "lyapunov_1" not in first.traces.columns

  resumed = group()
  assert resumed.book.chunk == 2
  for f in old:
    np.testing.assert_array_equal(
      np.stack(resumed.traces.columns[f]), np.stack(first.traces.columns[f]), err_msg=f
    )
  resumed.step()
  column = np.stack(resumed.traces.columns["lyapunov_1"])
  assert column.shape == (3, resumed.traces.n_padded)
  assert np.isnan(column[:2]).all() and np.isfinite(column[2, : len(labels)]).all()


def test_traces_of_an_earlier_layout_read_nan_in_the_added_fields():
  n_padded, old = 3, {"step": [np.zeros(3, np.float32)] * 2, "gone": [np.ones(3)] * 2}
  traces = record.Traces(n_padded, old)
  assert set(traces.columns) == set(record.TRACE_FIELDS)  # "gone" is dropped
  stacked = traces.stacked()
  assert stacked["step"].shape == stacked["lyapunov_1"].shape == (2, n_padded)
  assert np.isnan(stacked["loss"]).all() and (stacked["step"] == 0).all()
