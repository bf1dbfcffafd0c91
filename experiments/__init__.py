"""Experiment binaries (absl), one per figure or table; configs in `experiments/configs/`.

On a CPU-only host, XLA runs one sequential `lax.scan` on one core. Exposing every core as
its own XLA host device lets the runs axis be sharded over the cores exactly as over GPUs
(see `rnn_dynamics.sweep`), roughly doubling throughput on a 2-core machine. This must
happen before JAX initialises, hence here; it only affects the CPU platform, and an
explicit `--xla_force_host_platform_device_count` in `XLA_FLAGS` wins.
"""

import os
import signal

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

import logging as _logging  # noqa: E402

from absl import logging as _absl_logging  # noqa: E402


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


if os.environ.get("RNN_DYNAMICS_DISTRIBUTED", "0") == "1":
  # Several hosts: one process per host joins before any JAX computation (BUILD.md).
  import jax as _jax

  _jax.distributed.initialize()


class _QuietCheckpointing(_logging.Filter):
  """Orbax logs every checkpoint step at INFO; keep its warnings, drop the chatter."""

  def filter(self, record: _logging.LogRecord) -> bool:
    return record.levelno >= _logging.WARNING or "orbax" not in record.pathname


_absl_logging.get_absl_handler().addFilter(_QuietCheckpointing())
