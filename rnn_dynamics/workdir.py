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
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Iterable

import ml_collections
import numpy as np

from rnn_dynamics import results
from rnn_dynamics.sweep import GroupResult

__all__ = ["Workdir", "WorkdirConfigMismatch"]

# Fields that may change between a run and its resumption without changing results.
_VOLATILE = {"checkpoint_every_s", "progress_every_s"}


class WorkdirConfigMismatch(ValueError):
  """The workdir was made by a different config: resuming would mix two experiments."""


class Workdir:
  """Owns one experiment's folder."""

  def __init__(self, path: str | Path, config: ml_collections.ConfigDict):
    if not str(path):
      raise ValueError("--workdir is required: the folder where results and checkpoints go")
    self.path = Path(path)
    self.path.mkdir(parents=True, exist_ok=True)
    resolved = json.loads(config.to_json())
    saved_file = self.path / "config.json"
    if saved_file.exists():
      saved = json.loads(saved_file.read_text())
      changed = sorted(
        k for k in set(saved) | set(resolved)
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

  def load_rows(self, group: str) -> list[dict[str, Any]]:
    return results.read_results(self._group(group) / "results")

  def load_traces(self, group: str) -> dict[str, np.ndarray]:
    with np.load(self._group(group) / "traces.npz") as z:
      return dict(z)

  def load_params(self, group: str) -> dict[str, np.ndarray]:
    """Final parameters of a finished group, `[runs, ...]` per `rnn.Params` field."""
    with np.load(self._group(group) / "params.npz") as z:
      return dict(z)

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
