"""Which workdirs a notebook opens: one naming scheme for every notebook.

`notebooks/<name>.py` reads the environment variable `RNN_DYNAMICS_<NAME>` (upper case,
e.g. `RNN_DYNAMICS_SUCCESS_RATE`, `RNN_DYNAMICS_THRESHOLD_GRID`): one workdir, or a
comma-separated list of workdirs and glob patterns where the notebook shows several.
Without it, a notebook opens its defaults: the user's own run under `runs/` when there is
one, else the results committed under `docs/results/`, so every notebook opens in a fresh
clone with nothing set.

Relative paths are tried from the working directory, then from its parent: Jupyter
starts kernels in `notebooks/`, and the paths are the repository root's.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

__all__ = ["locate", "locate_all", "named_workdirs", "variable"]


def variable(notebook: str) -> str:
  """The environment variable that names `notebook`'s workdirs: `RNN_DYNAMICS_<NAME>`."""
  return "RNN_DYNAMICS_" + notebook.upper()


def _matches(pattern: str) -> list[Path]:
  """The paths `pattern` names, from here or from the parent folder, sorted."""
  pattern = pattern.strip()
  for base in ("", ".."):
    if os.path.isabs(pattern) and base:
      break
    hits = sorted(glob.glob(os.path.join(base, pattern)))
    if hits:
      return [Path(h) for h in hits]
  return []


def named_workdirs(notebook: str) -> list[Path] | None:
  """The workdirs `RNN_DYNAMICS_<NAME>` names (a glob pattern: the workdirs it finds; a
  path that does not exist is kept as given, so that opening it says what is missing),
  or None when the variable is unset or empty."""
  value = os.environ.get(variable(notebook), "")
  patterns = [p.strip() for p in value.split(",") if p.strip()]
  if not patterns:
    return None
  paths = []
  for p in patterns:
    if glob.has_magic(p):  # a pattern stands for the workdirs it finds
      paths += [hit for hit in _matches(p) if _is_workdir(hit)]
    else:
      paths += _matches(p)[:1] or [Path(p)]
  return paths


def _is_workdir(path: Path) -> bool:
  return (path / "config.json").is_file()


def locate_all(notebook: str, *defaults: str) -> list[Path]:
  """The workdirs `notebook` shows: those its variable names, else every workdir (a
  folder with a `config.json`) that the first matching pattern of `defaults` finds —
  so a user's own runs replace the published ones rather than mix with them."""
  given = named_workdirs(notebook)
  if given is not None:
    return given
  for pattern in defaults:
    found = [p for p in _matches(pattern) if _is_workdir(p)]
    if found:
      return found
  return []


def locate(notebook: str, *defaults: str) -> Path:
  """The one workdir `notebook` opens: the first its variable names, else the first of
  `defaults` that exists, else the first default (so that opening it says what is
  missing)."""
  given = named_workdirs(notebook)
  if given:
    return given[0]
  for path in defaults:
    if hits := _matches(path):
      return hits[0]
  return Path(defaults[0])
