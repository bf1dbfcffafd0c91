"""rnn_dynamics/synthetic/continued.py and experiments/generalization_continued.py: test-preset
models from experiments/generalization.py trained on past their pass, end to end, resumed
after stops (bit for bit), published (finished and partial) and resumed from the copy."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments import generalization as source_experiment
from experiments import generalization_continued as experiment
from experiments import validation
from experiments.configs.generalization import get_config as source_config
from experiments.configs.generalization_continued import get_config
from rnn_dynamics import results
from rnn_dynamics.errors import ConfigError
from rnn_dynamics.runs import stop
from rnn_dynamics.synthetic import continued, sweep
from rnn_dynamics.workdir import Workdir, publish

REPO = Path(__file__).resolve().parents[1]


def _config(**overrides):
  config = get_config("test")
  for k, v in overrides.items():
    config[k] = v
  return validation.validate(config, "generalization_continued")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
  """A test-preset generalization workdir whose every model passed at its first chunk: the
  success test is made trivial (error < 100 %), so a continuation that froze runs at a
  passed test would stop every one of them at once."""
  config = source_config("test")
  config.success_error = 1.0
  config.zero_mistake_stop = False
  path = tmp_path_factory.mktemp("source") / "gen"
  source_experiment.run(validation.validate(config, "generalization"), str(path))
  return path


@pytest.fixture(scope="module")
def uninterrupted(source, tmp_path_factory):
  """The binary on the `test` preset, from `source`, in one go (a subprocess)."""
  workdir = tmp_path_factory.mktemp("continued") / "wd"
  # As many devices as this process has, so the runs resumed here compare bit for bit.
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={jax.device_count()}")
  proc = subprocess.run(
    [sys.executable, "-m", "experiments.generalization_continued",
     "--config=experiments/configs/generalization_continued.py:test",
     f"--from_workdir={source}", f"--workdir={workdir}"],
    cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
  )  # fmt: skip
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir, proc


def test_end_to_end(source, uninterrupted):
  workdir, proc = uninterrupted
  config = get_config("test")
  assert "after pass" in proc.stdout and "continued.png" in proc.stdout
  rows = results.read_results(workdir / continued.TABLE)
  points = continued.test_points(config)
  assert points == [0, 100, 200]
  seeds = range(source_config("test").seeds)
  keys = sorted((r["seed"], r["updates_after_pass"], r["eval_length"]) for r in rows)
  assert keys == [(s, p, t) for s in seeds for p in points for t in config.eval_lengths]
  trained = results.read_results(source / "groups" / "train" / "results")
  source_rows = {r["seed"]: r for r in trained}
  for r in rows:
    assert 0.0 <= r["error"] <= 1.0 and r["errors"] == round(r["error"] * config.eval_sequences)
    assert r["updates_total"] == source_rows[r["seed"]]["updates_done"] + r["updates_after_pass"]
    assert r["updates_to_solve"] == source_rows[r["seed"]]["updates_to_solve"]
    assert not r["diverged"]

  # Test point 0 is the source's own test of the same models, sequence for sequence.
  before = results.read_results(source / "generalization")
  before = {(r["seed"], r["eval_length"]): r for r in before}
  for r in rows:
    if r["updates_after_pass"] == 0:
      b = before[r["seed"], r["eval_length"]]
      assert (r["errors"], r["error"]) == (b["errors"], b["error"])
  # ...and training moved them: later points differ somewhere.
  assert any(
    r["errors"] != before[r["seed"], r["eval_length"]]["errors"]
    for r in rows
    if r["updates_after_pass"] == points[-1]
  )

  # The set-up is the source's, read from it; the workdir keeps a copy of the models.
  recorded = json.loads((workdir / "config.json").read_text())
  assert recorded["source"] == json.loads((source / "config.json").read_text())
  copy = continued.read_source(workdir / continued.SOURCE)
  assert recorded["source_params_sha256"] == copy.sha256
  assert copy.sha256 == continued.read_source(source).sha256
  for ext in ("png", "svg"):
    assert (workdir / f"{continued.TABLE}.{ext}").stat().st_size > 0


def test_runs_train_on_past_a_passed_test(source, uninterrupted):
  """Every source model passed (at its first chunk), and in the continuation every screen
  passes too: the runs must still train their whole budget, never frozen."""
  workdir, _ = uninterrupted
  config = get_config("test")
  source_rows = results.read_results(source / "groups" / "train" / "results")
  assert all(r["solved"] for r in source_rows)
  group = Workdir.open(workdir)
  rows = group.load_rows(continued.GROUP)
  assert [r["updates_done"] for r in rows] == [config.updates] * len(source_rows)
  assert all(r["final_error"] < 1.0 for r in rows)  # the screens passed, every chunk
  traces = group.load_traces(continued.GROUP)
  chunks = config.updates // source_config("test").chunk_size
  assert traces["screen_error"].shape == (len(rows), chunks)
  assert np.isfinite(traces["screen_error"]).all() and np.isfinite(traces["loss"]).all()
  assert (traces["screen_error"] < 1.0).all()
  # The group's own success fields are left out of the table: it took no such test.
  top = results.read_results(workdir / "results")
  assert not {"solved", "updates_to_solve", "strict_solved"} & set(top[0])
  # and the parameters moved away from the source's.
  start, end = continued.read_source(source).params, group.load_params(continued.GROUP)
  assert not np.array_equal(start["w_hh"], end["w_hh"])


@pytest.fixture
def stop_when(monkeypatch):
  """`lines = stop_when(pattern)`: the next group run asks to stop (as a first Ctrl-C
  does) right after a progress or test line matching the regex `pattern`; every line
  goes to `lines`."""
  real = sweep.run_group

  def arm(pattern: str) -> list[str]:
    lines, fired = [], []

    def run_group(*args, **kwargs):
      def on_progress(line):
        lines.append(line)
        if re.search(pattern, line) and not fired:
          fired.append(line)
          stop.request()

      return real(*args, on_progress=on_progress, **kwargs)

    monkeypatch.setattr(sweep, "run_group", run_group)
    return lines

  return arm


def _tested(lines: list[str]) -> list[tuple[int, int]]:
  """(test point, length) of each test line, in order."""
  found = (re.search(r": ([\d,]+) updates after the pass, length (\d+):", line) for line in lines)
  return [(int(m[1].replace(",", "")), int(m[2])) for m in found if m]


def test_resumed_after_stops_is_bit_identical_and_publishes(
  source, uninterrupted, tmp_path, stop_when, same_results
):
  workdir, _ = uninterrupted
  config = _config()
  resumed = tmp_path / "resumed"

  # Stopped after two of test point 0's three lengths: nothing trained, nothing to save.
  lines = stop_when(r": 0 updates after the pass, length 20:")
  with pytest.raises(KeyboardInterrupt):
    experiment.run(config, str(resumed), str(source))
  assert _tested(lines) == [(0, 10), (0, 20)]
  table = results.read_results(resumed / continued.TABLE)
  assert {(r["updates_after_pass"], r["eval_length"]) for r in table} == {(0, 10), (0, 20)}
  assert any("interrupted — saving a checkpoint at chunk 0" in line for line in lines)

  # Resumed (from the workdir's copy of the models): only length 40 is tested at 0; then
  # stopped after the first length of test point 100, checkpointed at chunk 1.
  lines = stop_when(r": 100 updates after the pass, length 10:")
  with pytest.raises(KeyboardInterrupt):
    experiment.run(config, str(resumed))
  assert _tested(lines) == [(0, 40), (100, 10)]
  assert any("interrupted — saving a checkpoint at chunk 1" in line for line in lines)

  # Published as a partial state, and resumed from the copy alone: the source folder and
  # the interrupted workdir are not needed, and the result is the uninterrupted run's.
  copy = tmp_path / "copy"
  publish(resumed, copy, partial=True)
  assert (copy / "partial.json").is_file() and (copy / continued.SOURCE / "config.json").is_file()
  lines = stop_when(r"^never$")
  experiment.run(config, str(copy))
  assert any("resumed from chunk 1" in line for line in lines)
  assert _tested(lines) == [(100, 20), (100, 40), (200, 10), (200, 20), (200, 40)]
  same_results(workdir, copy)

  # A finished workdir publishes without run state; the copy loads as it is.
  final = tmp_path / "final"
  publish(copy, final)
  assert not (final / "checkpoints").exists() and (final / "continued.csv").is_file()
  _, rows = experiment.run(config, str(final))
  assert rows == results.read_results(workdir / continued.TABLE)


def test_other_models_are_refused(source, uninterrupted, tmp_path):
  workdir, _ = uninterrupted
  config = _config()
  other = tmp_path / "other"
  # The same set-up with other models (in another order) cannot resume this workdir.
  shutil.copytree(source, other)
  params = continued.read_source(source).params
  reversed_params = {k: v[::-1] for k, v in params.items()}
  results.write_npz(other / "groups" / "train" / "params.npz", reversed_params)
  with pytest.raises(ConfigError, match="source_params_sha256"):
    experiment.run(config, str(workdir), str(other))
  # Relations with the source: whole chunks of its chunk_size.
  says = r"--config.test_every=150 must be a multiple of the models' chunk_size=100"
  with pytest.raises(ConfigError, match=says):
    experiment.run(_config(test_every=150, updates=300), str(tmp_path / "x"), str(source))
  assert not (tmp_path / "x").exists()
  with pytest.raises(ConfigError, match="--from_workdir is required"):
    experiment.run(config, str(tmp_path / "y"))
  with pytest.raises(ConfigError, match="not a workdir of experiments.generalization"):
    experiment.run(config, str(tmp_path / "z"), str(tmp_path / "nowhere"))
