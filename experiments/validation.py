"""Every binary's config checked in one place, before any work and before any write.

A config is checked field by field against `FIELDS` (rules shared by every binary whose
config has the field) overlaid with the binary's own rules in `BINARIES`, then against
the binary's cross-field `relations` (multiples, ranges, lengths against the task's
shortest well-formed length, data files). A field a config does not have is skipped, so
one table serves every binary and fields can come and go. A field left `None` is a
placeholder that takes its published value later (`pathological`, `char_lm`,
`polyphonic`), which is valid by construction.

To extend: add the field's rule to `FIELDS` (or to the binary's `fields` where its
meaning differs), or a relation to the binary's `relations`. `tests/test_validation.py`
checks that every field of every preset has a rule.

Checking also normalises: a tuple-of-names field given on the command line as
`--config.inits=basic_tanh,smart_tanh` arrives from `config_flags` as one comma-joined
string and is split, as `--config.lengths=20,40` already is for numbers.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from experiments.configs import char_lm as char_lm_config
from experiments.configs import polyphonic as polyphonic_config
from rnn_dynamics import natural, paper, regularizers, rnn, tasks, train
from rnn_dynamics.errors import ConfigError

__all__ = ["BINARIES", "FIELDS", "Schema", "validate"]

Check = Callable[[Any], str | None]
"""A field's value → what is wrong with it (a phrase: "must be …"), or None."""
Relation = Callable[[ml_collections.ConfigDict], Iterable[str]]
"""A whole config → its problems, each naming the flags involved."""


# --- checks of one value ---------------------------------------------------------------


def _is_int(v) -> bool:
  return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
  return isinstance(v, numbers.Real) and not isinstance(v, bool)


def integer(lo: int | None = None, hi: int | None = None) -> Check:
  """An int in [lo, hi] (either end open when None)."""

  def check(v):
    if not _is_int(v):
      return "must be an integer"
    if lo is not None and v < lo:
      return f"must be ≥ {lo}"
    if hi is not None and v > hi:
      return f"must be ≤ {hi}"
    return None

  return check


def number(
  *,
  gt: float | None = None,
  ge: float | None = None,
  lt: float | None = None,
  le: float | None = None,
  infinite: bool = False,
) -> Check:
  """A finite real (or ±∞ where `infinite`; never NaN) within the given bounds."""

  def check(v):
    if not _is_number(v) or math.isnan(v) or (math.isinf(v) and not infinite):
      return "must be a finite number" if not infinite else "must be a number"
    for bound, ok, text in (
      (gt, lambda b: v > b, ">"),
      (ge, lambda b: v >= b, "≥"),
      (lt, lambda b: v < b, "<"),
      (le, lambda b: v <= b, "≤"),
    ):
      if bound is not None and not ok(bound):
        return f"must be {text} {bound:g}"
    return None

  return check


def boolean() -> Check:
  return lambda v: None if isinstance(v, bool) else "must be true or false"


def text() -> Check:
  return lambda v: None if isinstance(v, str) else "must be a string"


def one_of(choices: Iterable[str]) -> Check:
  """A name out of `choices`."""
  choices = tuple(choices)

  def check(v):
    if v in choices:
      return None
    return f"must be one of {', '.join(map(str, choices))}"

  return check


def either(*checks: Check) -> Check:
  """Passes when one of `checks` passes; otherwise reports the last one's problem."""

  def check(v):
    problems = [c(v) for c in checks]
    return None if any(p is None for p in problems) else problems[-1]

  return check


def sequence(item: Check, *, min_len: int = 1, length: int | None = None, unique=False) -> Check:
  """A tuple whose every item passes `item`."""

  def check(v):
    if not isinstance(v, (tuple, list)):
      return "must be a comma-separated list"
    if length is not None and len(v) != length:
      return f"must have exactly {length} entries"
    if len(v) < min_len:
      return f"must have at least {min_len} entr{'y' if min_len == 1 else 'ies'}"
    for x in v:
      problem = item(x)
      if problem:
        return f"entry {x!r} {problem}"
    if unique and len(set(v)) != len(v):
      return "must not repeat an entry"
    return None

  return check


def names(choices: Iterable[str]) -> Check:
  """A non-empty list of distinct names out of `choices`."""
  return sequence(one_of(choices), unique=True)


def mapping(keys: Sequence[str], value: Check, *, all_keys: bool = False) -> Check:
  """A nested ConfigDict with keys out of `keys` (all of them where `all_keys`)."""

  def check(v):
    if not isinstance(v, (ml_collections.ConfigDict, Mapping)):
      return "must be a mapping"
    have = set(v.keys())
    if extra := sorted(have - set(keys)):
      return f"has unknown key(s) {', '.join(extra)}; allowed: {', '.join(keys)}"
    if all_keys and (missing := [k for k in keys if k not in have]):
      return f"lacks key(s) {', '.join(missing)}"
    for k in keys:
      if k in have and (problem := value(v[k])):
        return f"entry {k} {problem}"
    return None

  return check


def anything() -> Check:
  """Bookkeeping fields whose every value is fine (e.g. the preset's name)."""
  return lambda v: None


# --- relations between fields ----------------------------------------------------------


def _flag(field: str, config) -> str:
  return f"--config.{field}={_show(config[field])}"


def _show(v) -> str:
  if isinstance(v, (tuple, list)):
    return ",".join(map(_show, v))
  return str(v)


def multiple_of(field: str, of: str) -> Relation:
  """`field` is a multiple of `of` (e.g. the budget of whole chunks)."""

  def relation(c):
    if field in c and of in c and c[field] is not None and c[field] % c[of]:
      yield f"{_flag(field, c)} must be a multiple of {_flag(of, c)}"

  return relation


def eval_blocks(field: str, block: str) -> Relation:
  """`field` sequences split into whole evaluation blocks of `block` (or one smaller
  block, as `train.make_train(...).evaluate` does)."""

  def relation(c):
    if field in c and block in c and c[field] % min(c[block], c[field]):
      yield f"{_flag(field, c)} must be a multiple of {_flag(block, c)}"

  return relation


def ordered(lo: str, hi: str, *, strict: bool = True) -> Relation:
  """`lo < hi` (or `lo ≤ hi`)."""

  def relation(c):
    if lo in c and hi in c and (c[lo] >= c[hi] if strict else c[lo] > c[hi]):
      yield f"{_flag(lo, c)} must be {'<' if strict else '≤'} {_flag(hi, c)}"

  return relation


def _task_min_length(name: str) -> int:
  return tasks.get_task(name).min_length


def task_lengths(*fields: str, task_field: str = "task") -> Relation:
  """Every length in `fields` is at least the task's shortest well-formed length."""

  def relation(c):
    if c[task_field] not in tasks.TASKS:
      return  # reported by the task field's own check
    least = _task_min_length(c[task_field])
    for field in fields:
      values = c[field] if isinstance(c[field], (tuple, list)) else (c[field],)
      if any(_is_int(v) and v < least for v in values):
        yield f"{_flag(field, c)}: {c[task_field]} needs lengths ≥ {least}"

  return relation


def data_path_for(file_datasets: Sequence[str]) -> Relation:
  """A data set read from files needs `data_path`, and the path must exist."""

  def relation(c):
    if c.dataset not in file_datasets:
      return
    if not c.data_path:
      yield (
        f"--config.dataset={c.dataset} is read from files: pass --config.data_path "
        "(see the config's docstring)"
      )
    elif not Path(c.data_path).expanduser().exists():
      yield f"{_flag('data_path', c)}: no such file or folder"

  return relation


def _params_index(c) -> Iterable[str]:
  """`params_index` names one of the models in `params_file` (a stacked group's file
  holds `[runs, ...]`; a single model's only index 0)."""
  path = Path(c.params_file).expanduser() if c.params_file else None
  if path is None or not path.is_file() or not _is_int(c.params_index):
    return []
  try:
    with np.load(path) as f:
      shape = f["w_hh"].shape
  except Exception:  # a damaged or foreign file: the binary names it when it reads it
    return []
  runs = shape[0] if len(shape) == 3 else 1
  if c.params_index < runs:
    return []
  held = f"holds {runs} models, so use 0 to {runs - 1}" if runs > 1 else "holds a single model"
  return [f"{_flag('params_index', c)}: {c.params_file} {held}"]


def _pathological_lengths(c) -> Iterable[str]:
  # Memorization's lengths are gaps, the others' training lengths: each against its
  # own variants' shortest length.
  if c.task not in _PATHOLOGICAL_TASKS:
    return
  for variant in paper.variants(c.task):
    least = _task_min_length(variant)
    mem = variant.startswith("memorization")
    for field in ("memorization_lengths",) if mem else ("train_lengths",):
      if any(_is_int(v) and v < least for v in c[field]):
        yield f"{_flag(field, c)}: {variant} needs lengths ≥ {least}"
    if any(_is_int(v) and v < least for v in c.generalization_lengths):
      yield f"{_flag('generalization_lengths', c)}: {variant} needs lengths ≥ {least}"
  lo, hi = c.train_lengths
  if not c.task.startswith("memorization") and lo > hi:
    yield f"{_flag('train_lengths', c)}: must be (min, max) with min ≤ max"


def _pathological_budget(c) -> Iterable[str]:
  # With max_updates left None the task's entry of `budgets` is the budget.
  if c.max_updates is not None or c.task not in _PATHOLOGICAL_TASKS:
    return
  key = paper.experiment_task(c.task)
  if key in c.budgets and c.budgets[key] % c.chunk_size:
    yield (
      f"--config.budgets.{key}={c.budgets[key]} must be a multiple of {_flag('chunk_size', c)}"
    )


# --- the tables -----------------------------------------------------------------------

# Every registered task runs in experiments.pathological; the paper's come first, with
# memorization standing for its two variants.
_PATHOLOGICAL_TASKS = tuple(
  dict.fromkeys(
    v for t in (*paper.PATHOLOGICAL_TASKS, *tasks.TASKS) for v in (t, *paper.variants(t))
  )
)
_BUDGET_KEYS = tuple(dict.fromkeys(map(paper.experiment_task, _PATHOLOGICAL_TASKS)))
_NATURAL_ALGORITHMS = natural.ALGORITHMS  # the algorithms of §4.2's tables
_COUNT = integer(0)  # how many (0: none, or all where the field says so)
_SIZE = integer(1)
_SECONDS = number(ge=0)
_POSITIVE = number(gt=0)

FIELDS: dict[str, Check] = {
  # --- the model, the task and SGD ---
  "preset": anything(),
  "task": one_of(tasks.TASKS),
  "n_hidden": _SIZE,
  "init": one_of(rnn.INITS),
  "inits": names(rnn.INITS),
  "algorithm": one_of(train.ALGORITHMS),
  "algorithms": names(train.ALGORITHMS),
  "lr": _POSITIVE,
  "learning_rate": _POSITIVE,
  "momentum": number(ge=0, lt=1),
  "batch_size": _SIZE,
  "clip": number(gt=0, infinite=True),  # ∞: no clipping (Ω without clipping, docs/reference.md §4)
  "elementwise_clip": number(gt=0, infinite=True),
  "clipping": one_of(("norm", "elementwise")),
  # A bool before the engine's change to named modes; both forms until every config has
  # moved over.
  "nonfinite_guard": one_of(("original", "always", "never")),
  "scan_unroll": _SIZE,
  "zero_mistake_stop": boolean(),
  "baselines_after_sgd_cr": boolean(),
  "baseline_min_updates": _COUNT,
  "compaction": boolean(),
  "length_buckets": _SIZE,
  "alpha": number(ge=0),
  "omega_form": one_of(regularizers.OMEGA_FORMS),
  "omega_bound": number(ge=0),
  # --- the sweep ---
  "seeds": _SIZE,
  "seed": integer(0),
  "lengths": sequence(_SIZE, unique=True),
  "min_length": _SIZE,
  "max_length": _SIZE,
  "max_updates": _SIZE,
  "chunk_size": _SIZE,
  "screen_size": _SIZE,
  "eval_size": _SIZE,
  "eval_batch": _SIZE,
  "success_error": number(gt=0, le=1),
  "checkpoint_every_s": _SECONDS,
  "progress_every_s": _SECONDS,
}


@dataclasses.dataclass(frozen=True)
class Schema:
  """One binary's rules: field rules over `FIELDS`, then cross-field relations."""

  fields: Mapping[str, Check] = dataclasses.field(default_factory=dict)
  relations: Sequence[Relation] = ()


_SWEEP_RELATIONS = (
  multiple_of("max_updates", "chunk_size"),
  eval_blocks("screen_size", "eval_batch"),
  eval_blocks("eval_size", "eval_batch"),
)

_NATURAL_FIELDS = {
  "data_path": text(),
  "train_eval_limit": _COUNT,
  "biases": boolean(),
  "segment_length": _SIZE,
  "eval_batch_size": _SIZE,
  "algorithms": names(_NATURAL_ALGORITHMS),
  "lr_halving": one_of(("train", "valid", "none")),
  "min_lr": number(ge=0),
  "cost": one_of(("mean", "sum")),
  "alpha0": number(ge=0),
  "alpha_schedule": one_of(natural.ALPHA_SCHEDULES),
  "max_epochs": _SIZE,
  "time_budget_s": _SECONDS,
}

BINARIES: dict[str, Schema] = {
  "success_rate": Schema(relations=(*_SWEEP_RELATIONS, task_lengths("lengths"))),
  "generalization": Schema(
    fields={
      "eval_lengths": sequence(_SIZE, unique=True),
      "eval_sequences": _SIZE,
      "eval_block_steps": _SIZE,
    },
    relations=(
      *_SWEEP_RELATIONS,
      ordered("min_length", "max_length", strict=False),
      task_lengths("min_length", "eval_lengths"),
    ),
  ),
  "pathological": Schema(
    fields={
      "task": one_of(_PATHOLOGICAL_TASKS),
      "train_lengths": sequence(_SIZE, length=2),
      "memorization_lengths": sequence(_SIZE, unique=True),
      "budgets": mapping(_BUDGET_KEYS, _SIZE),
      "generalization_lengths": sequence(_SIZE, unique=True),
      "generalization_size": _SIZE,
      "generalization_runs": one_of(("solved", "all")),
      "generalization_memory_mb": _POSITIVE,
    },
    relations=(*_SWEEP_RELATIONS, _pathological_lengths, _pathological_budget),
  ),
  "threshold_grid": Schema(
    fields={
      "length": _SIZE,
      # Finite thresholds only: the unclipped column is `include_unclipped`.
      "thresholds": sequence(_POSITIVE, unique=True),
      "include_unclipped": boolean(),
      "alphas": sequence(number(ge=0), unique=True),
    },
    relations=(*_SWEEP_RELATIONS, task_lengths("length")),
  ),
  "char_lm": Schema(
    fields={
      **_NATURAL_FIELDS,
      "dataset": one_of(char_lm_config.DATASETS),
      "target_offset": _SIZE,
      "max_train_symbols": _COUNT,
      "max_eval_symbols": _COUNT,
      "lr_sgd": _POSITIVE,
      "lr_sgd_c": _POSITIVE,
      "lr_sgd_cr": _POSITIVE,
      "n_samples": _COUNT,
    },
    relations=(data_path_for(("ptb",)),),
  ),
  "polyphonic": Schema(
    fields={
      **_NATURAL_FIELDS,
      "dataset": one_of(polyphonic_config.DATASETS),
      "n_predictions": _COUNT,
    },
    relations=(data_path_for(("piano-midi", "nottingham", "musedata", "jsb")),),
  ),
  "attractors": Schema(
    fields={
      "params_file": text(),
      "params_index": integer(lo=0),
      "length": _SIZE,
      "updates": _SIZE,
      "clip_threshold": number(ge=0),  # 0: plain SGD
      "curvature_every": _SIZE,
      "lanczos_iters": _SIZE,
      "spike_factor": number(gt=1),
      "spike_window": _SIZE,
      "eval_batch": _SIZE,
      "fixed_point_starts": _SIZE,
      "fixed_point_steps": _SIZE,
      "flow_steps": _SIZE,
    },
    relations=(
      task_lengths("length"),
      lambda c: (
        [f"{_flag('params_file', c)}: no such file"]
        if c.params_file and not Path(c.params_file).expanduser().is_file()
        else []
      ),
      _params_index,
    ),
  ),
  "lyapunov": Schema(
    fields={
      "params_file": text(),
      "params_indices": sequence(integer(lo=0), min_len=0, unique=True),
      "task": one_of(("temporal_order", "temporal_order_3bit")),  # marks are inputs 0, 1
      "lengths": sequence(_SIZE, unique=True),
      "sequences": integer(2),  # a spread needs two
      "n_exponents": _SIZE,
      "warmup_fraction": number(ge=0, lt=1),
      "mark_window": _SIZE,
      "float64": boolean(),
    },
    relations=(
      task_lengths("lengths"),
      # Which models and how many exponents it holds: `trained_lyapunov.check_models`.
      lambda c: (
        [] if Path(c.params_file).expanduser().is_file()
        else [f"{_flag('params_file', c)}: no such file"]
      ),
    ),
  ),
  "bifurcation": Schema(
    fields={
      "w": number(),
      "unit": one_of(("sigmoid", "tanh")),
      "b_min": number(),
      "b_max": number(),
      "num_b": integer(2),
      "x_min": number(),
      "x_max": number(),
      "field_num_b": integer(2),
      "field_num_x": integer(2),
      "sim_num_b": _SIZE,
      "sim_num_x0": _SIZE,
      "sim_steps": _SIZE,
    },
    relations=(ordered("b_min", "b_max"), ordered("x_min", "x_max")),
  ),
  "cliff": Schema(
    fields={
      "x0": number(),
      "target": number(gt=0, lt=1),  # a value of σ
      "n_steps": _SIZE,
      "w_min": number(),
      "w_max": number(),
      "b_min": number(),
      "b_max": number(),
      "grid": integer(2),
      "starts": sequence(sequence(number(), length=2)),
      "num_random_starts": _COUNT,
      "random_box_lo": sequence(number(), length=2),
      "random_box_hi": sequence(number(), length=2),
      "solved_loss": _POSITIVE,
      "updates": _SIZE,
      "clip_threshold": _POSITIVE,
      "lanczos_iters": _SIZE,
    },
    relations=(
      ordered("w_min", "w_max"),
      ordered("b_min", "b_max"),
      lambda c: (
        [f"{_flag('random_box_lo', c)} must be below {_flag('random_box_hi', c)} in w and b"]
        if any(a >= b for a, b in zip(c.random_box_lo, c.random_box_hi))
        else []
      ),
    ),
  ),
  "mechanics": Schema(
    fields={
      "length": integer(2),
      "n_trajectories": _SIZE,
      "input_scale": number(ge=0),
      "matrix": one_of(("orthogonal", "gaussian")),
      "curve_rhos": mapping(
        ("linear", "tanh", "sigmoid"), sequence(_POSITIVE, unique=True), all_keys=True
      ),
      "rate_num_rhos": integer(2),
    }
  ),
}


# --- checking ---------------------------------------------------------------------------


def _number(text: str) -> int | float | None:
  """`text` as an int or a float (`inf` included), or None if it is not a number."""
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return None


def _split_lists(config: ml_collections.ConfigDict) -> None:
  """Comma lists from the command line as tuples: names split, and a list that is all
  numbers as numbers (`--config.thresholds=0.1,inf` arrives as strings, since `inf` is not
  a Python literal)."""
  for field, value in config.items():
    if isinstance(value, tuple) and value and all(isinstance(v, str) for v in value):
      split = tuple(p.strip() for v in value for p in v.split(",") if p.strip())
      numbers = tuple(map(_number, split))
      if split and all(n is not None for n in numbers):
        split = numbers
      if split != value:
        config[field] = split


def rules(binary: str) -> dict[str, Check]:
  """The field rules of `binary`: `FIELDS` overlaid with its own."""
  return {**FIELDS, **BINARIES[binary].fields}


def validate(config: ml_collections.ConfigDict, binary: str) -> ml_collections.ConfigDict:
  """Checks `binary`'s config; returns a normalised copy (comma lists split).

  Args:
    config: the config as the flags left it.
    binary: the binary's name, a key of `BINARIES`.

  Raises:
    ConfigError: every problem found, on one line, each naming its `--config.` flag.
  """
  try:
    config = config.copy_and_resolve_references()
  except OSError as e:  # config_flags defers a config file's load error to first use
    reason = [line.strip() for line in str(e).splitlines() if line.strip()][-1]
    raise ConfigError(f"--config: cannot load the config file ({reason})") from e
  with config.unlocked():
    _split_lists(config)
  field_rules = rules(binary)
  problems = []
  for field, value in config.items():
    check = field_rules.get(field)
    if value is None or check is None:
      continue
    if problem := check(value):
      problems.append(f"--config.{field}={_show(value)}: {problem}")
  # Relations read fields whose own checks passed only.
  if not problems:
    for relation in BINARIES[binary].relations:
      problems += list(relation(config))
  if problems:
    raise ConfigError("; ".join(problems))
  return config
