"""Every binary's config checked in one place, before any work and before any write.

A binary's config module (`experiments/configs/<binary>.py`) declares each field beside
its default with the rule it must pass (`experiments.configs.fields.declare`), and its
cross-field `RELATIONS` (multiples, ranges, lengths against the task's shortest
well-formed length, data files). This module holds what those declarations are built
from (the checks of one value, e.g. `integer`, `number`, `one_of`, and the relations,
e.g. `multiple_of`) and `validate`, which walks a config: every field against its rule,
then, if they all pass, the relations. A field without a rule is skipped (a test checks
that every preset's fields have one). A field left `None` is a placeholder that takes its
published value later (`pathological`, `char_lm`, `polyphonic`), which is valid by
construction. The rules live outside the config, so `config.json` holds values only.

Checking also normalises: a tuple-of-names field given on the command line as
`--config.inits=basic_tanh,smart_tanh` arrives from `config_flags` as one comma-joined
string and is split, as `--config.lengths=20,40` already is for numbers.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import importlib
import math
import numbers
import pkgutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from rnn_dynamics import tasks
from rnn_dynamics.errors import ConfigError

__all__ = [
  "BINARIES",
  "COUNT",
  "POSITIVE",
  "SECONDS",
  "SIZE",
  "Check",
  "Relation",
  "Schema",
  "anything",
  "boolean",
  "data_path_for",
  "declare",
  "declared",
  "either",
  "eval_blocks",
  "flag",
  "integer",
  "is_int",
  "mapping",
  "multiple_of",
  "names",
  "number",
  "one_of",
  "ordered",
  "rules",
  "schema",
  "sequence",
  "short_lengths",
  "task_lengths",
  "task_min_length",
  "text",
  "validate",
]

Check = Callable[[Any], str | None]
"""A field's value → what is wrong with it (a phrase: "must be …"), or None."""
Relation = Callable[[ml_collections.ConfigDict], Iterable[str]]
"""A whole config → its problems, each naming the flags involved."""


# --- checks of one value ---------------------------------------------------------------


def is_int(v) -> bool:
  return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
  return isinstance(v, numbers.Real) and not isinstance(v, bool)


def integer(lo: int | None = None, hi: int | None = None) -> Check:
  """An int in [lo, hi] (either end open when None)."""

  def check(v):
    if not is_int(v):
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


COUNT = integer(0)
"""How many (0: none, or all where the field says so)."""
SIZE = integer(1)
SECONDS = number(ge=0)
POSITIVE = number(gt=0)


# --- relations between fields ----------------------------------------------------------


def flag(field: str, config) -> str:
  """`--config.<field>=<value>`, as a problem names a field."""
  return f"--config.{field}={_show(config[field])}"


def _show(v) -> str:
  if isinstance(v, (tuple, list)):
    return ",".join(map(_show, v))
  return str(v)


def multiple_of(field: str, of: str) -> Relation:
  """`field` is a multiple of `of` (e.g. the budget of whole chunks)."""

  def relation(c):
    if field in c and of in c and c[field] is not None and c[field] % c[of]:
      yield f"{flag(field, c)} must be a multiple of {flag(of, c)}"

  return relation


def eval_blocks(field: str, block: str) -> Relation:
  """`field` sequences split into whole evaluation blocks of `block` (or one smaller
  block, as `train.make_train(...).evaluate` does)."""

  def relation(c):
    if field in c and block in c and c[field] % min(c[block], c[field]):
      yield f"{flag(field, c)} must be a multiple of {flag(block, c)}"

  return relation


def ordered(lo: str, hi: str, *, strict: bool = True) -> Relation:
  """`lo < hi` (or `lo ≤ hi`)."""

  def relation(c):
    if lo in c and hi in c and (c[lo] >= c[hi] if strict else c[lo] > c[hi]):
      yield f"{flag(lo, c)} must be {'<' if strict else '≤'} {flag(hi, c)}"

  return relation


def task_min_length(name: str) -> int:
  """The shortest well-formed sequence length of task `name`."""
  return tasks.get_task(name).min_length


def short_lengths(field: str, value, task: str) -> Iterable[str]:
  """The problem, if any, with `--config.<field>=<value>` (a length or several) where a
  length is shorter than task `task`'s shortest well-formed sequence."""
  least = task_min_length(task)
  lengths = value if isinstance(value, (tuple, list)) else (value,)
  if any(is_int(v) and v < least for v in lengths):
    yield f"--config.{field}={_show(value)}: {task} needs lengths ≥ {least}"


def task_lengths(*fields: str, task_field: str = "task") -> Relation:
  """Every length in `fields` is at least the task's shortest well-formed length."""

  def relation(c):
    if c[task_field] not in tasks.TASKS:
      return  # reported by the task field's own check
    for field in fields:
      yield from short_lengths(field, c[field], c[task_field])

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
      yield f"{flag('data_path', c)}: no such file or folder"

  return relation


# --- declaring fields (the config modules call `declare`, via configs/fields.py) ---------

# The rules of the fields declared while `declared` runs a `get_config`.
_RULES: contextvars.ContextVar[dict[str, Check] | None] = contextvars.ContextVar(
  "rules", default=None
)


def declare(c: ml_collections.ConfigDict, name: str, value: Any, rule: Check) -> None:
  """Adds field `name` (= `value`) to `c`; `rule` is what its values must pass.

  Declare every field outside the presets' branches, so every preset has it.
  """
  c[name] = value
  if (rules := _RULES.get()) is not None:
    rules[name] = rule


def declared(get_config: Callable[[], ml_collections.ConfigDict]) -> dict[str, Check]:
  """Field → rule of every field `get_config()` (its default preset) declares."""
  with _recording() as rules:
    get_config()
  return rules


@contextlib.contextmanager
def _recording() -> Iterator[dict[str, Check]]:
  rules: dict[str, Check] = {}
  token = _RULES.set(rules)
  try:
    yield rules
  finally:
    _RULES.reset(token)


# --- the binaries ---------------------------------------------------------------------

BINARIES: tuple[str, ...] = tuple(
  sorted(
    m.name
    for m in pkgutil.iter_modules([str(Path(__file__).parent / "configs")])
    if m.name != "fields"
  )
)
"""The binaries with a config module, `experiments/configs/<binary>.py`."""


@dataclasses.dataclass(frozen=True)
class Schema:
  """One binary's rules: a rule per field, then cross-field relations."""

  fields: Mapping[str, Check] = dataclasses.field(default_factory=dict)
  relations: Sequence[Relation] = ()


def schema(binary: str) -> Schema:
  """`binary`'s rules, read from its config module: the fields its `get_config` declares
  and its `RELATIONS`."""
  module = importlib.import_module(f"experiments.configs.{binary}")
  return Schema(
    fields=declared(module.get_config),
    relations=tuple(getattr(module, "RELATIONS", ())),
  )


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
  """The field rules of `binary`: field → rule."""
  return dict(schema(binary).fields)


def validate(config: ml_collections.ConfigDict, binary: str) -> ml_collections.ConfigDict:
  """Checks `binary`'s config; returns a normalised copy (comma lists split).

  Args:
    config: the config as the flags left it.
    binary: the binary's name, one of `BINARIES`.

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
  binary_schema = schema(binary)
  problems = []
  for field, value in config.items():
    check = binary_schema.fields.get(field)
    if value is None or check is None:
      continue
    if problem := check(value):
      problems.append(f"--config.{field}={_show(value)}: {problem}")
  # Relations read fields whose own checks passed only.
  if not problems:
    for relation in binary_schema.relations:
      problems += list(relation(config))
  if problems:
    raise ConfigError("; ".join(problems))
  return config
