"""A workdir as its one writer sees it: `Workdir(path, config)`, an experiment's binary.

The writer records the config (`config.check`: a different one is refused), makes its
process the workdir's only writer (`lock`), and writes every file atomically: a group's
spec, progress rows and results (`Workdir.group`, `write_progress`, `save_group`), tables
(`write_table`) and whatever else the experiment keeps (`output`). Which code wrote the
workdir (`provenance.json`) is recorded at its first write of results or run state, so a
run refused on a damaged file leaves the workdir as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import ml_collections
from absl import logging

from rnn_dynamics import provenance, results
from rnn_dynamics.errors import ConfigError, UserError
from rnn_dynamics.workdir import config as saved_config
from rnn_dynamics.workdir import lock
from rnn_dynamics.workdir.groups import Group, GroupSpec
from rnn_dynamics.workdir.published import PARTIAL_FILE
from rnn_dynamics.workdir.reader import Reader

if TYPE_CHECKING:  # a reader needs no sweep machinery (nor JAX devices) to open a workdir
  from rnn_dynamics.runs.outcome import GroupResult

__all__ = ["ReadOnlyWorkdirError", "Workdir", "make_folder"]


class ReadOnlyWorkdirError(UserError):
  """A write was asked of a workdir opened with `Workdir.open` (a bug in the caller)."""


def make_folder(path: str | os.PathLike) -> Path:
  """Creates the folder `path` (and its parents) unless it exists; returns it.

  Raises:
    ConfigError: `path` is empty, is a file, or cannot be created (the OS's reason).
  """
  if not str(path):
    raise ConfigError("--workdir is required: the folder where results and checkpoints go")
  path = Path(path)
  if path.exists() and not path.is_dir():
    raise ConfigError(f"--workdir={path} is a file, not a folder; pass a folder's path")
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise ConfigError(f"--workdir={path}: cannot create the folder ({e.strerror})") from e
  return path


class Workdir(Reader):
  """Owns one experiment's folder (or, from `Workdir.open`, reads one: `Reader`)."""

  def __init__(self, path: str | Path, config: ml_collections.ConfigDict):
    """Opens or creates the workdir; call it only with a validated config, since it
    records the config in `config.json` and a later run is compared against that."""
    folder = make_folder(path)
    lock.hold(folder)
    self.read_only = False
    resolved = json.loads(config.to_json())
    self._bind(folder, resolved)
    saved_config.check(folder, resolved)
    if self.training.has_checkpoints():
      provenance.check_layout(folder)  # the checkpoints' runs are padded for it
    results.write_json(folder / saved_config.FILE, resolved)
    self._unrecorded = True

  def close(self) -> None:
    """Lets another process write to this workdir (the lock is otherwise held until this
    process exits); this object must not write after it."""
    if not self.read_only:
      lock.release(self.path)
      self.read_only = True

  def _writable(self) -> None:
    if self.read_only:
      raise ReadOnlyWorkdirError(f"{self.path} was opened read-only (Workdir.open)")
    if self._unrecorded:
      self._unrecorded = False
      provenance.record(self.path)
      # A partial copy's note (how far it got when published) is stale once it resumes.
      (self.path / PARTIAL_FILE).unlink(missing_ok=True)

  def group(
    self,
    name: str,
    spec: GroupSpec,
    train: Callable[[], GroupResult],
    former_labels: Mapping[str, Any] | None = None,
  ) -> Group:
    """The group `name` as `spec` describes it: loaded if it is finished, else trained by
    `train()` (which resumes from the group's checkpoint and saves the group).

    The spec goes to `groups/<name>/group.json` before anything else, so a group still
    training says what it runs; a group without one (written by older code) gets it now,
    as does one still training whose saved spec lacks labels added since (`former_labels`:
    label → the value that labels what ran before; a finished group keeps the spec its
    rows were written with).

    Raises:
      GroupSpecMismatch: the group's saved spec differs from `spec` (the workdir's
        config is the same, so the code that derives groups from it changed).
    """
    if self.read_only:
      raise ReadOnlyWorkdirError(f"{self.path} was opened read-only (Workdir.open)")
    folder = self._group(name)
    saved = folder.refuse_another(spec, self.checkpoint_dir(name), former_labels)
    # A finished group is read first: a damaged file is refused with nothing written.
    loaded = Group(spec, folder.rows(), folder.traces()) if folder.is_done() else None
    self._writable()
    if saved is None or (saved != spec and loaded is None):
      folder.write_spec(spec)
    if loaded is not None:
      logging.info("%s: already finished, loaded from %s", name, self.path)
      return loaded
    result = train()
    return Group(spec, result.rows, result.traces)

  def save_group(self, group: str, result: GroupResult, extra: dict[str, Any] | None = None):
    """Stores a finished group (`extra` added to every row) and drops its run state; the
    results file goes last, so it marks completeness."""
    self._writable()
    self._group(group).save(result, extra)
    self.training.clear(group)

  def write_progress(self, group: str, rows: Iterable[dict[str, Any]]) -> None:
    """The rows of a group still training, as of its last checkpoint (`in_progress`)."""
    self._writable()
    self.training.write_progress(group, rows)

  def write_table(self, rows: Iterable[dict[str, Any]], stem: str = "results") -> None:
    self._writable()
    results.write_results(self.path / stem, list(rows))

  def output(self, name: str) -> Path:
    """The path of `name` in the workdir, for a file the caller writes itself (through
    `rnn_dynamics.results` or `report.style.save_figure`: an analysis's arrays, summary
    and figure); like every write, the first records this process in `provenance.json`."""
    self._writable()
    return self.path / name
