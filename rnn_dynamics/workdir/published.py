"""A workdir's published copy (e.g. under `docs/results/`), which every reader opens as it
opens the workdir: `publish(workdir, dest)`.

A finished workdir is copied without run state. A partial copy, made of a workdir whose
groups are still training, keeps what resuming them needs and nothing more: each group's
latest checkpoint (every run's parameters, optimizer state, RNG keys and counters, the
chunk index that places it in the length schedule, its traces so far) and progress rows,
beside `partial.json`, which says how far each group got and which commits ran it
(`partial_status`). Copied to a workdir, the copy resumes where it stopped, on another
machine too (BUILD.md, "Carrying a long run").

Every copy leaves out the writer's lock (meaningless on another machine), the TensorBoard
event files (for watching a run, not results) and SVG copies of the PNG figures (they are
regenerated from the results and would double the folder's size). Files left out on
request (`leave_out`, e.g. weights no reader needs) are listed in the copy's
`left_out.json` (`copies`), so that its readers name them as left out, not damaged.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from collections.abc import Sequence
from typing import Any

from rnn_dynamics import provenance, results
from rnn_dynamics.errors import ConfigError
from rnn_dynamics.workdir import copies, lock
from rnn_dynamics.workdir.copies import LEFT_OUT_FILE, PARTIAL_FILE
from rnn_dynamics.workdir.reader import Reader
from rnn_dynamics.workdir.training import CHECKPOINTS, EVENTS, PROGRESS

__all__ = ["LEFT_OUT_FILE", "PARTIAL_FILE", "partial_status", "publish"]

_RUN_STATE_FOLDERS = (CHECKPOINTS, PROGRESS)
_UNPUBLISHED_FOLDERS = (EVENTS,)
_UNPUBLISHED_FILES = (lock.FILE, "*.svg")


def publish(
  workdir: str | os.PathLike,
  dest: str | os.PathLike,
  *,
  overwrite: bool = False,
  partial: bool = False,
  leave_out: Sequence[str] = (),
) -> int:
  """Copies the result files of the workdir at `workdir` to `dest`; returns their bytes.

  With `partial`, a workdir whose groups are still training is copied with what resuming
  them needs, and `partial.json` (`partial_status`). `leave_out` are glob patterns of
  files, relative to the workdir (e.g. `groups/grid_*/params.npz`), that no reader of the
  copy needs and resuming it does not read. The copy lists them in `left_out.json` (and a
  partial copy in `partial.json` too), with those a copy being published again was made
  without (`copies.left_out`); a copy that lacks nothing has no `left_out.json`. The copy
  is written beside `dest` and renamed into place, so an interrupted publish leaves `dest`
  as it was.

  Raises:
    ConfigError: `workdir` is not a workdir, a run is still writing it, a group is still
      training and `partial` is False, or `dest` exists and `overwrite` is False.
  """
  source = Reader.open(workdir)
  path, dest = source.path, Path(dest)
  writer = lock.current_writer(path)
  if writer:
    raise ConfigError(
      f"{path} is still being written by a run ({writer}): stop it (Ctrl-C or kill; "
      "it checkpoints first) or let it finish, then publish"
    )
  training = source.training.groups()
  if not partial and (training or source.training.has_checkpoints()):
    listed = ", ".join(training) or "see checkpoints/"
    raise ConfigError(
      f"{path} has groups still training ({listed}): finish them (run the same "
      "command again) before publishing, or pass --partial to publish a state that "
      "resumes elsewhere"
    )
  if dest.exists() and not overwrite:
    raise ConfigError(f"{dest} exists: pass --overwrite to replace it, or another --out")
  staging = dest.with_name(f".{dest.name}.publishing")
  shutil.rmtree(staging, ignore_errors=True)
  # A copy of a copy lacks what that copy lacked too: its record goes along.
  recorded = list(dict.fromkeys([*copies.left_out(path), *leave_out]))
  # An interrupted Orbax save leaves a temporary folder that no resume reads; the
  # records are written afresh below.
  files = shutil.ignore_patterns(
    *_UNPUBLISHED_FILES, PARTIAL_FILE, LEFT_OUT_FILE, "*.orbax-checkpoint-tmp*"
  )
  folders_out = set(_UNPUBLISHED_FOLDERS) | (set() if partial else set(_RUN_STATE_FOLDERS))

  def left_out(folder: str, names: list[str]) -> set[str]:
    top = set(names) & folders_out if Path(folder) == path else set()
    relative = Path(folder).relative_to(path)
    asked = {n for n in names if copies.matching(relative / n, leave_out)}
    return set(files(folder, names)) | top | asked

  shutil.copytree(path, staging, ignore=left_out)
  # Orbax's commit markers name the folder they were written to; only their presence
  # matters, and a published copy names no machine's paths.
  for marker in staging.glob(f"{CHECKPOINTS}/**/commit_success.txt"):
    text = marker.read_text(errors="replace").replace(str(path.absolute()), "<workdir>")
    marker.write_text(text)
  if recorded:
    results.write_json(staging / LEFT_OUT_FILE, dict(left_out=recorded))
  if partial and training:
    # The note lists them too, as before `left_out.json` existed: one list, one writer.
    results.write_json(staging / PARTIAL_FILE, partial_status(source, recorded))
  if dest.exists():
    shutil.rmtree(dest)
  staging.rename(dest)
  return sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())


def partial_status(source: Reader, left_out: Sequence[str] = ()) -> dict[str, Any]:
  """How far the groups still training in `source` got, as a partial copy records it: per
  group its runs, how many are solved or diverged, the updates done (least and most over
  its runs), the budget (its spec's, else the config's) and the best screen error; the
  finished groups, the commits that ran the workdir, and the files `left_out` of the copy."""
  specs = source.group_specs()
  groups = {}
  for group, rows in source.in_progress().items():
    done = [int(r["updates_done"]) for r in rows]
    screens = [r["best_screen_error"] for r in rows if r.get("best_screen_error") is not None]
    groups[group] = dict(
      runs=len(rows),
      solved=sum(bool(r["solved"]) for r in rows),
      diverged=sum(bool(r["diverged"]) for r in rows),
      updates_done=[min(done, default=0), max(done, default=0)],
      budget=specs[group].max_updates if group in specs else source.config.get("max_updates"),
      best_screen_error=min(screens, default=None),
    )
  return dict(
    status="in progress",
    published=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    finished_groups=source.groups(),
    groups=groups,
    code=provenance.summary(source.path),
    left_out=list(left_out),
  )
