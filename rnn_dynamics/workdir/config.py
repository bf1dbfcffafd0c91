"""A workdir's `config.json`: the config that made it, and which configs may resume it.

The writer (`Workdir(path, config)`) records the binary's resolved config there and a
later run on the same folder is compared against it: resuming under another config would
mix two experiments in one folder (`WorkdirConfigMismatch`). Three kinds of field are let
through, so that the code can move on without stranding a long run:

* bookkeeping that does not change results (`VOLATILE`: how often to checkpoint or log,
  which Lyapunov exponents the traces measure besides training);
* a field added since the saved config was written, where the config holds the value
  that does what the code did before it (`FORMER_VALUES`, declared beside the field by
  `experiments.configs.fields.added`);
* a field removed since, where the saved config holds the value that does what the code
  does now (`REMOVED_FIELDS`); any other saved value is refused with the reason.

Besides, a config may name the fields that only choose which of its binary's groups run
(`CHOOSES_GROUPS`): a comparison grows by a length or a method in the same workdir.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnn_dynamics import results
from rnn_dynamics.errors import ConfigError

__all__ = [
  "CHOOSES_GROUPS",
  "FILE",
  "FORMER_VALUES",
  "REMOVED_FIELDS",
  "VOLATILE",
  "WorkdirConfigMismatch",
  "check",
]

FILE = "config.json"

# A config may declare, next to a field added after workdirs had been written, the value
# that does what the code did before the field existed (`experiments.configs.fields.added`,
# which keeps them in this entry of the config). A saved config without such a field
# resumes under a config that holds that value (and records the field from then on), so
# adding a field never strands a long run; any other value is a different experiment.
FORMER_VALUES = "former_values"

# A config may name, in this entry, the fields that choose which of its binary's groups
# run and never what any group computes (`experiments.configs.fields.chooses_groups`; e.g.
# the methods, tasks and lengths of `experiments.methods`). A workdir resumes under a
# config that differs from its saved one in those: finished groups are read back, new
# ones train, and each group's own record (`group.json`) still refuses a group asked to
# run another set-up. So a comparison grows by a length without recomputing what it has.
CHOOSES_GROUPS = "chooses_groups"

# Fields that may change between a run and its resumption without changing results.
# (`stage` picks which of a binary's groups a session runs, e.g. `experiments.methods`'
# learning-rate grid before the comparison, not what any group computes; `lyapunov_*`
# what the synthetic traces measure after each chunk, from keys that no run draws from:
# a resumed group logs them from then on, its earlier chunks keep what they logged.)
VOLATILE = frozenset(
  {
    "checkpoint_every_s",
    "progress_every_s",
    "stage",
    "lyapunov_k",
    "lyapunov_sequences",
    FORMER_VALUES,
    CHOOSES_GROUPS,
  }
)

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


def check(path: Path, resolved: dict[str, Any]) -> None:
  """Refuses to let the config `resolved` (as JSON keeps it) write the workdir at `path`
  if its `config.json` records another experiment; a workdir without one takes any.

  Raises:
    WorkdirConfigMismatch: a field differs (other than the three kinds above), naming
      each with its saved and asked-for value; or a removed field holds a value the code
      no longer has, with the reason.
    CorruptFileError: the saved `config.json` is damaged.
  """
  file = path / FILE
  if not file.exists():
    return
  saved = results.read_json(
    file,
    "restore it, or use a new --workdir (deleting it lets a different config resume "
    "this workdir's finished groups)",
  )
  for k, (kept, why) in REMOVED_FIELDS.items():
    if k in saved and k not in resolved and saved[k] != kept:
      raise WorkdirConfigMismatch(
        f"{path} was made with {k}={saved[k]!r}, a setting that no longer exists: {why}. "
        "Use a new --workdir."
      )
  changed = sorted(
    k
    for k in set(saved) | set(resolved)
    if k not in VOLATILE
    and k not in (resolved.get(CHOOSES_GROUPS) or ())
    and saved.get(k) != resolved.get(k)
    and not _added(k, saved, resolved)
    and not _removed(k, saved, resolved)
  )
  if changed:
    diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {resolved.get(k)!r}" for k in changed)
    raise WorkdirConfigMismatch(
      f"{path} holds results of a different config ({diffs}). Use a new --workdir, "
      "or repeat the original flags to resume it."
    )


def _added(key: str, saved: dict[str, Any], resolved: dict[str, Any]) -> bool:
  """`key` is a field added since the saved config was written, at its former value."""
  former = resolved.get(FORMER_VALUES) or {}
  return key not in saved and key in former and resolved.get(key) == former[key]


def _removed(key: str, saved: dict[str, Any], resolved: dict[str, Any]) -> bool:
  """`key` is a field removed since the saved config was written, at its kept value."""
  return key in REMOVED_FIELDS and key not in resolved and saved.get(key) == REMOVED_FIELDS[key][0]
