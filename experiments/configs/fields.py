"""How a config declares its fields, and the field blocks that several configs share.

A config module adds each field with `declare(c, name, default, rule)`: the default goes
into the `ConfigDict` (and so into `config.json`), the rule (a check from
`experiments.validation`) is recorded beside it, outside the config, for
`experiments.validation.validate` to check the field against. A field's rule is written
once, where the field is; `declared(get_config)` reads them back. Overrides per preset
are plain assignments (`c.lr = 0.1`).

Each block function adds its fields to a config where it is called, so a config still
reads top to bottom in the order its `config.json` keeps. Values a config changes per
preset stay in that config.
"""

from collections.abc import Mapping
from typing import Any

import ml_collections

from experiments.validation import (  # `declare` lives with the rules it records
  COUNT,
  SECONDS,
  SIZE,
  Check,
  declare,
  anything,
  boolean,
  eval_blocks,
  integer,
  multiple_of,
  number,
  one_of,
  ordered,
)
from rnn_dynamics import regularizers
from rnn_dynamics.synthetic import train
from rnn_dynamics.workdir import CHOOSES_GROUPS, FORMER_VALUES

# Rules that fields of several configs share (the generic ones are `experiments.validation`'s).
MOMENTUM = number(ge=0, lt=1)
THRESHOLD = number(gt=0, infinite=True)
"""A clipping threshold; ∞: no clipping (Ω without clipping, docs/reference.md §4)."""
LR_HALVING = one_of(("train", "valid", "none"))
"""When the natural fits halve a run's learning rate (`rnn_dynamics.natural.fit`)."""
COST = one_of(("mean", "sum"))
"""The natural fits' cost over a segment: per-step mean or sum."""


def added(
  c: ml_collections.ConfigDict, name: str, value: Any, rule: Check, *, former: Any
) -> None:
  """Declares field `name` (= `value`, checked by `rule`), a field that configs saved
  before it lack.

  `former` is the value that does what the code did before the field existed: a saved
  config without the field resumes its workdir only where the field holds `former`
  (`rnn_dynamics.workdir.FORMER_VALUES`), so adding a field never strands a long run.
  Call it where the field is defined, e.g.
  `fields.added(c, "warmup", 0, validation.COUNT, former=0)`.
  """
  declare(c, name, value, rule)
  if FORMER_VALUES not in c:
    declare(c, FORMER_VALUES, ml_collections.ConfigDict(), anything())
  c[FORMER_VALUES][name] = former


def chooses_groups(c: ml_collections.ConfigDict, *names: str) -> None:
  """Names fields of `c` that choose which of the binary's groups run, never what a group
  computes: a workdir resumes under a config that differs there
  (`rnn_dynamics.workdir.CHOOSES_GROUPS`), so a comparison grows by a length or a method
  in the same workdir. Only for fields no group's training reads (each group's own spec
  is checked on its own)."""
  unknown = [n for n in names if n not in c]
  if unknown:
    raise KeyError(f"chooses_groups names fields the config lacks: {unknown}")
  declare(c, CHOOSES_GROUPS, tuple(names), anything())


def nonfinite_guard(c: ml_collections.ConfigDict) -> None:
  """`nonfinite_guard`, as in the authors' code (every preset)."""
  # Non-finite guard (the original code's fallback on NaN/Inf/huge norms): "original" =
  # norm-clipped runs only, as in the authors' code; "always" = every run (more robust
  # than the paper's plain SGD); "never".
  declare(c, "nonfinite_guard", "original", one_of(train.GUARD_MODES))


def zero_mistake_stop(c: ml_collections.ConfigDict, default: bool) -> None:
  """`zero_mistake_stop`, the synthetic sweeps' success criterion."""
  # True: success needs 0 mistakes on the test (the original code's stop and the ICML
  # text's "0 misclassified sequences"); False: the paper's < success_error. Zero-mistake
  # runs are reported as strict_solved either way.
  declare(c, "zero_mistake_stop", default, boolean())


def omega(c: ml_collections.ConfigDict) -> None:
  """Ω's form and bound (`rnn_dynamics.regularizers`; its weight is each config's)."""
  # 'original' (squared ratio, mean; the published α were tuned with it) or 'paper'
  # (eq. 9; docs/reference.md §2); Ω skips the terms whose adjoint has a squared norm
  # below the bound.
  declare(c, "omega_form", "original", one_of(regularizers.OMEGA_FORMS))
  declare(c, "omega_bound", 1e-20, number(ge=0))


def engine(c: ml_collections.ConfigDict) -> None:
  """The synthetic sweep's engine settings (`rnn_dynamics.synthetic.train.make_train`)."""
  # Engine: lengths drawn in [min_length, max_length) run in this many length buckets
  # (cost follows the drawn length); decided runs leave the program (compaction:
  # the same experiment, less work on CPUs; BUILD.md); scan steps per loop iteration.
  declare(c, "length_buckets", 8, SIZE)
  declare(c, "compaction", True, boolean())
  declare(c, "scan_unroll", 1, SIZE)


def success_test(c: ml_collections.ConfigDict) -> None:
  """The synthetic tasks' success test (paper: error < 1% on 10,000 fresh sequences)."""
  declare(c, "screen_size", 1000, SIZE)  # a cheap screen after every chunk; passes are
  declare(c, "eval_size", 10_000, SIZE)  # confirmed on eval_size sequences
  declare(c, "eval_batch", 1000, SIZE)  # sequences evaluated at once
  declare(c, "success_error", 0.01, number(gt=0, le=1))


def bookkeeping(
  c: ml_collections.ConfigDict, *, checkpoint_every_s: float, progress_every_s: float
) -> None:
  """How often a training binary saves its state and logs its progress (seconds)."""
  declare(c, "checkpoint_every_s", checkpoint_every_s, SECONDS)
  declare(c, "progress_every_s", progress_every_s, SECONDS)


def lyapunov_traces(c: ml_collections.ConfigDict) -> None:
  """The top Lyapunov exponents the synthetic sweep traces after every chunk
  (`rnn_dynamics.synthetic.sweep`: fresh sequences at the run's current parameters).

  They change no run, only what the traces hold, so a workdir resumes under other values
  (`rnn_dynamics.workdir.config.VOLATILE`); its earlier chunks keep what they logged."""
  # How many (0: none, and no cost; at most 5), measured on how many fresh sequences.
  declare(c, "lyapunov_k", 2, integer(0, 5))
  declare(c, "lyapunov_sequences", 8, SIZE)


def flossing(c: ml_collections.ConfigDict) -> None:
  """Gradient flossing's settings, for the algorithms that floss (`sgd_cf`;
  `rnn_dynamics.flossing`, docs/reference.md §6). They change nothing for the others, so
  a workdir saved before them resumes under their defaults (`added`)."""
  # weight · Σ_{i≤k} λ_i² added to the loss, the top k exponents of the update's first
  # floss_sequences sequences (its first quarter of steps as warm-up)
  added(c, "floss_weight", 1.0, number(ge=0), former=1.0)
  added(c, "floss_k", 5, SIZE, former=5)
  added(c, "floss_sequences", 1, SIZE, former=1)
  # On the updates i with i mod floss_every < floss_for, for floss_phases phases (0: no
  # limit). The default is the source's timeline: 3 phases of 500 flossing updates, 100
  # updates apart (there, flossing-only updates before and early in training).
  added(c, "floss_every", 600, SIZE, former=600)
  added(c, "floss_for", 500, SIZE, former=500)
  added(c, "floss_phases", 3, COUNT, former=3)


# What the flossing and trace settings must respect (configs that have those fields).
FLOSSING_RELATIONS = (
  ordered("floss_for", "floss_every", strict=False),
  ordered("floss_sequences", "batch_size", strict=False),
  ordered("floss_k", "n_hidden", strict=False),
)
LYAPUNOV_RELATIONS = (ordered("lyapunov_k", "n_hidden", strict=False),)


# The synthetic sweeps' relations (every config that has `success_test`'s fields):
# whole chunks of updates and whole evaluation blocks.
SWEEP_RELATIONS = (
  multiple_of("max_updates", "chunk_size"),
  eval_blocks("screen_size", "eval_batch"),
  eval_blocks("eval_size", "eval_batch"),
)


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
