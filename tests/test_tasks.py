"""Tests for `rnn_dynamics.tasks`: the synthetic samplers and their registry.

Statistical checks draw thousands of sequences in one jitted, key-vmapped call and
recompute everything from the inputs in numpy, so a wrong range, an off-by-one window, a
target that does not follow from the inputs or a biased class fails.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

from rnn_dynamics import tasks

EXPECTED = {
  # name: (n_in, n_out, head)
  "temporal_order": (6, 4, "last_softmax"),
  "temporal_order_3bit": (6, 8, "last_softmax"),
  "addition": (2, 1, "last_linear"),
  "multiplication": (2, 1, "last_linear"),
  "permutation": (100, 100, "last_softmax"),
  "memorization_5bit": (4, 3, "all_softmax"),
  "memorization_20bit": (7, 6, "all_softmax"),
}


# Per task, one compiled program serves every test: (n_keys, batch_size, buffer). The
# buffer is shared by all the lengths a task is tested at, since the length is traced.
CONFIG = {
  "temporal_order": (100, 100, 127),
  "temporal_order_3bit": (100, 100, 127),
  "addition": (400, 25, 136),
  "multiplication": (400, 25, 136),
  "permutation": (40, 100, 30),
  "memorization_5bit": (40, 100, 63),
  "memorization_20bit": (40, 100, 73),
}
TRACES: dict[int, int] = {}


@functools.cache
def _vmapped(sample, batch_size, buffer):
  def draw_one(key, length):
    TRACES[id(sample)] = TRACES.get(id(sample), 0) + 1  # Python side effect: once per trace
    return sample(key, batch_size, length, buffer)

  return jax.jit(jax.vmap(draw_one, in_axes=(0, None)))


def keys_for(n_keys, seed=0):
  return jax.random.split(jax.random.key(seed), n_keys)


def run(task, length, config, seed=0):
  """The raw vmapped batch `[n_keys, ...]` from one jitted call with a traced length."""
  n_keys, batch_size, buffer = config
  f = _vmapped(task.sample, batch_size, buffer)
  out = jax.device_get(f(keys_for(n_keys, seed), jnp.int32(length)))
  assert TRACES[id(task.sample)] == 1  # every length reuses the one compiled program
  return out


def merge(b, head):
  """Merges the key axis into the batch axis: `[T, n_keys * B, ...]` numpy arrays."""
  n_keys, t, batch_size = b.mask.shape
  n = n_keys * batch_size
  inputs = np.moveaxis(b.inputs, 0, 1).reshape(t, n, -1)
  mask = np.moveaxis(b.mask, 0, 1).reshape(t, n)
  if head == "all_softmax":
    targets = np.moveaxis(b.targets, 0, 1).reshape(t, n)
  else:
    targets = b.targets.reshape(n, *b.targets.shape[2:])
  return tasks.Batch(inputs, targets, mask)


def draw(task, length, config=None, seed=0):
  """Thousands of sequences as one merged numpy batch."""
  config = config or CONFIG[task.name]
  return merge(run(task, length, config, seed), task.head)


def assert_exact_range(positions, lo, hi, what):
  """Every position lies in `[lo, hi)` and every step of `[lo, hi)` occurs."""
  positions = np.asarray(positions)
  assert positions.min() >= lo and positions.max() < hi, (what, positions.min(), positions.max())
  np.testing.assert_array_equal(np.unique(positions), np.arange(lo, hi), err_msg=what)


def lengths_of(mask):
  """Per-sequence valid length, after checking the valid steps form a prefix."""
  n_valid = mask.sum(0)
  prefix = np.arange(mask.shape[0])[:, None] < n_valid[None, :]
  np.testing.assert_array_equal(mask, prefix)
  return n_valid


# --- registry --------------------------------------------------------------------------


def test_registry_lists_the_published_tasks():
  assert tasks.TASKS == tuple(EXPECTED)
  assert set(tasks.__all__) >= {"Batch", "Task", "TASKS", "get_task", "memorization"}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_registry_sizes_and_heads(name):
  task = tasks.get_task(name)
  assert isinstance(task, tasks.Task)
  assert (task.name, task.n_in, task.n_out, task.head) == (name, *EXPECTED[name])
  assert tasks.get_task(name) is task  # cached: the same sampler object, jit cache hits


@pytest.mark.parametrize("bad", ["temporal-order", "", "ADDITION", None, 3])
def test_registry_unknown_name_lists_choices(bad):
  with pytest.raises(ValueError, match="valid choices") as err:
    tasks.get_task(bad)
  for name in tasks.TASKS:
    assert name in str(err.value)


def test_memorization_factory():
  task = tasks.memorization(3, 4)
  assert (task.n_in, task.n_out, task.head) == (5, 4, "all_softmax")
  assert task.buffer_length(20) == 28
  with pytest.raises(ValueError):
    tasks.memorization(0, 4)


def test_buffer_lengths():
  # addition: T' = T + U[0, ⌊0.1T⌋) is at most T + ⌊0.1T⌋ - 1.
  add = tasks.get_task("addition")
  assert [add.buffer_length(t) for t in (10, 19, 20, 50, 123)] == [10, 19, 21, 54, 134]
  assert tasks.get_task("memorization_5bit").buffer_length(50) == 60
  assert tasks.get_task("memorization_20bit").buffer_length(50) == 70
  for name in ("temporal_order", "temporal_order_3bit", "permutation"):
    assert tasks.get_task(name).buffer_length(77) == 77


# --- properties shared by every task ---------------------------------------------------


def check_contract(task, b, length, buffer):
  """Shapes, dtypes, mask prefix, zero padding and one-hot inputs of one batch."""
  batch_size = b.mask.shape[1]
  assert b.inputs.shape == (buffer, batch_size, task.n_in) and b.inputs.dtype == jnp.float32
  assert b.mask.shape == (buffer, batch_size) and b.mask.dtype == jnp.bool_
  if task.head == "last_softmax":
    assert b.targets.shape == (batch_size,) and b.targets.dtype == jnp.int32
  elif task.head == "last_linear":
    assert b.targets.shape == (batch_size, 1) and b.targets.dtype == jnp.float32
  else:
    assert b.targets.shape == (buffer, batch_size) and b.targets.dtype == jnp.int32

  inputs, targets, mask = map(np.asarray, b)
  n_valid = lengths_of(mask)
  if task.head == "last_linear":
    assert np.all(n_valid == n_valid[0])  # one T' per batch, as the original code
    assert length <= n_valid[0] <= task.buffer_length(length)
  else:
    np.testing.assert_array_equal(n_valid, task.buffer_length(length))
  assert n_valid.max() < buffer  # so that some padding is checked below
  assert np.all(inputs[~mask] == 0)
  if task.head == "all_softmax":
    assert np.all(targets[~mask] == 0)
  if task.head != "last_linear":
    assert targets.min() >= 0 and targets.max() < task.n_out
    assert set(np.unique(inputs)) <= {0.0, 1.0}
    np.testing.assert_array_equal(inputs.sum(-1), mask.astype(np.float32))


@pytest.mark.parametrize("name", list(EXPECTED))
def test_sampler_contract_eager_jit_and_vmap(name):
  task = tasks.get_task(name)
  n_keys, batch_size, buffer = CONFIG[name]
  keys = keys_for(n_keys)
  for length in (10, 23):
    vmapped = run(task, length, CONFIG[name])  # jit + vmap over keys, length traced
    for i in (0, n_keys - 1):
      eager = task.sample(keys[i], batch_size, length, buffer)
      check_contract(task, eager, length, buffer)
      for e, v in zip(eager, vmapped):
        np.testing.assert_array_equal(np.asarray(e), v[i])
    # Different keys give different batches.
    assert not np.array_equal(vmapped.inputs[0], vmapped.inputs[1])
    if task.head != "last_linear":
      assert not np.array_equal(vmapped.targets[0], vmapped.targets[1])
  again = task.sample(keys[0], batch_size, 23, buffer)
  np.testing.assert_array_equal(np.asarray(again.inputs), vmapped.inputs[0])


@pytest.mark.parametrize("name", list(EXPECTED))
def test_concrete_length_is_checked(name):
  task = tasks.get_task(name)
  with pytest.raises(ValueError):
    task.sample(jax.random.key(0), 2, 40, task.buffer_length(40) - 1)


@pytest.mark.parametrize("name", ["temporal_order", "temporal_order_3bit", "addition"])
def test_lengths_below_ten_are_rejected(name):
  # The windows of width ⌊0.1T⌋ are empty (the original code raises too).
  with pytest.raises(ValueError):
    tasks.get_task(name).sample(jax.random.key(0), 2, 9, 20)



@pytest.mark.parametrize("name", list(EXPECTED))
def test_min_length_is_the_samplers_own_bound(name):
  # Configs are checked against `min_length` because a traced length is never refused.
  task = tasks.get_task(name)
  n = task.min_length
  task.sample(jax.random.key(0), 2, n, task.buffer_length(n))
  if n > 1:
    with pytest.raises(ValueError):
      task.sample(jax.random.key(0), 2, n - 1, task.buffer_length(n))

# --- temporal order --------------------------------------------------------------------


@pytest.mark.parametrize(
  "task,length",
  [
    ("temporal_order", 57),
    ("temporal_order", 123),
    ("temporal_order_3bit", 57),
    ("temporal_order_3bit", 123),
    ("paper_variant", 123),
  ],
)
def test_temporal_order_marks_targets_and_balance(task, length):
  if task == "paper_variant":  # the paper's text: second window at ⌊0.4T⌋
    task = tasks.temporal_order((1, 4))
    offsets, config = (1, 4), CONFIG["temporal_order"]
  else:
    task = tasks.get_task(task)
    offsets, config = ((1, 5) if task.n_out == 4 else (1, 3, 6)), CONFIG[task.name]
  b = draw(task, length, config)
  symbols = b.inputs.argmax(-1)  # [T, N]
  is_mark = (symbols < 2) & b.mask
  assert np.all(is_mark.sum(0) == len(offsets))

  width = length // 10
  cols = np.arange(symbols.shape[1])
  label = np.zeros(symbols.shape[1], np.int64)
  for i, tenths in enumerate(offsets):
    pos = np.argmax(np.cumsum(is_mark, 0) == i + 1, axis=0)  # the i-th mark in time
    start = int(length * (tenths / 10))  # the original code's `int(l * .k)`
    assert start == (tenths * length) // 10
    assert_exact_range(pos, start, start + width, f"mark {i}")
    label += symbols[pos, cols] * 2**i
  np.testing.assert_array_equal(label, b.targets)

  n_classes = 2 ** len(offsets)
  freq = np.bincount(b.targets, minlength=n_classes) / b.targets.size
  np.testing.assert_allclose(freq, 1 / n_classes, atol=0.02)
  distractors = symbols[b.mask & ~is_mark]
  assert distractors.min() == 2 and distractors.max() == 5
  np.testing.assert_allclose(np.bincount(distractors)[2:] / distractors.size, 0.25, atol=0.01)


def test_temporal_order_rejects_overlapping_windows():
  with pytest.raises(ValueError):
    tasks.temporal_order((5, 1))
  with pytest.raises(ValueError):
    tasks.temporal_order((1, 10))


# --- addition and multiplication -------------------------------------------------------


@pytest.mark.parametrize("name", ["addition", "multiplication"])
@pytest.mark.parametrize("length", [50, 123])
def test_arithmetic_lengths_marks_and_targets(name, length):
  task = tasks.get_task(name)
  n_keys, batch_size, buffer = CONFIG[name]
  b = draw(task, length)
  actual = lengths_of(b.mask)
  # One T' per batch (the original code), drawn exactly from [T, T + ⌊0.1T⌋).
  per_batch = actual.reshape(n_keys, batch_size)
  assert np.all(per_batch == per_batch[:, :1])
  assert_exact_range(per_batch[:, 0], length, length + length // 10, "T'")

  marks, values = b.inputs[..., 0], b.inputs[..., 1]
  assert set(np.unique(marks)) <= {0.0, 1.0}
  assert np.all(marks.sum(0) == 2)
  p0 = np.argmax(marks == 1, axis=0)
  p1 = buffer - 1 - np.argmax(marks[::-1] == 1, axis=0)
  for tp in np.unique(actual):  # the ranges depend on T': each must be hit exactly
    sel = actual == tp
    first = int(tp * 0.1)  # the original code's floors
    assert_exact_range(p0[sel], 0, first, f"p0 at T'={tp}")
    assert_exact_range(p1[sel], first, first + int(tp * 0.4), f"p1 at T'={tp}")

  cols = np.arange(values.shape[1])
  v0, v1 = values[p0, cols], values[p1, cols]
  expected = (v0 + v1) / 2 if name == "addition" else v0 * v1
  np.testing.assert_allclose(b.targets[:, 0], expected, rtol=1e-6)
  valid_values = values[b.mask]
  assert valid_values.min() >= 0 and valid_values.max() < 1
  assert abs(valid_values.mean() - 0.5) < 0.01
  assert abs(b.targets.mean() - (0.5 if name == "addition" else 0.25)) < 0.01


def test_addition_per_sequence_length_option():
  task = tasks.addition(per_sequence_length=True)
  length, (n_keys, batch_size, buffer) = 50, CONFIG["addition"]
  b = draw(task, length, CONFIG["addition"])
  actual = lengths_of(b.mask)
  assert np.all(actual.reshape(n_keys, batch_size).std(1) > 0)  # T' varies inside a batch
  assert_exact_range(actual, length, length + length // 10, "T' per sequence")
  p1 = buffer - 1 - np.argmax(b.inputs[::-1, :, 0] == 1, axis=0)
  assert np.all(p1 < actual // 10 + (4 * actual) // 10)
  assert np.all(p1 >= actual // 10)


# --- random permutation ----------------------------------------------------------------


def test_permutation_first_symbol_is_the_target():
  task = tasks.get_task("permutation")
  length = 25
  b = draw(task, length)
  symbols = b.inputs.argmax(-1)
  np.testing.assert_array_equal(lengths_of(b.mask), length)
  np.testing.assert_array_equal(symbols[0], b.targets)
  assert set(np.unique(b.targets)) == {0, 1}
  assert abs(b.targets.mean() - 0.5) < 0.03
  rest = symbols[1:length]
  np.testing.assert_array_equal(np.unique(rest), np.arange(2, 100))
  np.testing.assert_allclose(np.bincount(rest.ravel())[2:] / rest.size, 1 / 98, rtol=0.2)


# --- noiseless memorization ------------------------------------------------------------


@pytest.mark.parametrize("name,k,p", [("memorization_5bit", 2, 5), ("memorization_20bit", 5, 10)])
@pytest.mark.parametrize("length", [0, 7, 50])
def test_memorization_layout_and_targets(name, k, p, length):
  task = tasks.get_task(name)
  b = draw(task, length)
  buffer, n = b.mask.shape
  np.testing.assert_array_equal(lengths_of(b.mask), length + 2 * p)

  assert np.all(b.inputs[:p, :, :k].sum(-1) == 1)
  pattern = b.inputs[:p, :, :k].argmax(-1)  # [P, N]
  go = p + length
  expected_in = np.full((buffer, n), k)  # blank
  expected_in[:p] = pattern
  expected_in[go] = k + 1
  one_hot = np.eye(k + 2, dtype=np.float32)[expected_in]
  one_hot[go + p :] = 0
  expected_targets = np.full((buffer, n), k)
  expected_targets[go : go + p] = pattern
  expected_targets[go + p :] = 0
  np.testing.assert_array_equal(b.inputs, one_hot)
  np.testing.assert_array_equal(b.targets, expected_targets)

  # Patterns are uniform: every symbol equally likely at every position.
  freq = np.stack([np.bincount(row, minlength=k) for row in pattern]) / n
  np.testing.assert_allclose(freq, 1 / k, atol=0.04)
  if k**p <= 64:
    codes = (pattern * k ** np.arange(p)[:, None]).sum(0)
    assert len(np.unique(codes)) == k**p


@pytest.mark.parametrize("name", list(EXPECTED))
def test_per_sequence_lengths_are_single_draws_side_by_side(name):
  """Column i of the mixed-length batch is exactly `sample(key_i, 1, length_i)`."""
  task = tasks.get_task(name)
  lengths = jnp.asarray([10, 23, 12, 17], jnp.int32)
  buffer = task.buffer_length(23)
  key = jax.random.key(5)
  mixed = jax.jit(tasks.sample_per_sequence_lengths, static_argnums=(0, 3))(
    task, key, lengths, buffer
  )
  one = task.sample(key, 1, jnp.int32(10), buffer)
  assert mixed.inputs.shape == (buffer, 4) + one.inputs.shape[2:]
  assert mixed.mask.shape == (buffer, 4)
  target_axis = 0 if task.head.startswith("last") else 1
  for i, (k, n) in enumerate(zip(jax.random.split(key, 4), np.asarray(lengths))):
    single = task.sample(k, 1, jnp.int32(n), buffer)
    np.testing.assert_array_equal(mixed.inputs[:, i], single.inputs[:, 0])
    np.testing.assert_array_equal(mixed.mask[:, i], single.mask[:, 0])
    np.testing.assert_array_equal(
      np.take(np.asarray(mixed.targets), i, target_axis),
      np.take(np.asarray(single.targets), 0, target_axis),
    )
  # Different lengths really give different sequence extents.
  assert len(set(np.asarray(mixed.mask.sum(axis=0)).tolist())) == 4
