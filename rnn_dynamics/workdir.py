"""An experiment's workdir: resolved config, finished groups, checkpoints, tables, figures.

Layout (every file written atomically):

    <workdir>/config.json                    the resolved config (checked on resume)
    <workdir>/checkpoints/<group>/           Orbax checkpoints of groups in progress
    <workdir>/groups/<group>/results.json    one row per run; its presence marks the group done
    <workdir>/groups/<group>/traces.npz      per-chunk metrics, `[runs, chunks]` each
    <workdir>/groups/<group>/params.npz      final parameters, `[runs, ...]` each
    <workdir>/groups/<group>/...             anything else an experiment keeps per group
    <workdir>/results.{csv,json}             all finished rows, rewritten after each group

A finished group is never recomputed; a group in progress resumes from its checkpoint.
Deleting a group's folder makes the next run recompute that group (and only it).
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any, Iterable

import ml_collections
import numpy as np

from rnn_dynamics import results
from rnn_dynamics.errors import ConfigError, CorruptFileError
from rnn_dynamics.sweep import GroupResult

__all__ = ["Workdir", "WorkdirConfigMismatch", "make_folder"]

# Fields that may change between a run and its resumption without changing results.
_VOLATILE = {"checkpoint_every_s", "progress_every_s"}


class WorkdirConfigMismatch(ConfigError):
  """The workdir was made by a different config: resuming would mix two experiments."""


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


class Workdir:
  """Owns one experiment's folder."""

  def __init__(self, path: str | Path, config: ml_collections.ConfigDict):
    """Opens or creates the workdir; call it only with a validated config, since it
    records the config in `config.json` and a later run is compared against that."""
    self.path = make_folder(path)
    resolved = json.loads(config.to_json())
    saved_file = self.path / "config.json"
    if saved_file.exists():
      saved = results.read_json(
        saved_file,
        "restore it, or use a new --workdir (deleting it lets a different config resume "
        "this workdir's finished groups)",
      )
      changed = sorted(
        k
        for k in set(saved) | set(resolved)
        if k not in _VOLATILE and saved.get(k) != resolved.get(k)
      )
      if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {resolved.get(k)!r}" for k in changed)
        raise WorkdirConfigMismatch(
          f"{self.path} holds results of a different config ({diffs}). Use a new --workdir, "
          "or repeat the original flags to resume it."
        )
    results.write_json(saved_file, resolved)

  def checkpoint_dir(self, group: str) -> Path:
    return self.path / "checkpoints" / group

  def _group(self, group: str) -> Path:
    return self.path / "groups" / group

  def group_path(self, group: str) -> Path:
    """The folder of a finished group (for files an experiment adds beside its results)."""
    return self._group(group)

  def is_done(self, group: str) -> bool:
    return (self._group(group) / "results.json").exists()

  def _remedy(self, group: str) -> str:
    return f"delete {self._group(group)} and run again to recompute group {group}"

  def load_rows(self, group: str) -> list[dict[str, Any]]:
    """Result rows of a finished group.

    Raises:
      CorruptFileError: its results file is damaged; the message says how to recover.
    """
    return results.read_results(self._group(group) / "results", self._remedy(group))

  def _load_npz(self, group: str, name: str) -> dict[str, np.ndarray]:
    file = self._group(group) / name
    try:
      with np.load(file) as z:
        return dict(z)
    except (zipfile.BadZipFile, EOFError, ValueError) as e:
      raise CorruptFileError(file, f"{type(e).__name__}: {e}", self._remedy(group)) from e

  def load_traces(self, group: str) -> dict[str, np.ndarray]:
    """Per-chunk traces of a finished group, `[runs, chunks]` per field."""
    return self._load_npz(group, "traces.npz")

  def load_params(self, group: str) -> dict[str, np.ndarray]:
    """Final parameters of a finished group, `[runs, ...]` per `rnn.Params` field."""
    return self._load_npz(group, "params.npz")

  def save_group(self, group: str, result: GroupResult, extra: dict[str, Any] | None = None):
    """Stores a finished group; the results file goes last, so it marks completeness."""
    folder = self._group(group)
    results.write_npz(folder / "traces.npz", result.traces)
    n = len(result.rows)
    params = {k: np.asarray(v)[:n] for k, v in vars(result.state.params).items()}
    results.write_npz(folder / "params.npz", params)
    rows = [dict(r, **(extra or {})) for r in result.rows]
    results.write_results(folder / "results", rows)
    shutil.rmtree(self.checkpoint_dir(group), ignore_errors=True)

  def write_table(self, rows: Iterable[dict[str, Any]], stem: str = "results") -> None:
    results.write_results(self.path / stem, list(rows))
