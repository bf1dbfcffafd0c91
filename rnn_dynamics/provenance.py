"""Which code produced a workdir: the commit, and the program layout its bits depend on.

Every process that writes a workdir appends one entry to `<workdir>/provenance.json`
(`record`): the git commit of the code it ran (and whether that checkout had uncommitted
changes), when it started, the JAX version, the backend and the device and process
counts. A run that resumes many times, on several machines and perhaps with several
versions of the code, so keeps one entry per segment; a published folder carries the
list, and `summary` says in one line which commits ran it.

The device count is recorded because a run's float32 trajectory may move at round-off
with the size of the compiled program (`rnn_dynamics.synthetic.sweep`), and because a checkpoint's
runs axis is padded to a multiple of it: a resume must use the same count to continue
bit for bit (`check_layout`).
"""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path
from typing import Any

import jax

from rnn_dynamics import results
from rnn_dynamics.errors import ConfigError

__all__ = ["FILE", "check_layout", "code_version", "entries", "layout", "record", "summary"]

FILE = "provenance.json"

# The repository root of this checkout (rnn_dynamics/ sits directly under it).
_ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
  try:
    out = subprocess.run(
      ["git", "-C", str(_ROOT), *args], capture_output=True, text=True, timeout=10, check=True
    )
  except (OSError, subprocess.SubprocessError):
    return None
  return out.stdout.strip()


def code_version() -> dict[str, Any]:
  """`commit` (full hash, None outside a git checkout) and `dirty` (tracked files changed
  since that commit; None when unknown)."""
  commit = _git("rev-parse", "HEAD")
  if not commit:
    return dict(commit=None, dirty=None)
  status = _git("status", "--porcelain", "--untracked-files=no")
  return dict(commit=commit, dirty=None if status is None else bool(status))


def layout() -> dict[str, Any]:
  """The program layout a run's bits depend on: backend, devices and processes."""
  return dict(
    backend=jax.default_backend(),
    devices=jax.device_count(),
    processes=jax.process_count(),
  )


def entries(path: str | Path) -> list[dict[str, Any]]:
  """The entries recorded in the workdir (or published folder) at `path`, oldest first."""
  file = Path(path) / FILE
  if not file.is_file():
    return []
  got = results.read_json(file, "delete it: it only records which code ran the workdir")
  return got if isinstance(got, list) else []


def record(path: str | Path, **extra: Any) -> dict[str, Any]:
  """Appends this process's entry (`code_version`, `layout`, start time, `extra`) to the
  workdir at `path`; returns it."""
  entry = dict(
    **code_version(),
    started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    jax=jax.__version__,
    **layout(),
    **extra,
  )
  results.write_json(Path(path) / FILE, [*entries(path), entry])
  return entry


def check_layout(path: str | Path) -> None:
  """Refuses to resume the workdir at `path` on a program layout other than the one its
  latest entry records (its checkpoints hold runs padded for that many devices).

  Raises:
    ConfigError: the device or process count differs; the message says how to match it.
  """
  before = next((e for e in reversed(entries(path)) if "devices" in e), None)
  if before is None:
    return
  now = layout()
  if (before["devices"], before.get("processes", 1)) != (now["devices"], now["processes"]):
    raise ConfigError(
      f"{path} was run on {before['devices']} device(s) in {before.get('processes', 1)} "
      f"process(es), this process has {now['devices']} in {now['processes']}: resume it "
      f"with the same layout (on CPU: XLA_FLAGS=--xla_force_host_platform_device_count="
      f"{before['devices']}), or use a new --workdir"
    )


def summary(path: str | Path) -> str:
  """One line: the commits that ran the workdir at `path`, in order, e.g.
  "4f8f117 (2026-12-05) → 9a1b2c3+dirty (2026-12-06)"; "not recorded" when none were."""
  parts = []
  for e in entries(path):
    commit = (e.get("commit") or "unknown")[:7] + ("+dirty" if e.get("dirty") else "")
    part = f"{commit} ({str(e.get('started', '?'))[:10]})"
    if not parts or parts[-1] != part:
      parts.append(part)
  return " → ".join(parts) or "not recorded"
