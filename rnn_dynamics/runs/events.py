"""Live monitoring: each run's scalars as TensorBoard event files, without TensorFlow.

The host loop (`runs.loop.drive`) hands every step's per-run scalars to an `EventLog`,
which keeps one event-file folder per run (`<dir>/<run name>/`), so TensorBoard shows
each run as its own series and dozens of runs of a sweep can be compared while it trains:

    tensorboard --logdir <workdir>/events

Files are written with tensorboardX (no TensorFlow needed) by process 0 only. A resumed
group purges what its runs logged past their checkpoint (`purge_step`), so a series never
doubles back. Event files are for watching, not results: `publish` leaves them out, and
every number they hold is also in the workdir's traces or history.
`read` turns a folder back into numbers (tests, notebooks).
"""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jax
import numpy as np

__all__ = ["EventLog", "read", "run_name"]


def run_name(label: Mapping[str, Any]) -> str:
  """A run's folder name from its labels, e.g. `algorithm=sgd_cr,init=smart_tanh,seed=3`."""
  return ",".join(f"{k}={v}" for k, v in label.items())


class EventLog:
  """One TensorBoard writer per run; `write` logs one step's scalars of every run.

  Args:
    directory: the folder holding one subfolder per run.
    names: the runs' folder names (`run_name`).
    purge_steps: per run, the step it resumed from (what an earlier, interrupted session
      logged past it is hidden), or None for a fresh start.
  """

  def __init__(
    self, directory: str | Path, names: Sequence[str], purge_steps: Sequence[int] | None = None
  ):
    from tensorboardX import SummaryWriter  # imported where used: only writers need it

    self.writers = []
    if jax.process_index() != 0:
      return
    # Files are named by the second they open in; a session resumed within the same
    # second must not overwrite the last one's file.
    suffix = f".{time.time_ns()}"
    for i, name in enumerate(names):
      # TensorBoard hides steps ≥ `purge_step`: the resumed-from step itself stays.
      purge = None if purge_steps is None or not purge_steps[i] else int(purge_steps[i]) + 1
      logdir = str(Path(directory) / name)
      self.writers.append(SummaryWriter(logdir, purge_step=purge, filename_suffix=suffix))

  @classmethod
  def for_runs(
    cls, directory: str | Path, labels: Iterable[Mapping[str, Any]], resumed_at: Sequence[int]
  ) -> EventLog:
    """The log of a trainer's runs: a folder per run, named by its labels (`run_name`),
    each resumed at its step in `resumed_at` (0: a fresh start)."""
    return cls(directory, [run_name(label) for label in labels], purge_steps=resumed_at)

  def write(self, steps: np.ndarray, scalars: Mapping[str, np.ndarray]) -> None:
    """Logs `scalars[tag][i]` at `steps[i]` for run i; non-finite values (frozen or
    padded runs, NaN metrics) are skipped."""
    for tag, values in scalars.items():
      for i, writer in enumerate(self.writers):
        v = float(values[i])
        if np.isfinite(v):
          writer.add_scalar(tag, v, int(steps[i]))

  def flush(self) -> None:
    for w in self.writers:
      w.flush()

  def close(self) -> None:
    for w in self.writers:
      w.close()


def read(directory: str | Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
  """Run folder → tag → `[(step, value), ...]` from every event file under `directory`, in
  file order, with what a resumed session purged dropped (as TensorBoard shows it)."""
  from tensorboardX.proto import event_pb2

  out: dict[str, dict[str, list[tuple[int, float]]]] = {}
  for file in sorted(Path(directory).rglob("events.out.tfevents.*")):
    series = out.setdefault(str(file.parent.relative_to(directory)), {})
    data, pos = file.read_bytes(), 0
    # TFRecord framing: length (u64), its CRC, the record, its CRC.
    while pos + 12 <= len(data):
      (length,) = struct.unpack("<Q", data[pos : pos + 8])
      record = data[pos + 12 : pos + 12 + length]
      pos += 12 + length + 4
      event = event_pb2.Event.FromString(record)
      if event.session_log.status == event_pb2.SessionLog.START and event.step:
        # A resumed session's purge, as TensorBoard reads it: drop steps ≥ it.
        for tag, points in series.items():
          series[tag] = [(s, v) for s, v in points if s < event.step]
      for value in event.summary.value:
        series.setdefault(value.tag, []).append((int(event.step), float(value.simple_value)))
  return out
