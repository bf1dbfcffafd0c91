"""rnn_dynamics/synthetic/generalization.py (the generalization test both experiments use) and
experiments/generalization.py end to end on its `test` preset, and its resumption."""

import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments import generalization as experiment
from experiments.configs.generalization import get_config
from rnn_dynamics import results
from rnn_dynamics.synthetic import generalization
from rnn_dynamics.tasks import get_task

REPO = Path(__file__).resolve().parents[1]


def test_eval_block_divides_and_fits():
  task = get_task("temporal_order")
  for length in (50, 250, 3000, 5000):
    block = generalization.eval_block(task, length, 50, 10_000, 1000, block_steps=200_000)
    assert 10_000 % block == 0 and block <= 1000 and block * length <= 200_000
  # never below one sequence
  assert generalization.eval_block(task, 10**6, 50, 7, 1000, block_steps=10) == 1


def _old_blocks(task, length, n_hidden, n, max_block, memory_mb, block_steps):
  # The two rules the binaries had before they shared this one (bit-identical results
  # need the same blocks): by memory (pathological), by steps (generalization).
  per_sequence = 4 * task.buffer_length(length) * (task.n_in + 3 * n_hidden + 2 * task.n_out)
  fit = max(1, min(max_block, int(memory_mb * 2**20 // per_sequence)))
  by_memory = max(d for d in range(1, fit + 1) if n % d == 0)
  fit = max(1, min(max_block, n, block_steps // length))
  by_steps = max(d for d in range(1, fit + 1) if n % d == 0)
  return by_memory, by_steps


@pytest.mark.parametrize("task_name", ["permutation", "temporal_order", "memorization_5bit"])
def test_eval_block_is_each_binarys_old_rule(task_name):
  task = get_task(task_name)
  for length in (10, 50, 200, 1000, 5000):
    for n in (7, 100, 10_000):
      by_memory, by_steps = _old_blocks(task, length, 100, n, 1000, 64, 200_000)
      assert generalization.eval_block(task, length, 100, n, 1000, memory_mb=64) == by_memory
      by_steps_now = generalization.eval_block(task, length, 100, n, 1000, block_steps=200_000)
      assert by_steps_now == by_steps


def test_test_key_is_apart_from_the_training_keys():
  key = generalization.test_key(3, 50)
  expected = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(3), 1_000_003), 50)
  np.testing.assert_array_equal(jax.random.key_data(key), jax.random.key_data(expected))
  assert not np.array_equal(jax.random.key_data(key),
                            jax.random.key_data(generalization.test_key(3, 51)))


def test_test_preset_end_to_end(tmp_path, stop_group, same_results, monkeypatch):
  workdir = tmp_path / "gen"
  # As many devices as this process has, so the resumed run below, here, can be compared
  # bit for bit (the binary would use one per core; the runs axis is sharded over them).
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={jax.device_count()}")
  proc = subprocess.run(
    [sys.executable, "-m", "experiments.generalization",
     "--config=experiments/configs/generalization.py:test", f"--workdir={workdir}"],
    cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "errors at" in proc.stdout

  config = get_config("test")
  rows = results.read_results(workdir / "generalization")
  pairs = sorted((r["seed"], r["eval_length"]) for r in rows)
  assert pairs == sorted((s, t) for s in range(config.seeds) for t in config.eval_lengths)
  for r in rows:
    assert math.isfinite(r["error"]) and 0.0 <= r["error"] <= 1.0
    assert r["n_sequences"] == config.eval_sequences
    assert r["errors"] == round(r["error"] * config.eval_sequences)
    assert r["in_training_range"] == (config.min_length <= r["eval_length"] < config.max_length)
  header = (workdir / "generalization.csv").read_text().splitlines()[0].split(",")
  assert {"seed", "eval_length", "error", "errors", "solved"} <= set(header)
  assert len((workdir / "generalization.csv").read_text().splitlines()) == len(rows) + 1
  for ext in ("png", "svg"):
    assert (workdir / f"generalization.{ext}").stat().st_size > 0
  assert len(results.read_results(workdir / "results")) == config.seeds  # training rows

  # Re-running on the finished workdir trains and evaluates nothing and changes nothing.
  train_rows, again = experiment.run(config, str(workdir))
  assert len(train_rows) == config.seeds
  assert again == rows

  # Stopped mid-way twice, in this process: Ctrl-C after the first of training's two
  # chunks, then (training resumed and finished) after the first evaluation length. The
  # third run finishes, and the workdir holds the uninterrupted run's results bit for bit.
  assert config.max_updates == 2 * config.chunk_size and len(config.eval_lengths) > 1
  resumed = tmp_path / "resumed"
  lines = stop_group(f"train [{config.min_length}, {config.max_length})")
  with pytest.raises(KeyboardInterrupt):
    experiment.run(config, str(resumed))
  assert any(": interrupted — saving a checkpoint at chunk 1" in line for line in lines)
  assert not (resumed / "groups" / "train" / "results.json").exists()

  real_errors_at_lengths = generalization.errors_at_lengths
  evaluated = []

  def stop_after_one_length(*args, **kwargs):
    for out in real_errors_at_lengths(*args, **kwargs):
      evaluated.append(out[0])
      yield out
      raise KeyboardInterrupt

  monkeypatch.setattr(generalization, "errors_at_lengths", stop_after_one_length)
  with pytest.raises(KeyboardInterrupt):
    experiment.run(config, str(resumed))
  assert any("resumed from chunk 1" in line for line in lines)
  assert (resumed / "groups" / "train" / "results.json").exists()
  assert evaluated == [config.eval_lengths[0]]
  partial = results.read_results(resumed / "generalization")
  assert {r["eval_length"] for r in partial} == {config.eval_lengths[0]}

  monkeypatch.setattr(generalization, "errors_at_lengths", real_errors_at_lengths)
  train_rows, resumed_rows = experiment.run(config, str(resumed))
  assert resumed_rows == rows
  same_results(workdir, resumed)
