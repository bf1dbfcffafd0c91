"""The sweep traces its chunk program once per group, however many chunks it runs.

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
import pytest

from rnn_dynamics import algorithms, runs
from rnn_dynamics.synthetic import sweep, train

# Lengths drawn in [10, 14) per update, four length buckets: the chunk index changes the
# lengths of every chunk, and must stay a traced argument. Plain SGD on sigmoid units does
# not solve in 150 updates, so every chunk runs.
CONFIG = ml_collections.ConfigDict(
  dict(
    task="temporal_order",
    n_hidden=8,
    batch_size=4,
    min_length=10,
    max_length=14,
    length_buckets=4,
    nonfinite_guard="original",
    omega_form="original",
    omega_bound=1e-20,
    momentum=0.0,
    chunk_size=25,
    max_updates=150,
    screen_size=50,
    eval_size=100,
    eval_batch=50,
    success_error=0.01,
    checkpoint_every_s=1e9,
    progress_every_s=1e9,
  )
)
N_CHUNKS = CONFIG.max_updates // CONFIG.chunk_size


def _group(n_runs):
  labels = [dict(algorithm=a, seed=s) for s in range(n_runs // 2) for a in ("sgd", "sgd_cr")]
  hps = [
    algorithms.hparams(lab["algorithm"], lr=0.01, clip=1.0, alpha=4.0, init="sigmoid")
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


def test_groups_compile_their_chunk_program_once():
  trainer = _at_most_once(train.make_train(CONFIG))
  programs = sweep._Programs(trainer, CONFIG)
  # Two groups of one shape (as the lengths of Figure 7 are) sharing `programs`.
  for seed in (0, 1):
    labels, hp, keys = _group(4)
    keys = jax.vmap(lambda k: jax.random.fold_in(k, seed))(keys)  # noqa: B023
    result = sweep.run_group(
      trainer, CONFIG, labels=labels, hparams=hp, keys=keys, programs=programs,
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
