"""Field blocks that several configs share, written once.

Each function adds its fields to a config where it is called, so a config still reads
top to bottom in the order its `config.json` keeps. Values a config changes per preset
stay in that config.
"""

from collections.abc import Mapping
from typing import Any

import ml_collections

from rnn_dynamics.workdir import FORMER_VALUES


def added(c: ml_collections.ConfigDict, name: str, value: Any, *, former: Any) -> None:
  """Adds field `name` (= `value`) to `c`, a field that configs saved before it lack.

  `former` is the value that does what the code did before the field existed: a saved
  config without the field resumes its workdir only where the field holds `former`
  (`rnn_dynamics.workdir.FORMER_VALUES`), so adding a field never strands a long run.
  Call it where the field is defined, e.g. `fields.added(c, "warmup", 0, former=0)`.
  """
  c[name] = value
  if FORMER_VALUES not in c:
    c[FORMER_VALUES] = ml_collections.ConfigDict()
  c[FORMER_VALUES][name] = former


def nonfinite_guard(c: ml_collections.ConfigDict) -> None:
  """`nonfinite_guard`, as in the authors' code (every preset)."""
  # Non-finite guard (the original code's fallback on NaN/Inf/huge norms): "original" =
  # norm-clipped runs only, as in the authors' code; "always" = every run (more robust
  # than the paper's plain SGD); "never".
  c.nonfinite_guard = "original"


def engine(c: ml_collections.ConfigDict) -> None:
  """The synthetic sweep's engine settings (`rnn_dynamics.train.make_train`)."""
  # Engine: lengths drawn in [min_length, max_length) run in this many length buckets
  # (cost follows the drawn length); decided runs leave the program (compaction:
  # the same experiment, less work on CPUs; BUILD.md); scan steps per loop iteration.
  c.length_buckets = 8
  c.compaction = True
  c.scan_unroll = 1


def success_test(c: ml_collections.ConfigDict) -> None:
  """The synthetic tasks' success test (paper: error < 1% on 10,000 fresh sequences)."""
  c.screen_size = 1000  # cheap screen after every chunk; passes are confirmed below
  c.eval_size = 10_000
  c.eval_batch = 1000  # sequences evaluated at once
  c.success_error = 0.01


def fill_placeholders(
  config: ml_collections.ConfigDict, setup: Mapping[str, Any]
) -> ml_collections.ConfigDict:
  """A copy with every field left unset (None) taken from `setup` (a published set-up)
  and `algorithms` as a tuple of names."""
  c = config.copy_and_resolve_references()
  for field, value in setup.items():
    if c[field] is None:
      c[field] = value
  # `--config.algorithms=sgd_c,sgd_cr` arrives as one comma-joined string.
  c.algorithms = tuple(a.strip() for item in c.algorithms for a in item.split(",") if a.strip())
  return c
