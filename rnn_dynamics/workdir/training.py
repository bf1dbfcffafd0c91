"""A workdir's groups still training: their checkpoints, progress rows and event files.

    <workdir>/checkpoints/<group>/    Orbax checkpoints (`runs.checkpoint`), to resume from
    <workdir>/progress/<group>.json   the group's runs as of the last checkpoint (and .csv)
    <workdir>/events/<group>/<run>/   TensorBoard event files (`runs.events`), for watching

All of it is run state, not results: a finished group's checkpoint and progress rows are
removed once its results are saved (`clear`; the event files stay for TensorBoard), and
a published copy leaves it out unless it is a partial one, made to resume elsewhere.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterable

from rnn_dynamics import results

__all__ = ["CHECKPOINTS", "EVENTS", "PROGRESS", "Training"]

CHECKPOINTS, PROGRESS, EVENTS = "checkpoints", "progress", "events"


class Training:
  """The run state of the groups still training in the workdir at `root`."""

  def __init__(self, root: Path):
    self.root = root

  def checkpoint_dir(self, group: str) -> Path:
    return self.root / CHECKPOINTS / group

  def events_dir(self, group: str) -> Path:
    """Where the host loop writes the group's TensorBoard event files (`runs.events`)."""
    return self.root / EVENTS / group

  def progress_stem(self, group: str) -> Path:
    """The stem of a group's progress files (`.json`, `.csv`)."""
    return self.root / PROGRESS / group

  def groups(self) -> list[str]:
    """The groups that wrote progress rows (at a checkpoint), sorted."""
    folder = self.root / PROGRESS
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []

  def has_checkpoints(self) -> bool:
    """Whether some group holds run state (a checkpoint) to resume from."""
    return any((self.root / CHECKPOINTS).glob("*"))

  def write_progress(self, group: str, rows: Iterable[dict[str, Any]]) -> None:
    results.write_results(self.progress_stem(group), list(rows))

  def clear(self, group: str) -> None:
    """Removes a finished group's checkpoint and progress rows, and the folders that
    held them once nothing is in progress any more."""
    shutil.rmtree(self.checkpoint_dir(group), ignore_errors=True)
    for suffix in (".json", ".csv"):
      Path(f"{self.progress_stem(group)}{suffix}").unlink(missing_ok=True)
    for folder in (self.root / PROGRESS, self.root / CHECKPOINTS):
      if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
