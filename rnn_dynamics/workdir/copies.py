"""What a published copy records about itself (`published.publish`), for its readers.

`partial.json`, in a partial copy only: how far its groups got (`partial_status`).
`left_out.json`, in every copy published with `leave_out` (partial or not): the glob
patterns, relative to the copy, of the files it was made without. It stays when the copy
resumes as a workdir (`partial.json` does not) and goes along when that is published
again. Copies published before it existed list the patterns only in `partial.json`
(`"left_out"`), which is read as a record too. A reader that misses a file the record
names raises `LeftOutError` instead of calling the copy damaged.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rnn_dynamics import results
from rnn_dynamics.errors import ConfigError, CorruptFileError

__all__ = [
  "LEFT_OUT_FILE",
  "PARTIAL_FILE",
  "LeftOutError",
  "left_out",
  "matching",
  "refuse_left_out",
]

# A partial copy's record of how far its groups got.
PARTIAL_FILE = "partial.json"
# A copy's record of the files it was published without.
LEFT_OUT_FILE = "left_out.json"

# A reader cannot rewrite a record; publishing the workdir again does.
_REMEDY = "publish the workdir again to rewrite it"


class LeftOutError(ConfigError):
  """A file asked of a published copy that was made without it (`publish --leave_out`).

  Attributes:
    path: the file.
    pattern: the recorded pattern that left it out.
  """

  def __init__(self, path: Path, pattern: str):
    super().__init__(
      f"{path} was left out by publish (--leave_out='{pattern}'), not damaged: open the "
      "original workdir, or publish it again without that --leave_out"
    )
    self.path, self.pattern = path, pattern


def matching(relative: str | Path, patterns: Iterable[str]) -> str | None:
  """The first of the glob `patterns` that the path `relative` (to the workdir) matches,
  as `publish` matches them (`Path.match`), or None."""
  return next((p for p in patterns if Path(relative).match(p)), None)


def left_out(root: Path) -> list[str]:
  """The patterns of the files the copy at `root` was published without, as its
  `left_out.json` and its `partial.json` list them; [] for a workdir.

  Raises:
    CorruptFileError: a record is damaged.
  """
  patterns: list[str] = []
  for name in (LEFT_OUT_FILE, PARTIAL_FILE):
    file = root / name
    if not file.is_file():
      continue
    note = results.read_json(file, _REMEDY)
    listed = note.get("left_out", []) if isinstance(note, dict) else None
    if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
      raise CorruptFileError(file, "its left_out is not a list of patterns", _REMEDY)
    patterns += listed
  return list(dict.fromkeys(patterns))


def refuse_left_out(root: Path, file: Path) -> None:
  """Raises `LeftOutError` if the missing `file` (under `root`) is one the copy at `root`
  records as left out; returns otherwise.

  Raises:
    LeftOutError: as above.
  """
  pattern = matching(file.relative_to(root), left_out(root))
  if pattern is not None:
    raise LeftOutError(file, pattern)
