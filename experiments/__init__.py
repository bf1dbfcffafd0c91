"""Experiment binaries (absl), one per figure or table; configs in `experiments/configs/`.

Importing this package (or a binary) has no side effect on the process: the set-up every
binary needs (one XLA device per CPU core, the compilation cache, quiet checkpointing,
`jax.distributed`) is `experiments.runtime.setup()`, which `experiments.cli.run` calls
before the binary's `main`.
"""

import os
import signal
from collections.abc import Mapping

from absl import logging as _absl_logging

__all__ = ["distributed_args", "stop_sweeps_gracefully"]


def stop_sweeps_gracefully() -> None:
  """Ctrl-C and `kill` (SIGTERM, also what schedulers send before pre-empting a job) let a
  running `sweep.run_group` finish its chunk, checkpoint it and exit, so a checkpoint
  always holds whole chunks; a second signal stops at once (a restart then resumes from
  the last periodic checkpoint). Called by the binaries whose work runs in sweeps."""

  def handler(signum, frame):
    del frame
    from rnn_dynamics import sweep

    if sweep.stop_requested():
      raise KeyboardInterrupt(f"stopped by signal {signum}")
    _absl_logging.warning("signal %d: stopping after the current chunk (again: now)", signum)
    sweep.request_stop()

  for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, handler)


def distributed_args(environ: Mapping[str, str] | None = None) -> dict[str, int]:
  """The `jax.distributed.initialize` arguments that the environment gives explicitly.

  JAX reads only `JAX_COORDINATOR_ADDRESS` from the environment itself; the number of
  processes and this process's id otherwise come from a detected cluster manager (SLURM,
  Open MPI, Kubernetes, Cloud TPU). `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID`, where set,
  are passed through; where unset, cluster auto-detection fills them in as before.

  Raises:
    ValueError: a variable is set but is not a non-negative integer.
  """
  environ = os.environ if environ is None else environ
  args = {}
  for var, arg in (("JAX_NUM_PROCESSES", "num_processes"), ("JAX_PROCESS_ID", "process_id")):
    value = environ.get(var, "").strip()
    if not value:
      continue
    if not value.isdigit():
      raise ValueError(f"{var}={value!r}: expected a non-negative integer")
    args[arg] = int(value)
  return args
