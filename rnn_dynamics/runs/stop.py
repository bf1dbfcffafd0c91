"""The one stop path: a stop request, and the SIGINT / SIGTERM handlers that make it.

While a trainer's host loop runs (inside `polling()`), the first Ctrl-C or SIGTERM (what
schedulers send before pre-empting a job) only asks it to stop: it finishes the current
chunk (or segment batch), checkpoints and raises `KeyboardInterrupt` (`check`), so a
checkpoint always holds whole chunks. A second signal, or one that arrives while no loop
polls (compiling, writing figures, a binary with no trainer), raises `KeyboardInterrupt`
at once; a restart then resumes from the last checkpoint. `experiments/cli.py::run`
installs the handlers and turns the `KeyboardInterrupt` into exit code 130.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

from absl import logging

__all__ = ["check", "clear", "install_handlers", "polling", "request", "requested"]

_STOP = threading.Event()
_POLLERS = [0]  # host loops now inside `polling()`


def request() -> None:
  """Asks the running trainer to checkpoint and raise `KeyboardInterrupt` after its
  current chunk. Safe to call from a signal handler."""
  _STOP.set()


def requested() -> bool:
  """Whether `request` was called and no trainer has acted on it yet."""
  return _STOP.is_set()


def clear() -> None:
  _STOP.clear()


def check() -> None:
  """Raises `KeyboardInterrupt` (and clears the request) if a stop was requested."""
  if _STOP.is_set():
    _STOP.clear()
    raise KeyboardInterrupt("stop requested")


@contextlib.contextmanager
def polling() -> Iterator[None]:
  """Marks a host loop that calls `check` between chunks (signals then only request)."""
  _POLLERS[0] += 1
  try:
    yield
  finally:
    _POLLERS[0] -= 1


def _handler(signum, frame) -> None:
  del frame
  if requested() or not _POLLERS[0]:
    raise KeyboardInterrupt(f"stopped by signal {signum}")
  logging.warning("signal %d: stopping after the current chunk (again: now)", signum)
  request()


def install_handlers(signals=(signal.SIGINT, signal.SIGTERM)) -> None:
  """Ctrl-C and SIGTERM go through the stop request (see the module docstring)."""
  for sig in signals:
    signal.signal(sig, _handler)
