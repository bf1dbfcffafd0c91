"""The one writer of every file an experiment leaves (tables, arrays, JSON, figures).

Written atomically (temp file + `os.replace`): a reader (a notebook, a second process, a
resumed run) never sees a half-written file. With several JAX processes only process 0
writes. `to_jsonable` is the one conversion of NumPy/JAX values to JSON (NaN/Inf → null).
Figures go through `rnn_dynamics.report.style.save_figure`, which writes with these.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import jax
import numpy as np

from rnn_dynamics.errors import CorruptFileError

__all__ = [
  "atomic_write_bytes",
  "atomic_write_text",
  "flat_arrays",
  "read_json",
  "read_npz",
  "read_results",
  "to_jsonable",
  "write_json",
  "write_npz",
  "write_results",
]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
  """Writes `data` to `path` so that the file is either the old or the new one, whole.

  With several JAX processes (hosts) only process 0 writes: every process holds the same
  gathered results, and one writer keeps a shared file system free of races.
  """
  if jax.process_index() != 0:
    return
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # mkstemp makes it private; results are meant to be shared.
    os.replace(tmp, path)
  except BaseException:
    Path(tmp).unlink(missing_ok=True)
    raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
  atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(x: Any) -> Any:
  """Numpy/JAX scalars and arrays to plain JSON values (NaN/Inf become None, since JSON
  has neither); mappings and sequences are converted element by element."""
  if isinstance(x, Mapping):
    return {str(k): to_jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [to_jsonable(v) for v in x]
  if hasattr(x, "tolist"):
    return to_jsonable(x.tolist())
  if isinstance(x, float) and not math.isfinite(x):
    return None
  return x


def write_json(path: str | os.PathLike, obj: Any, sort_keys: bool = False) -> None:
  """`obj` as indented JSON (`to_jsonable` first); `sort_keys` orders every object's keys."""
  atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=sort_keys) + "\n")


def write_npz(
  path: str | os.PathLike, arrays: Mapping[str, np.ndarray], compressed: bool = True
) -> None:
  """`arrays` as an `.npz` (`np.savez_compressed`, or `np.savez` with `compressed=False`)."""
  buf = io.BytesIO()
  save = np.savez_compressed if compressed else np.savez
  save(buf, **{k: np.asarray(v) for k, v in arrays.items()})
  atomic_write_bytes(path, buf.getvalue())


def write_results(stem: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
  """The results table as `<stem>.csv` and `<stem>.json` (one row per run)."""
  rows = [dict(to_jsonable(r)) for r in rows]
  columns: list[str] = []
  for r in rows:
    columns += [k for k in r if k not in columns]
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  atomic_write_text(f"{stem}.csv", buf.getvalue())
  write_json(f"{stem}.json", rows)


def read_json(path: str | os.PathLike, remedy: str | None = None) -> Any:
  """Reads back a JSON file this package wrote.

  Args:
    path: the file.
    remedy: what the user can do if the file is damaged (a truncated copy, an edit gone
      wrong); the default suits files that are recomputed when missing.

  Raises:
    CorruptFileError: the file is not valid JSON; the message names it and the remedy.
  """
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise CorruptFileError(
      path, f"not valid JSON: {e}", remedy or "delete it and run again to recompute it"
    ) from e


def read_npz(path: str | os.PathLike, remedy: str) -> dict[str, np.ndarray]:
  """Reads back an `.npz` (every array, loaded).

  Raises:
    CorruptFileError: the file is missing or damaged; the message names it and `remedy`.
  """
  try:
    with np.load(path) as z:
      return dict(z)
  except FileNotFoundError as e:
    raise CorruptFileError(path, "missing", remedy) from e
  except (zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
    raise CorruptFileError(path, f"{type(e).__name__}: {e}", remedy) from e


def read_results(stem: str | os.PathLike, remedy: str | None = None) -> list[dict[str, Any]]:
  """Reads back what `write_results` wrote (from the JSON, which keeps types).

  Raises:
    CorruptFileError: `<stem>.json` is damaged (see `read_json`).
  """
  return read_json(f"{stem}.json", remedy)


def flat_arrays(tree: Any) -> dict[str, np.ndarray]:
  """A pytree's leaves by path, `"a/b"` for nested keys or fields (what `params.npz`
  holds): the paper's RNN gives `w_in`, `w_hh`, …, a cell `cell/w_hh`, `w_out`, …"""

  def name(entry) -> str:
    for attr in ("name", "key", "idx"):
      if hasattr(entry, attr):
        return str(getattr(entry, attr))
    return str(entry)

  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {"/".join(name(e) for e in path): np.asarray(leaf) for path, leaf in leaves}
