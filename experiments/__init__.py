"""Experiment binaries (absl), one per figure or table; configs in `experiments/configs/`.

Importing this package (or a binary) has no side effect on the process: the set-up every
binary needs (one XLA device per CPU core, the compilation cache, quiet checkpointing,
`jax.distributed`) is `experiments.runtime.setup()`, which `experiments.cli.run` calls
before the binary's `main`.
"""

import os
from collections.abc import Mapping

__all__ = ["distributed_args"]


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
