"""Several hosts, tested on one: two `jax.distributed` processes on localhost (one CPU device
each) run the Figure 7 `test` preset into one shared workdir, and their table equals a
one-process run's; the environment variables BUILD.md documents reach `initialize`."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRESET = "experiments/configs/success_rate.py:test"
# The columns that make the table (per run, beside its labels).
COLUMNS = ("solved", "updates_to_solve", "final_error", "diverged")
# About 45 s on an idle 2-core machine, ~3 min under a load of 9; past this a process is
# stuck (e.g. a peer never reached the coordinator) and all are killed: CI never hangs here.
TIMEOUT_S = 420.0
_DISTRIBUTED_VARS = (
  "RNN_DYNAMICS_DISTRIBUTED",
  "JAX_COORDINATOR_ADDRESS",
  "JAX_COORDINATOR_BIND_ADDRESS",
  "JAX_NUM_PROCESSES",
  "JAX_PROCESS_ID",
)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start(workdir: Path, log: Path, **env) -> subprocess.Popen:
  base = {k: v for k, v in os.environ.items() if k not in _DISTRIBUTED_VARS}
  cmd = [sys.executable, "-m", "experiments.success_rate", f"--config={PRESET}"]
  cmd.append(f"--workdir={workdir}")
  with open(log, "w") as f:  # the child keeps its own descriptor
    return subprocess.Popen(
      cmd, cwd=REPO, env=dict(base, **env), stdout=f, stderr=subprocess.STDOUT
    )


def _wait_all(procs: dict[str, tuple[subprocess.Popen, Path]]) -> None:
  """Waits for every process under one deadline; kills all of them on failure or timeout."""
  deadline = time.monotonic() + TIMEOUT_S
  try:
    for name, (proc, log) in procs.items():
      try:
        proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
      except subprocess.TimeoutExpired:
        pytest.fail(f"{name} still running after {TIMEOUT_S:.0f} s:\n{log.read_text()[-3000:]}")
      assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{log.read_text()[-3000:]}"
  finally:
    for proc, _ in procs.values():
      if proc.poll() is None:
        proc.kill()
        proc.wait()


def _table(workdir: Path) -> dict[tuple, tuple]:
  rows = json.loads((workdir / "results.json").read_text())
  key = lambda r: (r["init"], r["algorithm"], r["length"], r["seed"])
  table = {key(r): tuple(r[c] for c in COLUMNS) for r in rows}
  assert len(table) == len(rows), "duplicate runs in results.json"
  return table


def test_two_processes_give_the_one_process_table(tmp_path):
  port = _free_port()
  shared = tmp_path / "shared"
  one_device = "--xla_force_host_platform_device_count=1"
  procs = {}
  for pid in range(2):
    procs[f"process {pid}"] = (
      _start(
        shared,
        tmp_path / f"process{pid}.log",
        RNN_DYNAMICS_DISTRIBUTED="1",
        JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
        # JAX binds the coordinator to [::]:port by default; loopback works without IPv6.
        JAX_COORDINATOR_BIND_ADDRESS=f"127.0.0.1:{port}",
        JAX_NUM_PROCESSES="2",
        JAX_PROCESS_ID=str(pid),
        XLA_FLAGS=one_device,
      ),
      tmp_path / f"process{pid}.log",
    )
  # The reference: one process with the same two devices (so the same padded runs axis),
  # run at the same time to keep the test short.
  procs["one process"] = (
    _start(
      tmp_path / "single",
      tmp_path / "single.log",
      XLA_FLAGS="--xla_force_host_platform_device_count=2",
    ),
    tmp_path / "single.log",
  )
  _wait_all(procs)

  for pid in range(2):
    assert "2 device(s)" in (tmp_path / f"process{pid}.log").read_text(), "not one mesh"
  two, one = _table(shared), _table(tmp_path / "single")
  assert two == one
  # The test preset solves some runs and not others, so equality says something.
  assert {v[0] for v in one.values()} == {True, False}


@pytest.fixture(scope="module")
def experiments_package():
  """`experiments` (its import has no side effect: `experiments.runtime.setup` does the
  set-up, e.g. `jax.distributed`, at a binary's start)."""
  import experiments

  return experiments


@pytest.mark.parametrize(
  "env, expected",
  [
    ({}, {}),
    ({"JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "0"}, {"num_processes": 4, "process_id": 0}),
    ({"JAX_PROCESS_ID": "3"}, {"process_id": 3}),  # the count from the cluster manager
    ({"JAX_NUM_PROCESSES": " ", "JAX_COORDINATOR_ADDRESS": "h:1"}, {}),  # JAX reads that one
  ],
)
def test_distributed_args_pass_through_what_is_set(experiments_package, env, expected):
  assert experiments_package.distributed_args(env) == expected


def test_distributed_args_reject_a_non_integer(experiments_package):
  with pytest.raises(ValueError, match="JAX_NUM_PROCESSES"):
    experiments_package.distributed_args({"JAX_NUM_PROCESSES": "two"})
