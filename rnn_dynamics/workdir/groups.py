"""A workdir's groups: what each runs (`GroupSpec`) and what it left (`GroupFolder`).

A group is one compiled program's runs (one length of Figure 7, one task's seeds). Its
folder `groups/<name>/` holds from its start `group.json`, the group's `GroupSpec`: what
it runs where that differs from the binary's config (`config.json`), e.g. a length or a
budget. Once every run is decided the folder gets the runs' traces and final parameters,
then their result rows, whose file marks the group finished.

A label added to a binary's runs after groups were saved without it is declared with its
former value (`former_labels` of `GroupFolder.refuse_another`, passed where the label is
made): a saved spec without the label matches only where every run now holds that value,
the one that labels what ran before; like a config field's (`FORMER_VALUES`), so adding a
label never strands a saved group.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple, Sequence

import ml_collections
import numpy as np

from rnn_dynamics import results
from rnn_dynamics.errors import ConfigError, CorruptFileError
from rnn_dynamics.workdir import copies
from rnn_dynamics.workdir.config import VOLATILE

if TYPE_CHECKING:  # a reader needs no sweep machinery (nor JAX devices) to open a workdir
  from rnn_dynamics.runs.outcome import GroupResult

__all__ = [
  "FOLDER",
  "GROUP_FILE",
  "Group",
  "GroupFolder",
  "GroupSpec",
  "GroupSpecMismatch",
  "finished",
  "group_config",
  "recorded",
]

FOLDER = "groups"

# A group's record of what it runs, beside its results (`GroupSpec`).
GROUP_FILE = "group.json"

# A label or override a spec does not have (shown as None).
_MISSING = object()

# Fields of a result or progress row that are not the run's labels (`runs.outcome.GroupResult`,
# `Workdir.in_progress`): what is left of a row without them is what the grid gave it.
_OUTCOME_FIELDS = frozenset(
  (
    "solved", "updates_to_solve", "final_error", "final_mistakes", "strict_solved",
    "worst_length", "worst_length_error", "diverged", "updates_done", "screen_error",
    "best_screen_error", "full_test_error", "wall_s",
  )
)  # fmt: skip


class GroupSpecMismatch(ConfigError):
  """A group of the workdir ran another set-up than the one asked of it now."""


def group_config(config: ml_collections.ConfigDict, **overrides: Any) -> ml_collections.ConfigDict:
  """The config one group trains with: a copy of the binary's `config` with `overrides`
  set (e.g. a length, a budget, or a field only some groups have, like `floss_enabled`).
  The binary's config itself is never changed."""
  cfg = config.copy_and_resolve_references()
  # The command line's config is locked (absl's config flags), and a group may set a
  # field the config lacks: the copy is the group's own.
  with cfg.unlocked():
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
    overrides = {k: cfg[k] for k in sorted(cfg) if k not in VOLATILE and base.get(k) != cfg[k]}
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

  def differences(
    self, other: GroupSpec, former_labels: Mapping[str, Any] | None = None
  ) -> list[str]:
    """`field: self's value -> other's` for each value that differs (one level into
    `labels` and `overrides`; a missing one shows as None), but for a label `self` lacks
    that `other` gives every run at its former value (`former_labels`: label → value)."""
    a, b = self.to_json(), other.to_json()
    former = results.to_jsonable(dict(former_labels or {}))
    out = []
    for k in a:
      if isinstance(a[k], dict):
        for f in dict.fromkeys([*a[k], *b[k]]):
          x, y = a[k].get(f, _MISSING), b[k].get(f, _MISSING)
          if x is _MISSING and k == "labels" and f in former and y == [former[f]]:
            continue
          if x != y:
            out.append(f"{k}.{f}: {_shown(x)!r} -> {_shown(y)!r}")
      elif a[k] != b[k]:
        out.append(f"{k}: {a[k]!r} -> {b[k]!r}")
    return out


def _shown(value: Any) -> Any:
  return None if value is _MISSING else value


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


def finished(root: Path) -> list[str]:
  """Names of the finished groups of the workdir at `root`, sorted (a group being written
  is not listed)."""
  folder = root / FOLDER
  if not folder.is_dir():
    return []
  return sorted(g.name for g in folder.iterdir() if (g / "results.json").is_file())


def recorded(root: Path) -> list[str]:
  """Names of the groups of the workdir at `root` that recorded their spec (finished or
  still training), sorted."""
  folder = root / FOLDER
  return sorted(p.parent.name for p in folder.glob(f"*/{GROUP_FILE}")) if folder.is_dir() else []


class GroupFolder:
  """One group's folder, `groups/<name>/` of the workdir at `root`: its spec from its
  start, and once it is finished its rows (whose file goes last), traces and parameters.

  Every read of a damaged file raises a `CorruptFileError` whose remedy recomputes the
  group (and only it); of a file the published copy at `root` was made without, a
  `copies.LeftOutError`.
  """

  def __init__(self, root: Path, name: str):
    self.root, self.name, self.path = root, name, root / FOLDER / name
    self.remedy = f"delete {self.path} and run again to recompute group {name}"

  def is_done(self) -> bool:
    return (self.path / "results.json").exists()

  def spec(self) -> GroupSpec | None:
    """What the group runs, or None for a group written before group files existed."""
    file = self.path / GROUP_FILE
    if not file.is_file():
      return None
    obj = results.read_json(file, self.remedy)
    try:
      return GroupSpec.from_json(obj)
    except (KeyError, TypeError, AttributeError) as e:
      raise CorruptFileError(file, f"not a group spec ({e})", self.remedy) from e

  def write_spec(self, spec: GroupSpec) -> None:
    results.write_json(self.path / GROUP_FILE, spec.to_json())

  def refuse_another(
    self, spec: GroupSpec, checkpoints: Path, former_labels: Mapping[str, Any] | None = None
  ) -> GroupSpec | None:
    """The saved spec (None: none yet), if it is `spec` (or `spec` but for labels added
    since, at their former values: `former_labels`, label → the value every run had).

    Raises:
      GroupSpecMismatch: the group ran another spec; the message names both ways on
        (a new workdir, or deleting the group's folder and its `checkpoints`).
    """
    saved = self.spec()
    diffs = [] if saved is None else saved.differences(spec, former_labels)
    if diffs:
      raise GroupSpecMismatch(
        f"{self.path / GROUP_FILE}: group {self.name} ran another set-up than this run "
        f"asks of it ({', '.join(diffs)}). Use a new --workdir, or delete {self.path} and "
        f"{checkpoints} to run that group again as asked."
      )
    return saved

  def rows(self) -> list[dict[str, Any]]:
    """Result rows of the finished group, one per run."""
    return results.read_results(self.path / "results", self.remedy)

  def traces(self) -> dict[str, np.ndarray]:
    """Per-chunk traces of the finished group, `[runs, chunks]` per field."""
    return self._npz("traces.npz")

  def params(self) -> dict[str, np.ndarray]:
    """Final parameters of the finished group, `[runs, ...]` per `rnn.Params` field."""
    return self._npz("params.npz")

  def _npz(self, name: str) -> dict[str, np.ndarray]:
    file = self.path / name
    if not file.is_file():  # not damaged if a published copy was made without it
      copies.refuse_left_out(self.root, file)
    return results.read_npz(file, self.remedy)

  def save(self, result: GroupResult, extra: dict[str, Any] | None = None) -> None:
    """Stores the finished group (`extra` added to every row); the results file goes
    last, so it marks completeness."""
    results.write_npz(self.path / "traces.npz", result.traces)
    n = len(result.rows)
    params = {k: v[:n] for k, v in results.flat_arrays(result.state.params).items()}
    results.write_npz(self.path / "params.npz", params)
    rows = [dict(r, **(extra or {})) for r in result.rows]
    results.write_results(self.path / "results", rows)
