"""The process set-up of every binary, done once by `setup()` at its start, never on import.

* **One XLA device per CPU core.** On a CPU-only host XLA runs one sequential `lax.scan`
  on one core; exposing every core as its own host device lets the runs axis be sharded
  over the cores exactly as over GPUs (`rnn_dynamics.synthetic.sweep`; BUILD.md, "CPU"). XLA reads
  `XLA_FLAGS` when the backend starts, which is at the first computation, so setting it
  here (after JAX is imported, before any computation) is in time; an explicit
  `--xla_force_host_platform_device_count` in `XLA_FLAGS` wins.
* **A persistent compilation cache** (`~/.cache/rnn_dynamics/jax`, or under
  `RNN_DYNAMICS_CACHE`; an explicit `JAX_COMPILATION_CACHE_DIR` wins), so a resumed sweep
  does not compile again. JAX reads the variable when it is imported, so the directory
  also goes through `jax.config`; the variable stays set for child processes.
* **Quiet checkpointing:** Orbax logs every checkpoint step at INFO; its warnings stay.
* **Several hosts** (`RNN_DYNAMICS_DISTRIBUTED=1`): joins the `jax.distributed` process
  group before any computation (BUILD.md, "One or several GPUs, a TPU slice").

Importing `experiments` or a binary changes nothing in the process, so tests can import
binaries and run them in-process on the devices the test process already has.
"""

from __future__ import annotations

import logging
import os

__all__ = ["cache_dir", "setup"]

_done = False


def setup() -> None:
  """Prepares this process for a binary; call before any JAX computation. Idempotent.

  Raises:
    ValueError: `RNN_DYNAMICS_DISTRIBUTED=1` but `jax.distributed` cannot start.
  """
  global _done
  if _done:
    return
  _cpu_devices()
  _compilation_cache()
  _quiet_checkpointing()
  if os.environ.get("RNN_DYNAMICS_DISTRIBUTED", "0") == "1":
    _initialize_distributed()
  _done = True


def _cpu_devices() -> None:
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_force_host_platform_device_count" not in flags:
    os.environ["XLA_FLAGS"] = (
      f"{flags} --xla_force_host_platform_device_count={os.cpu_count() or 1}".strip()
    )


def cache_dir() -> str:
  """Where compiled programs persist (see the module docstring)."""
  root = os.environ.get("RNN_DYNAMICS_CACHE", os.path.expanduser("~/.cache/rnn_dynamics"))
  return os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(root, "jax")


def _compilation_cache() -> None:
  import jax

  os.environ["JAX_COMPILATION_CACHE_DIR"] = cache_dir()
  jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])


class _QuietCheckpointing(logging.Filter):
  """Orbax logs every checkpoint step at INFO; keep its warnings, drop the chatter."""

  def filter(self, record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or "orbax" not in record.pathname


def _quiet_checkpointing() -> None:
  from absl import logging as absl_logging

  absl_logging.get_absl_handler().addFilter(_QuietCheckpointing())


def _initialize_distributed() -> None:
  """Joins the process group before any JAX computation (BUILD.md, several hosts)."""
  import jax

  from experiments import distributed_args

  # Cross-process gathers of CPU arrays need CPU collectives; gloo is JAX's built-in
  # implementation (the default in recent versions, 'none' in older ones). JAX read the
  # environment when it was imported, so the choice goes through its config; an explicit
  # choice in the environment wins.
  if "JAX_CPU_COLLECTIVES_IMPLEMENTATION" not in os.environ:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  try:
    jax.distributed.initialize(**distributed_args())
  except ValueError as e:
    raise ValueError(
      f"RNN_DYNAMICS_DISTRIBUTED=1 but jax.distributed could not start ({e}). Outside a "
      "cluster manager JAX detects (SLURM, Open MPI, Kubernetes, Cloud TPU), set "
      "JAX_COORDINATOR_ADDRESS=<host:port of process 0>, JAX_NUM_PROCESSES and "
      "JAX_PROCESS_ID on every process (BUILD.md)."
    ) from e
