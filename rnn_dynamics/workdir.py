"""An experiment's workdir: resolved config, finished groups, checkpoints, tables, figures.

Layout (every file written atomically):

    <workdir>/config.json                    the resolved config (checked on resume)
    <workdir>/checkpoints/<group>/           Orbax checkpoints of groups in progress
    <workdir>/progress/<group>.json          their runs as of the last checkpoint
    <workdir>/events/<group>/<run>/          TensorBoard event files (live; never published)
    <workdir>/groups/<group>/group.json      what the group runs (`GroupSpec`), from its start
    <workdir>/groups/<group>/results.json    one row per run; its presence marks the group done
    <workdir>/groups/<group>/traces.npz      per-chunk metrics, `[runs, chunks]` each
    <workdir>/groups/<group>/params.npz      final parameters, `[runs, ...]` each
    <workdir>/groups/<group>/...             anything else an experiment keeps per group
    <workdir>/results.{csv,json}             all finished rows, rewritten after each group
    <workdir>/provenance.json                the code and layout of each writing process

A finished group is never recomputed; a group in progress resumes from its checkpoint.
Deleting a group's folder makes the next run recompute that group (and only it).

`config.json` is the binary's config as given; what a group runs where it differs (a
length, a budget, a task variant) is the group's own `GroupSpec`, in `group.json`, written
when the group starts and read back with its results. `Workdir.group(name, spec, train)`
is the one load-or-train step every sweep binary takes (through `sweep.run_in_workdir`):
it refuses a group whose saved spec differs from the one asked for, records the spec, and
loads the group if it is finished, else trains it. A group written before group files
existed has none: it opens, resumes or loads as before, and gets its spec then.

`Workdir(path, config)` is the writer's view: it records the config and refuses a
different one, and it makes its process the workdir's only writer (a lock on
`<workdir>/.lock`, held until the process exits), so a second run launched on the same
folder by mistake is refused instead of writing over the first one's checkpoints.
`Workdir.open(path)` is every reader's (notebooks, summaries, the analysis of a trained
model): it never writes, reads the config that is there, and raises a `UserError` naming
the file when the folder is not a workdir or a file is damaged.

`Workdir.open(path).publish(dest)` copies a finished workdir's result files (no
checkpoints, progress or event files, lock or SVG copies of figures) to `dest`, e.g. under
`docs/results/`, where every reader above opens it as it opens the workdir. With
`partial=True` it copies a workdir still training with its groups' latest checkpoints, so
that the copy, put back as a workdir anywhere, resumes where the run stopped.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import jax
import ml_collections
import numpy as np
from absl import logging

from rnn_dynamics import provenance, results
from rnn_dynamics.errors import ConfigError, CorruptFileError, UserError

if TYPE_CHECKING:  # a reader needs no sweep machinery (nor JAX devices) to open a workdir
  from rnn_dynamics.runs.outcome import GroupResult

__all__ = [
  "FORMER_VALUES",
  "GROUP_FILE",
  "Group",
  "GroupSpec",
  "GroupSpecMismatch",
  "PARTIAL_FILE",
  "locate",
  "ReadOnlyWorkdirError",
  "Workdir",
  "WorkdirBusyError",
  "WorkdirConfigMismatch",
  "group_config",
  "make_folder",
]

# What a published copy leaves out: the state of groups still training (unless the copy is
# a partial one, made to resume elsewhere) and the writer's lock (meaningless on another
# machine), and SVG copies of the PNG figures (they are regenerated from the results and
# would double the folder's size).
_RUN_STATE_FOLDERS = ("checkpoints", "progress")
_UNPUBLISHED_FOLDERS = ("events",)  # for watching a run, not results
_UNPUBLISHED_FILES = (".lock", "*.svg")

# A partial copy's record of how far its groups got (`Workdir.publish(partial=True)`).
PARTIAL_FILE = "partial.json"

# A config may declare, next to a field added after workdirs had been written, the value
# that does what the code did before the field existed (`experiments.configs.fields.added`,
# which keeps them in this entry of the config). A saved config without such a field
# resumes under a config that holds that value (and records the field from then on), so
# adding a field never strands a long run; any other value is a different experiment.
FORMER_VALUES = "former_values"

# Fields that may change between a run and its resumption without changing results
# (`stage` picks which of a binary's groups a session runs, e.g. `experiments.methods`'
# learning-rate grid before the comparison, not what any group computes).
_VOLATILE = {"checkpoint_every_s", "progress_every_s", "stage", FORMER_VALUES}

# Fields configs no longer have: field → (the saved value that does what the code does
# now, why any other value cannot resume). A saved config holding that value resumes its
# workdir (the field is dropped from then on); another value is refused with the reason.
REMOVED_FIELDS: dict[str, tuple[Any, str]] = {
  "clipping": (
    "norm",
    "every algorithm now clips as the algorithm table says (rnn_dynamics.algorithms: "
    "element-wise for sgd_elementwise only)",
  ),
}


class WorkdirConfigMismatch(ConfigError):
  """The workdir was made by a different config: resuming would mix two experiments."""


class GroupSpecMismatch(ConfigError):
  """A group of the workdir ran another set-up than the one asked of it now."""


# A group's record of what it runs, beside its results (`GroupSpec`).
GROUP_FILE = "group.json"

# Fields of a result or progress row that are not the run's labels (`runs.outcome.GroupResult`,
# `Workdir.in_progress`): what is left of a row without them is what the grid gave it.
_OUTCOME_FIELDS = frozenset(
  (
    "solved", "updates_to_solve", "final_error", "final_mistakes", "strict_solved",
    "worst_length", "worst_length_error", "diverged", "updates_done", "screen_error",
    "best_screen_error", "full_test_error",
  )
)  # fmt: skip


def group_config(config: ml_collections.ConfigDict, **overrides: Any) -> ml_collections.ConfigDict:
  """The config one group trains with: a copy of the binary's `config` with `overrides`
  set (e.g. a length, a budget). The binary's config itself is never changed."""
  cfg = config.copy_and_resolve_references()
  for field, value in overrides.items():
    cfg[field] = value
  return cfg


@dataclasses.dataclass(frozen=True)
class GroupSpec:
  """What one group of a workdir runs, as `groups/<group>/group.json` records it.

  Every value is as JSON keeps it (tuples as lists, infinity as None), so a spec read back
  equals the one written.

  Attributes:
    task: the task its runs train on (for memorization the variant, e.g.
      `memorization_5bit`).
    min_length, max_length: its training lengths, drawn per update in [min, max); equal
      for a fixed length (Figure 7's T).
    max_updates: each run's budget.
    chunk_size: updates per compiled call (and between screens).
    runs: how many runs it has.
    labels: each field of the runs' labels → its values, in the order the runs first take
      them (e.g. `{"init": [...], "algorithm": ["sgd_cr"], "seed": [0, 1, 2, 3, 4]}`).
    overrides: the fields of the binary's config (`config.json`) this group runs with
      another value, field → that value; `{}` when it runs the config as it is.
  """

  task: str
  min_length: int
  max_length: int
  max_updates: int
  chunk_size: int
  runs: int
  labels: dict[str, list]
  overrides: dict[str, Any]

  @classmethod
  def of(
    cls,
    base: Mapping[str, Any],
    config: ml_collections.ConfigDict | Mapping[str, Any],
    labels: Sequence[Mapping[str, Any]],
  ) -> GroupSpec:
    """The spec of a group that trains with `config` (`group_config` of the binary's),
    runs labelled `labels` (result rows will do: their outcome fields are left out), in
    a workdir whose config is `base` (`Workdir.config`)."""
    if isinstance(config, ml_collections.ConfigDict):
      config = json.loads(config.to_json())
    cfg = dict(config)
    overrides = {
      k: cfg[k] for k in sorted(cfg) if k not in _VOLATILE and base.get(k) != cfg[k]
    }
    return cls.from_json(
      dict(
        task=cfg["task"],
        min_length=cfg["min_length"],
        max_length=cfg["max_length"],
        max_updates=cfg["max_updates"],
        chunk_size=cfg["chunk_size"],
        runs=len(labels),
        labels=_label_values(labels),
        overrides=overrides,
      )
    )

  @classmethod
  def from_json(cls, obj: Mapping[str, Any]) -> GroupSpec:
    obj = results.to_jsonable(dict(obj))
    return cls(**{f.name: obj[f.name] for f in dataclasses.fields(cls)})

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  def differences(self, other: GroupSpec) -> list[str]:
    """`field: self's value -> other's` for each value that differs (one level into
    `labels` and `overrides`)."""
    a, b = self.to_json(), other.to_json()
    out = []
    for k in a:
      if isinstance(a[k], dict):
        out += [
          f"{k}.{f}: {a[k].get(f)!r} -> {b[k].get(f)!r}"
          for f in dict.fromkeys([*a[k], *b[k]])
          if a[k].get(f) != b[k].get(f)
        ]
      elif a[k] != b[k]:
        out.append(f"{k}: {a[k]!r} -> {b[k]!r}")
    return out


class Group(NamedTuple):
  """A finished group, as `Workdir.group` hands it back: what it ran, one row per run,
  and the traces (`[runs, chunks]` per field)."""

  spec: GroupSpec
  rows: list[dict[str, Any]]
  traces: dict[str, np.ndarray]


def _label_values(labels: Sequence[Mapping[str, Any]]) -> dict[str, list]:
  """Label field → its values over `labels`, in the order of first appearance."""
  out: dict[str, list] = {}
  for label in results.to_jsonable(list(labels)):
    for k, v in label.items():
      if k not in _OUTCOME_FIELDS and v not in out.setdefault(k, []):
        out[k].append(v)
  return out


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


def locate(env: str | None, *candidates: str) -> Path:
  """The workdir a notebook opens: the path in the environment variable `env` if it is
  set (None: no variable), else the first of `candidates` that exists, else the first
  one (for its error).

  Relative paths are tried from the working directory, then from its parent: Jupyter
  starts kernels in `notebooks/`, and the paths are the repository root's.
  """

  def find(path: str) -> Path:
    p = Path(path)
    if not p.is_absolute() and not p.exists() and (Path("..") / p).exists():
      p = Path("..") / p
    return p

  if env and os.environ.get(env):
    return find(os.environ[env])
  return next((p for p in map(find, candidates) if p.exists()), Path(candidates[0]))


def _added(key: str, saved: dict[str, Any], resolved: dict[str, Any]) -> bool:
  """`key` is a field added since the saved config was written, at its former value."""
  former = resolved.get(FORMER_VALUES) or {}
  return key not in saved and key in former and resolved.get(key) == former[key]


def _removed(key: str, saved: dict[str, Any], resolved: dict[str, Any]) -> bool:
  """`key` is a field removed since the saved config was written, at its kept value."""
  return key in REMOVED_FIELDS and key not in resolved and saved.get(key) == REMOVED_FIELDS[key][0]


class WorkdirBusyError(ConfigError):
  """Another process is writing to the workdir (a second run on the same folder)."""


# Workdir → the locked file this process holds, until it exits (a process may open its
# workdir more than once; an flock taken twice by one process would refuse the second).
_HELD: dict[Path, int] = {}


def _holder(fd: int) -> str:
  """What the writer recorded in the open lock file `fd` ("pid N, since ...")."""
  return os.pread(fd, 200, 0).decode(errors="replace").strip() or "pid unknown"


def _hold(path: Path) -> None:
  """Makes this process the writer of the workdir at `path`, or raises `WorkdirBusyError`
  naming the process that is. In a multi-host job only process 0 holds it (it is the one
  that writes); on a file system without locks nothing is held."""
  key = path.resolve()
  # Asked only of a multi-host job: process_index() would start a backend (and log)
  # before a binary has said what is wrong with its command line.
  if key in _HELD or (jax.distributed.is_initialized() and jax.process_index() != 0):
    return
  fd = os.open(key / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    holder = _holder(fd)
    os.close(fd)
    raise WorkdirBusyError(
      f"{path} is in use by another run ({holder}): wait for it to finish, stop it "
      "(Ctrl-C or kill; it checkpoints first) and run again to resume, or pass another "
      "--workdir"
    ) from None
  except OSError:  # no locks here (some network file systems): go on unguarded
    os.close(fd)
    return
  os.ftruncate(fd, 0)
  os.pwrite(fd, f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
  _HELD[key] = fd


def _release(path: Path) -> None:
  fd = _HELD.pop(path.resolve(), None)
  if fd is not None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _writer(path: Path) -> str | None:
  """The process writing to the workdir at `path` ("pid N, since ..."), or None."""
  lock = path / ".lock"
  if not lock.is_file() or path.resolve() in _HELD:
    return None
  fd = os.open(lock, os.O_RDONLY)
  try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
  except BlockingIOError:
    return _holder(fd)
  except OSError:  # no locks on this file system: nobody can be seen writing
    return None
  finally:
    os.close(fd)
  return None


class ReadOnlyWorkdirError(UserError):
  """A write was asked of a workdir opened with `Workdir.open` (a bug in the caller)."""


class Workdir:
  """Owns one experiment's folder (or, from `Workdir.open`, reads one)."""

  def __init__(self, path: str | Path, config: ml_collections.ConfigDict):
    """Opens or creates the workdir; call it only with a validated config, since it
    records the config in `config.json` and a later run is compared against that."""
    self.path = make_folder(path)
    _hold(self.path)
    self.read_only = False
    resolved = json.loads(config.to_json())
    self.config: dict[str, Any] = resolved
    saved_file = self.path / "config.json"
    if saved_file.exists():
      saved = results.read_json(
        saved_file,
        "restore it, or use a new --workdir (deleting it lets a different config resume "
        "this workdir's finished groups)",
      )
      for k, (kept, why) in REMOVED_FIELDS.items():
        if k in saved and k not in resolved and saved[k] != kept:
          raise WorkdirConfigMismatch(
            f"{self.path} was made with {k}={saved[k]!r}, a setting that no longer exists: {why}. "
            "Use a new --workdir."
          )
      changed = sorted(
        k
        for k in set(saved) | set(resolved)
        if k not in _VOLATILE
        and saved.get(k) != resolved.get(k)
        and not _added(k, saved, resolved)
        and not _removed(k, saved, resolved)
      )
      if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {resolved.get(k)!r}" for k in changed)
        raise WorkdirConfigMismatch(
          f"{self.path} holds results of a different config ({diffs}). Use a new --workdir, "
          "or repeat the original flags to resume it."
        )
    if self._has_checkpoints():
      provenance.check_layout(self.path)  # the checkpoints' runs are padded for it
    results.write_json(saved_file, resolved)
    # Which code wrote the workdir is recorded at this process's first write of results
    # or run state, so a run refused on a damaged file leaves the workdir as it was.
    self._unrecorded = True

  def close(self) -> None:
    """Lets another process write to this workdir (the lock is otherwise held until this
    process exits); this object must not write after it."""
    if not self.read_only:
      _release(self.path)
      self.read_only = True

  @classmethod
  def open(cls, path: str | os.PathLike, of: str = "") -> Workdir:
    """The workdir at `path`, read-only: nothing is written, the config is what is there.

    Missing pieces of a sweep still running read as absent (`groups()` lists finished
    groups only; `table(..., default=[])`). `of` names the experiment the caller expects
    (e.g. `"experiments.pathological"`), for the error messages.

    Raises:
      ConfigError: `path` is not a folder or holds no `config.json`.
      CorruptFileError: `config.json` is damaged.
    """
    self = cls.__new__(cls)
    self.path = Path(path)
    self.read_only = True
    what = f"a workdir of {of}" if of else "a workdir"
    if not self.path.is_dir():
      raise ConfigError(f"{self.path} is not {what}: no such folder")
    file = self.path / "config.json"
    if not file.is_file():
      raise ConfigError(
        f"{self.path} is not {what} (no config.json): pass a folder an experiment wrote"
      )
    self.config = results.read_json(file, _READ_REMEDY)
    if not isinstance(self.config, dict):
      raise CorruptFileError(file, "not a JSON object", _READ_REMEDY)
    return self

  def _writable(self) -> None:
    if self.read_only:
      raise ReadOnlyWorkdirError(f"{self.path} was opened read-only (Workdir.open)")
    if self._unrecorded:
      self._unrecorded = False
      provenance.record(self.path)
      # A partial copy's note (how far it got when published) is stale once it resumes.
      (self.path / PARTIAL_FILE).unlink(missing_ok=True)

  # --- reading ---------------------------------------------------------------------------

  def exists(self, name: str) -> bool:
    """Whether the workdir holds the file `name` (a path relative to it)."""
    return (self.path / name).is_file()

  def groups(self) -> list[str]:
    """Names of the finished groups, sorted (a group being written is not listed)."""
    folder = self.path / "groups"
    if not folder.is_dir():
      return []
    return sorted(g.name for g in folder.iterdir() if (g / "results.json").is_file())

  def read_json(self, name: str) -> Any:
    """The JSON file `name` (relative to the workdir).

    Raises:
      UserError: the file is missing (`ConfigError`) or damaged (`CorruptFileError`).
    """
    return results.read_json(self._file(name), _READ_REMEDY)

  def read_text(self, name: str) -> str:
    return self._file(name).read_text(encoding="utf-8")

  def read_npz(self, name: str) -> dict[str, np.ndarray]:
    """The arrays of the `.npz` file `name` (relative to the workdir), loaded whole."""
    return results.read_npz(self._file(name), _READ_REMEDY)

  def in_progress(self) -> dict[str, list[dict[str, Any]]]:
    """Group → its runs as of the last checkpoint, for every group still training
    (`sweep.run_in_workdir`; a finished group is in `groups()` instead)."""
    folder = self.path / "progress"
    stems = sorted(p.with_suffix("") for p in folder.glob("*.json")) if folder.is_dir() else []
    return {s.name: results.read_results(s, _READ_REMEDY) for s in stems}

  def table(self, stem: str = "results", default: list | None = None) -> list[dict[str, Any]]:
    """The rows of `<stem>.json` (`write_table`'s output); `default` if it is missing and
    a default is given (a sweep that has not written it yet)."""
    if default is not None and not self.exists(f"{stem}.json"):
      return default
    rows = self.read_json(f"{stem}.json")
    if not isinstance(rows, list):
      raise CorruptFileError(self.path / f"{stem}.json", "not a list of rows", _READ_REMEDY)
    return rows

  def _file(self, name: str) -> Path:
    file = self.path / name
    if not file.is_file():
      raise ConfigError(f"{self.path} has no {name}: not written by this experiment (yet)")
    return file

  def _has_checkpoints(self) -> bool:
    """Whether some group holds run state (a checkpoint) to resume from."""
    return any((self.path / "checkpoints").glob("*"))

  def checkpoint_dir(self, group: str) -> Path:
    return self.path / "checkpoints" / group

  def events_dir(self, group: str) -> Path:
    """Where the host loop writes the group's TensorBoard event files (`runs.events`)."""
    return self.path / "events" / group

  def _group(self, group: str) -> Path:
    return self.path / "groups" / group

  def group_path(self, group: str) -> Path:
    """The folder of a finished group (for files an experiment adds beside its results)."""
    return self._group(group)

  def is_done(self, group: str) -> bool:
    return (self._group(group) / "results.json").exists()

  def _remedy(self, group: str) -> str:
    return f"delete {self._group(group)} and run again to recompute group {group}"

  def group_spec(self, group: str) -> GroupSpec | None:
    """What `group` runs (finished or still training), or None for a group written
    before group files existed (its config's values apply)."""
    file = self._group(group) / GROUP_FILE
    if not file.is_file():
      return None
    obj = results.read_json(file, self._remedy(group))
    try:
      return GroupSpec.from_json(obj)
    except (KeyError, TypeError, AttributeError) as e:
      raise CorruptFileError(file, f"not a group spec ({e})", self._remedy(group)) from e

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
    folder = self.path / "groups"
    names = sorted(p.parent.name for p in folder.glob(f"*/{GROUP_FILE}")) if folder.is_dir() else []
    return {g: self.group_spec(g) for g in names}

  def load_rows(self, group: str) -> list[dict[str, Any]]:
    """Result rows of a finished group.

    Raises:
      CorruptFileError: its results file is damaged; the message says how to recover.
    """
    return results.read_results(self._group(group) / "results", self._remedy(group))

  def _load_npz(self, group: str, name: str) -> dict[str, np.ndarray]:
    return results.read_npz(self._group(group) / name, self._remedy(group))

  def load_traces(self, group: str) -> dict[str, np.ndarray]:
    """Per-chunk traces of a finished group, `[runs, chunks]` per field."""
    return self._load_npz(group, "traces.npz")

  def load_params(self, group: str) -> dict[str, np.ndarray]:
    """Final parameters of a finished group, `[runs, ...]` per `rnn.Params` field."""
    return self._load_npz(group, "params.npz")

  def load_group(self, group: str) -> dict[str, Any]:
    """A finished group's `rows` (one per run) and `traces` (`[runs, chunks]` per field)."""
    return dict(rows=self.load_rows(group), traces=self.load_traces(group))

  def publish(self, dest: str | os.PathLike, overwrite: bool = False, partial: bool = False) -> int:
    """Copies this workdir's result files to `dest`; returns their bytes.

    A finished workdir is copied without run state. With `partial`, a workdir whose groups
    are still training is copied with what resuming them needs and nothing more: each
    group's latest checkpoint (every run's parameters, optimizer state, RNG keys and
    counters, the chunk index that places it in the length schedule, its traces so far)
    and progress rows, beside `partial.json`, which says how far each group got and which
    commits ran it (`partial_status`). Copied to a workdir, the copy resumes where it
    stopped, on another machine too (BUILD.md, "Carrying a long run"). The copy is
    written beside `dest` and renamed into place, so an interrupted publish leaves `dest`
    as it was.

    Raises:
      ConfigError: a run is still writing the workdir, a group is still training and
        `partial` is False, or `dest` exists and `overwrite` is False.
    """
    dest = Path(dest)
    writer = _writer(self.path)
    if writer:
      raise ConfigError(
        f"{self.path} is still being written by a run ({writer}): stop it (Ctrl-C or kill; "
        "it checkpoints first) or let it finish, then publish"
      )
    training = sorted(self.in_progress())
    if not partial and (training or self._has_checkpoints()):
      names = ", ".join(training) or "see checkpoints/"
      raise ConfigError(
        f"{self.path} has groups still training ({names}): finish them (run the same "
        "command again) before publishing, or pass --partial to publish a state that "
        "resumes elsewhere"
      )
    if dest.exists() and not overwrite:
      raise ConfigError(f"{dest} exists: pass --overwrite to replace it, or another --out")
    staging = dest.with_name(f".{dest.name}.publishing")
    shutil.rmtree(staging, ignore_errors=True)
    # An interrupted Orbax save leaves a temporary folder that no resume reads.
    files = shutil.ignore_patterns(*_UNPUBLISHED_FILES, PARTIAL_FILE, "*.orbax-checkpoint-tmp*")
    folders_out = set(_UNPUBLISHED_FOLDERS) | (set() if partial else set(_RUN_STATE_FOLDERS))

    def left_out(folder: str, names: list[str]) -> set[str]:
      top = set(names) & folders_out if Path(folder) == self.path else set()
      return set(files(folder, names)) | top

    shutil.copytree(self.path, staging, ignore=left_out)
    # Orbax's commit markers name the folder they were written to; only their presence
    # matters, and a published copy names no machine's paths.
    for marker in staging.glob("checkpoints/**/commit_success.txt"):
      text = marker.read_text(errors="replace").replace(str(self.path.absolute()), "<workdir>")
      marker.write_text(text)
    if partial and training:
      results.write_json(staging / PARTIAL_FILE, self.partial_status())
    if dest.exists():
      shutil.rmtree(dest)
    staging.rename(dest)
    return sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())

  def partial_status(self) -> dict[str, Any]:
    """How far the groups still training got, as a partial copy records it: per group
    its runs, how many are solved or diverged, the updates done (least and most over its
    runs), the budget and the best screen error; and the commits that ran the workdir."""
    groups = {}
    specs = self.group_specs()
    for group, rows in self.in_progress().items():
      done = [int(r["updates_done"]) for r in rows]
      screens = [r["best_screen_error"] for r in rows if r.get("best_screen_error") is not None]
      groups[group] = dict(
        runs=len(rows),
        solved=sum(bool(r["solved"]) for r in rows),
        diverged=sum(bool(r["diverged"]) for r in rows),
        updates_done=[min(done, default=0), max(done, default=0)],
        budget=specs[group].max_updates if group in specs else self.config.get("max_updates"),
        best_screen_error=min(screens, default=None),
      )
    return dict(
      status="in progress",
      published=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
      finished_groups=self.groups(),
      groups=groups,
      code=provenance.summary(self.path),
    )

  # --- writing ---------------------------------------------------------------------------

  def group(self, name: str, spec: GroupSpec, train: Callable[[], GroupResult]) -> Group:
    """The group `name` as `spec` describes it: loaded if it is finished, else trained by
    `train()` (which resumes from the group's checkpoint and saves the group).

    The spec goes to `groups/<name>/group.json` before anything else, so a group still
    training says what it runs; a group without one (written by older code) gets it now.

    Raises:
      GroupSpecMismatch: the group's saved spec differs from `spec` (the workdir's
        config is the same, so the code that derives groups from it changed).
    """
    if self.read_only:
      raise ReadOnlyWorkdirError(f"{self.path} was opened read-only (Workdir.open)")
    saved = self.group_spec(name)
    if saved is not None and saved != spec:
      diffs = ", ".join(saved.differences(spec))
      raise GroupSpecMismatch(
        f"{self._group(name) / GROUP_FILE}: group {name} ran another set-up than this run "
        f"asks of it ({diffs}). Use a new --workdir, or delete {self._group(name)} and "
        f"{self.checkpoint_dir(name)} to run that group again as asked."
      )
    # A finished group is read first: a damaged file is refused with nothing written.
    done = self.is_done(name)
    loaded = Group(spec, self.load_rows(name), self.load_traces(name)) if done else None
    self._writable()
    if saved is None:
      results.write_json(self._group(name) / GROUP_FILE, spec.to_json())
    if loaded is not None:
      logging.info("%s: already finished, loaded from %s", name, self.path)
      return loaded
    result = train()
    return Group(spec, result.rows, result.traces)

  def save_group(self, group: str, result: GroupResult, extra: dict[str, Any] | None = None):
    """Stores a finished group; the results file goes last, so it marks completeness."""
    self._writable()
    folder = self._group(group)
    results.write_npz(folder / "traces.npz", result.traces)
    n = len(result.rows)
    params = {k: v[:n] for k, v in results.flat_arrays(result.state.params).items()}
    results.write_npz(folder / "params.npz", params)
    rows = [dict(r, **(extra or {})) for r in result.rows]
    results.write_results(folder / "results", rows)
    shutil.rmtree(self.checkpoint_dir(group), ignore_errors=True)
    for suffix in (".json", ".csv"):
      Path(f"{self._progress(group)}{suffix}").unlink(missing_ok=True)
    for folder in (self.path / "progress", self.path / "checkpoints"):
      if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()  # nothing in progress any more

  def write_progress(self, group: str, rows: Iterable[dict[str, Any]]) -> None:
    """The rows of a group still training, as of its last checkpoint (`in_progress`)."""
    self._writable()
    results.write_results(self._progress(group), list(rows))

  def _progress(self, group: str) -> Path:
    """The stem of a group's progress files (`.json`, `.csv`)."""
    return self.path / "progress" / group

  def write_table(self, rows: Iterable[dict[str, Any]], stem: str = "results") -> None:
    self._writable()
    results.write_results(self.path / stem, list(rows))

  def output(self, name: str) -> Path:
    """The path of `name` in the workdir, for a file the caller writes itself (through
    `rnn_dynamics.results` or `report.style.save_figure`: an analysis's arrays, summary
    and figure); like every write, the first records this process in `provenance.json`."""
    self._writable()
    return self.path / name


# A reader cannot recompute a file; the experiment that wrote the workdir can.
_READ_REMEDY = "run the experiment that wrote this workdir on it again to recompute it"
