"""One writer per workdir: a lock on `<workdir>/.lock`, held until the writing process exits.

`Workdir(path, config)` takes it (`hold`), so a second run launched on the same folder by
mistake is refused (`WorkdirBusyError`, naming the process that writes it) instead of
writing over the first one's checkpoints. The lock file records who holds it ("pid N,
since ..."), which `current_writer` reads for the readers that must not copy a folder
still being written (`publish`). In a multi-host job only process 0 holds it (it is the
one that writes); on a file system without locks nothing is held.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import jax

from rnn_dynamics.errors import ConfigError

__all__ = ["FILE", "WorkdirBusyError", "current_writer", "hold", "release"]

FILE = ".lock"


class WorkdirBusyError(ConfigError):
  """Another process is writing to the workdir (a second run on the same folder)."""


# Workdir → the locked file this process holds, until it exits (a process may open its
# workdir more than once; an flock taken twice by one process would refuse the second).
_HELD: dict[Path, int] = {}


def _holder(fd: int) -> str:
  """What the writer recorded in the open lock file `fd` ("pid N, since ...")."""
  return os.pread(fd, 200, 0).decode(errors="replace").strip() or "pid unknown"


def hold(path: Path) -> None:
  """Makes this process the writer of the workdir at `path`, or raises `WorkdirBusyError`
  naming the process that is."""
  key = path.resolve()
  # Asked only of a multi-host job: process_index() would start a backend (and log)
  # before a binary has said what is wrong with its command line.
  if key in _HELD or (jax.distributed.is_initialized() and jax.process_index() != 0):
    return
  fd = os.open(key / FILE, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    holder = _holder(fd)
    os.close(fd)
    raise WorkdirBusyError(
      f"{path} is in use by another run ({holder}): wait for it to finish, stop it "
      "(Ctrl-C or kill; it checkpoints first) and run again to resume, or pass another "
      "--workdir"
    ) from None
  except OSError:  # no locks here (some network file systems): go on unguarded
    os.close(fd)
    return
  os.ftruncate(fd, 0)
  os.pwrite(fd, f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
  _HELD[key] = fd


def release(path: Path) -> None:
  """Lets another process write to the workdir at `path` (if this one held it)."""
  fd = _HELD.pop(path.resolve(), None)
  if fd is not None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def current_writer(path: Path) -> str | None:
  """The other process writing to the workdir at `path` ("pid N, since ..."), or None."""
  lock = path / FILE
  if not lock.is_file() or path.resolve() in _HELD:
    return None
  fd = os.open(lock, os.O_RDONLY)
  try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
  except BlockingIOError:
    return _holder(fd)
  except OSError:  # no locks on this file system: nobody can be seen writing
    return None
  finally:
    os.close(fd)
  return None
