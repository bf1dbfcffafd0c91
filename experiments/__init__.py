"""Experiment binaries (absl), one per figure or table; configs in `experiments/configs/`.

On a CPU-only host, XLA runs one sequential `lax.scan` on one core. Exposing every core as
its own XLA host device lets the runs axis be sharded over the cores exactly as over GPUs
(see `rnn_dynamics.sweep`), roughly doubling throughput on a 2-core machine. This must
happen before JAX initialises, hence here; it only affects the CPU platform, and an
explicit `--xla_force_host_platform_device_count` in `XLA_FLAGS` wins.
"""

import os
from collections.abc import Mapping

__all__ = ["distributed_args"]

_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
  os.environ["XLA_FLAGS"] = (
    f"{_flags} --xla_force_host_platform_device_count={os.cpu_count() or 1}".strip()
  )

# Compiled programs persist across processes, so a resumed sweep does not recompile.
os.environ.setdefault(
  "JAX_COMPILATION_CACHE_DIR",
  os.path.join(
    os.environ.get("RNN_DYNAMICS_CACHE", os.path.expanduser("~/.cache/rnn_dynamics")), "jax"
  ),
)

import logging as _logging

from absl import logging as _absl_logging


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


def _initialize_distributed() -> None:
  """Joins the process group before any JAX computation (BUILD.md, several hosts)."""
  # Cross-process gathers of CPU arrays need CPU collectives; gloo is JAX's built-in
  # implementation (the default in recent versions, 'none' in older ones). Set before
  # JAX reads its config; an explicit choice in the environment wins.
  os.environ.setdefault("JAX_CPU_COLLECTIVES_IMPLEMENTATION", "gloo")
  import jax as _jax

  args = distributed_args()
  try:
    _jax.distributed.initialize(**args)
  except ValueError as e:
    raise ValueError(
      f"RNN_DYNAMICS_DISTRIBUTED=1 but jax.distributed could not start ({e}). Outside a "
      "cluster manager JAX detects (SLURM, Open MPI, Kubernetes, Cloud TPU), set "
      "JAX_COORDINATOR_ADDRESS=<host:port of process 0>, JAX_NUM_PROCESSES and "
      "JAX_PROCESS_ID on every process (BUILD.md)."
    ) from e


if os.environ.get("RNN_DYNAMICS_DISTRIBUTED", "0") == "1":
  _initialize_distributed()


class _QuietCheckpointing(_logging.Filter):
  """Orbax logs every checkpoint step at INFO; keep its warnings, drop the chatter."""

  def filter(self, record: _logging.LogRecord) -> bool:
    return record.levelno >= _logging.WARNING or "orbax" not in record.pathname


_absl_logging.get_absl_handler().addFilter(_QuietCheckpointing())
