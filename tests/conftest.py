"""Shared test set-up: float64 where asked, a persistent compilation cache, a
comparison of two workdirs' results, and the tiny trainer config the trainer's tests
start from."""

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

# Compiled programs are reused across test processes (the subprocess tests in particular).
os.environ.setdefault(
  "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "rnn_dynamics_test_jax_cache")
)
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
# Implicit rank promotion hides shape bugs; every test runs with it off (one setting for
# the whole session, so the outcome does not depend on which modules share a worker).
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(scope="module")
def fast_compiles():
  """XLA's optimizations off for a module whose programs run a few hundred updates (they
  cost more than they save there); a module asks with
  `pytestmark = pytest.mark.usefixtures("fast_compiles")`."""
  old = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations", True)
  try:
    yield
  finally:
    jax.config.update("jax_disable_most_optimizations", old)


@pytest.fixture
def x64():
  """Runs a test in float64 (gradient checks against finite differences need it)."""
  jax.config.update("jax_enable_x64", True)
  try:
    yield
  finally:
    jax.config.update("jax_enable_x64", False)


_TIMING = re.compile(r"(time|wall|elapsed|_s$)", re.I)


def _strip_timing(x):
  if isinstance(x, dict):
    return {k: _strip_timing(v) for k, v in x.items() if not _TIMING.search(str(k))}
  if isinstance(x, list):
    return [_strip_timing(v) for v in x]
  return x


def _result_files(root: Path) -> list[str]:
  return sorted(
    str(p.relative_to(root))
    for p in root.rglob("*")
    if p.suffix in (".json", ".csv", ".npz")
    and "checkpoints" not in p.relative_to(root).parts
    and p.name not in ("config.json", "provenance.json")
  )


@pytest.fixture
def same_results():
  """`same_results(a, b)` asserts that two workdirs hold the same results: every `.json`,
  `.csv` and `.npz` file (checkpoints, `config.json` and `provenance.json` aside) equal, bit for bit, except
  fields that are wall-clock measurements (names with time, wall, elapsed or ending `_s`)."""

  def check(a, b):
    a, b = Path(a), Path(b)
    files = _result_files(a)
    assert files and files == _result_files(b)
    for rel in files:
      pa, pb = a / rel, b / rel
      if rel.endswith(".json"):
        assert _strip_timing(json.loads(pa.read_text())) == _strip_timing(
          json.loads(pb.read_text())
        ), rel
      elif rel.endswith(".csv"):
        rows = lambda p: _strip_timing(list(csv.DictReader(io.StringIO(p.read_text()))))
        assert rows(pa) == rows(pb), rel
      else:
        with np.load(pa) as za, np.load(pb) as zb:
          assert za.files == zb.files, rel
          for k in za.files:
            x, y = za[k], zb[k]
            assert x.dtype == y.dtype and x.shape == y.shape, f"{rel}:{k}"
            assert np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"), f"{rel}:{k}"

  return check


class Interrupted:
  """What `interrupted_run` saw: the first process's exit code and stderr, the rerun."""

  def __init__(self, code: int, first: str, second: subprocess.CompletedProcess):
    self.code, self.first, self.second = code, first, second


@pytest.fixture
def interrupted_run(tmp_path):
  """`interrupted_run(args, ready, sig)` runs `python -m <args>` from the repository on one
  CPU device, sends `sig` once its stderr matches the regex `ready` (the trainer's loop is
  running), waits for it to exit, then runs the same command again to completion.
  Returns an `Interrupted`."""

  def run(args, ready: str, sig: int = signal.SIGINT, timeout: float = 300.0) -> Interrupted:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    cmd = [sys.executable, "-m", *args]
    err_path = tmp_path / "interrupted.err"
    with open(err_path, "w") as err:
      proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
      try:
        deadline = time.time() + timeout
        while not re.search(ready, err_path.read_text()):
          assert proc.poll() is None, f"exited {proc.returncode}:\n{err_path.read_text()[-3000:]}"
          assert time.time() < deadline, f"no {ready!r}:\n{err_path.read_text()[-3000:]}"
          time.sleep(0.05)
        proc.send_signal(sig)
        proc.wait(timeout=timeout)
      finally:
        if proc.poll() is None:
          proc.kill()
    second = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return Interrupted(proc.returncode, err_path.read_text(), second)

  return run


@pytest.fixture
def stop_group(monkeypatch):
  """`lines = stop_group(name)` makes `sweep.run_group` press Ctrl-C once, in this process:
  its progress callback raises KeyboardInterrupt after the first chunk of the group called
  `name` (the sweep then checkpoints that chunk and re-raises, as on a real Ctrl-C). Every
  progress line of every group run from then on is appended to `lines`."""
  from rnn_dynamics.synthetic import sweep

  real = sweep.run_group

  def arm(group: str) -> list[str]:
    lines, pressed = [], []

    def run_group(*args, name, **kwargs):
      def on_progress(line):
        lines.append(line)
        if name == group and " solved " in line and not pressed:
          pressed.append(line)
          raise KeyboardInterrupt

      return real(*args, name=name, on_progress=on_progress, **kwargs)

    monkeypatch.setattr(sweep, "run_group", run_group)
    return lines

  return arm


def tiny_trainer_config(**overrides) -> ml_collections.ConfigDict:
  """A trainer config (`train.make_train`, `sweep.run_group`) small enough for tests:
  temporal order at T = 10, 8 units, batches of 4, chunks of 5 updates, a screen and test
  of 20 sequences, the original code's guard and Ω, no momentum, and no checkpoint or
  progress line while a test's group runs. `overrides` set or add fields.

  A plain function rather than a fixture: test modules build their configs at import
  (`test_train.CONFIG` feeds module-scoped fixtures), where no fixture can reach."""
  base = dict(
    task="temporal_order",
    cell="rnn",
    n_hidden=8,
    batch_size=4,
    min_length=10,
    max_length=10,
    nonfinite_guard="original",
    omega_form="original",
    omega_bound=1e-20,
    momentum=0.0,
    chunk_size=5,
    max_updates=100,
    screen_size=20,
    eval_size=20,
    eval_batch=20,
    success_error=0.01,
    checkpoint_every_s=1e9,
    progress_every_s=1e9,
  )
  return ml_collections.ConfigDict(dict(base, **overrides))


@pytest.fixture(scope="session")
def flossing_test_run(tmp_path_factory):
  """The workdir `experiments.success_rate` leaves on its `flossing_test` preset (SGD-CR
  and SGD-CF, exponents in the traces), run once per test session as the notebook tests
  run the binaries: the command, from the repository. Read it; never write into it."""
  workdir = tmp_path_factory.mktemp("flossing_test") / "workdir"
  done = subprocess.run(
    [sys.executable, "-m", "experiments.success_rate",
     "--config=experiments/configs/success_rate.py:flossing_test", f"--workdir={workdir}"],
    cwd=REPO, capture_output=True, text=True, timeout=600,
  )  # fmt: skip
  assert done.returncode == 0, done.stderr[-3000:]
  return workdir
