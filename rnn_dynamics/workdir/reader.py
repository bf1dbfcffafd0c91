"""A workdir as every reader sees it: notebooks, summaries, the analysis of a trained
model, `published.publish`.

`Reader.open(path)` (as `Workdir.open`) never writes: it reads the config that is there,
and raises a `UserError` naming the file when the folder is not a workdir or a file is
damaged. The pieces of a sweep still running read as absent: `groups()` lists finished
groups only, `table(..., default=[])` stands in for a table not written yet, and
`in_progress()` has the other groups' runs as of their last checkpoint. A file that a
published copy records as left out (`left_out()`, `publish --leave_out`) is refused as
such (`copies.LeftOutError`), not as missing or damaged. The writer (`Workdir`) is a
reader too, of what it writes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self

import numpy as np

from rnn_dynamics import results
from rnn_dynamics.errors import ConfigError, CorruptFileError
from rnn_dynamics.workdir import config as saved_config
from rnn_dynamics.workdir import copies
from rnn_dynamics.workdir import groups as groups_lib
from rnn_dynamics.workdir.groups import GroupFolder, GroupSpec
from rnn_dynamics.workdir.training import Training

__all__ = ["READ_REMEDY", "Reader"]

# A reader cannot recompute a file; the experiment that wrote the workdir can.
READ_REMEDY = "run the experiment that wrote this workdir on it again to recompute it"


class Reader:
  """One experiment's folder, read: its config, files, groups and run state."""

  path: Path
  config: dict[str, Any]
  read_only: bool

  def _bind(self, path: Path, config: dict[str, Any]) -> None:
    self.path, self.config = path, config
    self.training = Training(path)

  @classmethod
  def open(cls, path: str | os.PathLike, of: str = "") -> Self:
    """The workdir at `path`, read-only: nothing is written, the config is what is there.
    `of` names the experiment the caller expects (e.g. `"experiments.pathological"`),
    for the error messages.

    Raises:
      ConfigError: `path` is not a folder or holds no `config.json`.
      CorruptFileError: `config.json` is damaged.
    """
    self = cls.__new__(cls)
    self._bind(Path(path), {})
    self.read_only = True
    what = f"a workdir of {of}" if of else "a workdir"
    if not self.path.is_dir():
      raise ConfigError(f"{self.path} is not {what}: no such folder")
    file = self.path / saved_config.FILE
    if not file.is_file():
      raise ConfigError(
        f"{self.path} is not {what} (no config.json): pass a folder an experiment wrote"
      )
    self.config = results.read_json(file, READ_REMEDY)
    if not isinstance(self.config, dict):
      raise CorruptFileError(file, "not a JSON object", READ_REMEDY)
    return self

  # --- files -----------------------------------------------------------------------------

  def exists(self, name: str) -> bool:
    """Whether the workdir holds the file `name` (a path relative to it)."""
    return (self.path / name).is_file()

  def read_json(self, name: str) -> Any:
    """The JSON file `name` (relative to the workdir).

    Raises:
      UserError: the file is missing (`ConfigError`; `copies.LeftOutError` where this
        published copy was made without it) or damaged (`CorruptFileError`).
    """
    return results.read_json(self._file(name), READ_REMEDY)

  def read_text(self, name: str) -> str:
    return self._file(name).read_text(encoding="utf-8")

  def read_npz(self, name: str) -> dict[str, np.ndarray]:
    """The arrays of the `.npz` file `name` (relative to the workdir), loaded whole."""
    return results.read_npz(self._file(name), READ_REMEDY)

  def table(self, stem: str = "results", default: list | None = None) -> list[dict[str, Any]]:
    """The rows of `<stem>.json` (`write_table`'s output); `default` if it is missing and
    a default is given (a sweep that has not written it yet)."""
    if default is not None and not self.exists(f"{stem}.json"):
      return default
    rows = self.read_json(f"{stem}.json")
    if not isinstance(rows, list):
      raise CorruptFileError(self.path / f"{stem}.json", "not a list of rows", READ_REMEDY)
    return rows

  def left_out(self) -> list[str]:
    """Glob patterns (relative to the workdir) of the files this published copy was made
    without (`publish --leave_out`); [] for a workdir or a copy that lacks nothing."""
    return copies.left_out(self.path)

  def _file(self, name: str) -> Path:
    file = self.path / name
    if not file.is_file():
      copies.refuse_left_out(self.path, file)
      raise ConfigError(f"{self.path} has no {name}: not written by this experiment (yet)")
    return file

  # --- groups (`groups.GroupFolder`) -----------------------------------------------------

  def _group(self, group: str) -> GroupFolder:
    return GroupFolder(self.path, group)

  def groups(self) -> list[str]:
    """Names of the finished groups, sorted (a group being written is not listed)."""
    return groups_lib.finished(self.path)

  def is_done(self, group: str) -> bool:
    return self._group(group).is_done()

  def group_path(self, group: str) -> Path:
    """The folder of a finished group (for files an experiment adds beside its results)."""
    return self._group(group).path

  def group_spec(self, group: str) -> GroupSpec | None:
    """What `group` runs (finished or still training), or None for a group written
    before group files existed (its config's values apply)."""
    return self._group(group).spec()

  def spec(self, group: str) -> GroupSpec:
    """What `group` runs, for readers: its `group.json`, or for a group written before
    group files existed (or not started) the config's values, with the runs of its rows
    (what older code recorded; wrong where that code ran a group otherwise, as Figure 7's
    lengths and baseline budgets)."""
    saved = self.group_spec(group)
    if saved is not None:
      return saved
    rows = self.load_rows(group) if self.is_done(group) else self.in_progress().get(group, [])
    return GroupSpec.of(self.config, self.config, rows)

  def group_specs(self) -> dict[str, GroupSpec]:
    """Group → its spec, for every group that recorded one (finished or training)."""
    return {g: self.group_spec(g) for g in groups_lib.recorded(self.path)}

  def load_rows(self, group: str) -> list[dict[str, Any]]:
    """Result rows of a finished group.

    Raises:
      CorruptFileError: its results file is damaged; the message says how to recover.
    """
    return self._group(group).rows()

  def load_traces(self, group: str) -> dict[str, np.ndarray]:
    """Per-chunk traces of a finished group, `[runs, chunks]` per field."""
    return self._group(group).traces()

  def load_params(self, group: str) -> dict[str, np.ndarray]:
    """Final parameters of a finished group, `[runs, ...]` per `rnn.Params` field.

    Raises:
      LeftOutError: this published copy was made without them (`publish --leave_out`).
      CorruptFileError: the file is missing or damaged.
    """
    return self._group(group).params()

  def load_group(self, group: str) -> dict[str, Any]:
    """A finished group's `rows` (one per run) and `traces` (`[runs, chunks]` per field)."""
    return dict(rows=self.load_rows(group), traces=self.load_traces(group))

  # --- groups still training (`training.Training`) ---------------------------------------

  def in_progress(self) -> dict[str, list[dict[str, Any]]]:
    """Group → its runs as of the last checkpoint, for every group still training
    (`sweep.run_in_workdir`; a finished group is in `groups()` instead)."""
    t = self.training
    return {g: results.read_results(t.progress_stem(g), READ_REMEDY) for g in t.groups()}

  def checkpoint_dir(self, group: str) -> Path:
    return self.training.checkpoint_dir(group)

  def events_dir(self, group: str) -> Path:
    """Where the host loop writes the group's TensorBoard event files (`runs.events`)."""
    return self.training.events_dir(group)
