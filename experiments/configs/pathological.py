"""The pathological tasks of §4.1.2 and the supplementary material (docs/reference.md §4).

Choose the task with `--config.task=`: addition, multiplication, temporal_order,
temporal_order_3bit, permutation, or memorization (both the 5-bit and the 20-bit variant;
`memorization_5bit` / `memorization_20bit` for one). Every task but memorization trains
one model per run on lengths drawn per update in `train_lengths`; memorization trains
one model per gap length in `memorization_lengths` (a group each).

Presets, chosen with `--config=experiments/configs/pathological.py:<preset>`:
  paper: the supplementary set-up — the task's hidden size, initialisation, learning
    rate, α and clipping threshold (`rnn_dynamics.paper.PATHOLOGICAL`), lengths in
    [50, 200), memorization gaps 50/100/150/200, 5 seeds, up to 5M updates, the success
    test and the generalization test on 10,000 fresh sequences. Needs a GPU/TPU.
  cpu: the built-in default, each task's sweep sized to finish in under an hour on a
    2-core CPU. Reduced, and nothing else: training lengths [10, 30) instead of
    [50, 200) (memorization gaps 10 and 20 instead of 50–200), 3 seeds instead of 5, a
    budget of 30k–150k updates per run instead of 5M (per task, `budgets`), the
    success test on 2,000 sequences instead of 10,000 and the generalization test on
    1,000 sequences at lengths up to 500. Hidden sizes, initialisations, learning
    rates, α and thresholds stay the paper's, so the budget, not the method, limits it.
    Budgets were sized from throughput on a 2-core CPU shared with another sweep
    (600–770 run-updates/s with 50 hidden units, 185 for permutation); on an idle 2-core
    CPU every task's sweep takes 1–7 min (addition ~4,400 run-updates/s for its 9 runs)
    and memorization's four groups ~10 min.
  long: the paper's lengths and test sizes, SGD-CR alone, 5 seeds, up to 1M updates per
    run: 3.5-10 h per task on a shared 2-core CPU if no run solves early (BUILD.md says what it
    trades away).
  test: seconds; for CI and the end-to-end tests (tiny model, a few hundred updates).
Every field can be overridden on the command line, e.g. `--config.seeds=2`. The fields
left None (`n_hidden`, `init`, `lr`, `alpha`, `clip`, `elementwise_clip`) take the
task's published value when the experiment starts (a registered task the paper does not
have: its entry in `SETUPS`); the resolved config is what `<workdir>/config.json` keeps.
"""

from collections.abc import Iterable

import ml_collections
from ml_collections.config_dict import placeholder

from experiments.configs import fields
from experiments.configs.fields import declare
from experiments.validation import (
  POSITIVE,
  SIZE,
  anything,
  flag,
  integer,
  mapping,
  names,
  number,
  one_of,
  sequence,
  short_lengths,
)
from rnn_dynamics import algorithms, paper, rnn, tasks
from rnn_dynamics.errors import ConfigError

# Updates per run in the cpu preset: the tasks learn at different speeds (lr 0.01 for
# addition, multiplication and memorization, 0.001 for the others).
_CPU_BUDGETS = {
  "addition": 150_000,  # 327 s measured on an idle 2-core CPU
  "multiplication": 150_000,  # 331 s
  "temporal_order": 150_000,  # 149 s (every run solved by 70k)
  "temporal_order_3bit": 100_000,  # 63 s (every run solved by 10k)
  "permutation": 60_000,  # 379 s (100 hidden units, 100 inputs)
  "memorization": 30_000,  # per group; 4 groups (2 variants × 2 gaps), sequences T + 2P
}

# The set-ups of registered tasks the paper does not have (the paper's own are
# `rnn_dynamics.paper.PATHOLOGICAL`): what the fields left None take, as there.
SETUPS: dict[str, dict] = {}


def _tasks() -> tuple[str, ...]:
  """What `--config.task` takes: every registered task, the paper's first, with
  memorization standing for its two variants."""
  return tuple(
    dict.fromkeys(
      v for t in (*paper.PATHOLOGICAL_TASKS, *tasks.TASKS) for v in (t, *paper.variants(t))
    )
  )


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  declare(c, "preset", preset, anything())
  # --- the task ---
  # see the module docstring; 'memorization' runs both variants
  declare(c, "task", "addition", one_of(_tasks()))
  # --- the model and SGD; None: the task's published value (docs/reference.md §4) ---
  declare(c, "n_hidden", placeholder(int), SIZE)  # hidden units
  # 'sigmoid', 'basic_tanh' or 'smart_tanh' (docs/reference.md §1)
  declare(c, "init", placeholder(str), one_of(rnn.INITS))
  declare(c, "lr", placeholder(float), POSITIVE)  # constant learning rate, no momentum
  declare(c, "alpha", placeholder(float), number(ge=0))  # Ω weight of SGD-CR (constant)
  # norm-clipping threshold of SGD-C and SGD-CR
  declare(c, "clip", placeholder(float), fields.THRESHOLD)
  declare(c, "momentum", 0.0, fields.MOMENTUM)
  declare(c, "batch_size", 20, SIZE)
  # --- the algorithms, all runs of a group in one vmapped program ---
  # SGD-CR beside its two ablations: SGD-C (the same norm clipping, no Ω) and Mikolov's
  # element-wise clipping (no Ω), so the table shows what Ω buys. 'sgd' may be added.
  declare(c, "algorithms", ("sgd_c", "sgd_elementwise", "sgd_cr"), names(algorithms.PAPER_ALGORITHMS))
  # Bound on every gradient entry for 'sgd_elementwise'. The paper gives none; None
  # uses the norm threshold `clip`.
  declare(c, "elementwise_clip", placeholder(float), fields.THRESHOLD)
  fields.nonfinite_guard(c)
  fields.engine(c)
  fields.zero_mistake_stop(c, False)
  fields.omega(c)
  # --- lengths ---
  # [min, max): drawn per update, one model for all lengths
  declare(c, "train_lengths", (50, 200), sequence(SIZE, length=2))
  # gap T: one model per length
  declare(c, "memorization_lengths", (50, 100, 150, 200), sequence(SIZE, unique=True))
  # --- the sweep ---
  declare(c, "seeds", 5, SIZE)  # random seeds per (algorithm, lengths); paired across algorithms
  declare(c, "seed", 0, integer(0))  # base seed
  declare(c, "max_updates", placeholder(int), SIZE)  # budget per run; None: `budgets[task]`
  budgets = ml_collections.ConfigDict({t: 5_000_000 for t in _CPU_BUDGETS})
  budget_keys = tuple(dict.fromkeys(map(paper.experiment_task, _tasks())))
  declare(c, "budgets", budgets, mapping(budget_keys, SIZE))  # per task
  declare(c, "chunk_size", 1000, SIZE)  # updates per compiled call (and between screens)
  # --- success test (paper: error < 1% on 10,000 fresh sequences) ---
  fields.success_test(c)
  # --- generalization: fresh sequences at fixed lengths, training lengths and beyond ---
  # (for memorization these are gap lengths T, shorter and longer than the trained one)
  declare(
    c,
    "generalization_lengths",
    (50, 100, 150, 200, 250, 400, 500, 1000, 2000, 5000),
    sequence(SIZE, unique=True),
  )
  declare(c, "generalization_size", 10_000, SIZE)  # sequences per length
  # evaluate 'solved' models only, or 'all'
  declare(c, "generalization_runs", "solved", one_of(("solved", "all")))
  # bound on one evaluation block's activations
  declare(c, "generalization_memory_mb", 512, POSITIVE)
  # --- bookkeeping ---
  fields.bookkeeping(c, checkpoint_every_s=60.0, progress_every_s=15.0)
  if preset == "paper":
    pass
  elif preset == "cpu":
    c.train_lengths = (10, 30)
    c.memorization_lengths = (10, 20)
    c.seeds = 3
    c.budgets = ml_collections.ConfigDict(_CPU_BUDGETS)
    c.chunk_size = 500
    c.screen_size = 500
    c.eval_size = 2000
    c.eval_batch = 500
    c.generalization_lengths = (10, 20, 30, 50, 100, 200, 500)
    c.generalization_size = 1000
    c.generalization_memory_mb = 128
  elif preset == "long":
    # The paper's lengths on a 2-core CPU: one SGD-CR model per seed for [50, 200), 5
    # seeds, the paper's test sizes; a budget of 1M updates per run (5M in the paper).
    # 3.5-10 h per task here when no run solves early (addition: 140-390 run-updates/s,
    # measured on 2 shared cores; BUILD.md): it resumes after an interruption, but needs
    # a machine that keeps its workdir for that long.
    # The baselines are left out (add them with
    # --config.algorithms=sgd_c,sgd_elementwise,sgd_cr at 3x the cost).
    c.algorithms = ("sgd_cr",)
    c.budgets = ml_collections.ConfigDict({t: 1_000_000 for t in _CPU_BUDGETS})
  elif preset == "test":
    c.n_hidden = 8
    c.seeds = 2
    c.train_lengths = (10, 14)  # temporal order and the arithmetic tasks need T ≥ 10
    c.memorization_lengths = (4,)
    c.max_updates = 100
    c.chunk_size = 50
    c.screen_size = 50
    c.eval_size = 100
    c.eval_batch = 50
    c.generalization_lengths = (12, 20)
    c.generalization_size = 50
    c.generalization_runs = "all"  # nothing solves in 100 updates; exercise the path
    c.generalization_memory_mb = 16
    c.checkpoint_every_s = 600.0  # only the final one (interrupted runs are sweep's tests)
    c.progress_every_s = 0.0
  else:
    raise ValueError(f"unknown preset {preset!r}; choose 'paper', 'long', 'cpu' or 'test'")
  # Filled per group by the experiment (one compiled program per group).
  declare(c, "min_length", c.train_lengths[0], SIZE)
  declare(c, "max_length", c.train_lengths[1], SIZE)
  return c


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The config with every field left None set to the task's published value.

  A registered task the paper does not have (`paper.pathological_setup` is None) takes
  its entry in `SETUPS`; without one, every field must be given.
  """
  cfg = config.copy_and_resolve_references()
  published_fields = ("n_hidden", "init", "lr", "alpha", "clip")
  published = paper.pathological_setup(cfg.task)
  published = published._asdict() if published else SETUPS.get(cfg.task)
  if published is None and (missing := [f for f in published_fields if cfg[f] is None]):
    flags = ", ".join(f"--config.{f}" for f in missing)
    raise ConfigError(
      f"--config.task={cfg.task} has no published set-up (rnn_dynamics.paper): pass {flags}"
    )
  for field in published_fields:
    if cfg[field] is None:
      cfg[field] = published[field]
  if cfg.elementwise_clip is None:
    cfg.elementwise_clip = cfg.clip
  if cfg.max_updates is None:
    key = paper.experiment_task(cfg.task)
    if key not in cfg.budgets:
      raise ConfigError(f"--config.task={cfg.task} has no budget: pass --config.max_updates")
    cfg.max_updates = cfg.budgets[key]
  if cfg.generalization_runs not in ("solved", "all"):
    raise ValueError(
      f"generalization_runs must be 'solved' or 'all', not {cfg.generalization_runs!r}"
    )
  return cfg


def groups(cfg: ml_collections.ConfigDict) -> list[tuple[str, str, int, int]]:
  """`(group, task variant, min_length, max_length)`: one compiled program each."""
  out = []
  for variant in paper.variants(cfg.task):
    if variant.startswith("memorization"):
      out += [(f"{variant}_T{t}", variant, int(t), int(t)) for t in cfg.memorization_lengths]
    else:
      lo, hi = (int(x) for x in cfg.train_lengths)
      out.append((variant, variant, lo, hi))
  return out


def _lengths(c: ml_collections.ConfigDict) -> Iterable[str]:
  # Memorization's lengths are gaps, the others' training lengths: each against its
  # own variants' shortest length.
  if c.task not in _tasks():
    return
  for variant in paper.variants(c.task):
    trained = "memorization_lengths" if variant.startswith("memorization") else "train_lengths"
    for field in (trained, "generalization_lengths"):
      yield from short_lengths(field, c[field], variant)
  lo, hi = c.train_lengths
  if not c.task.startswith("memorization") and lo > hi:
    yield f"{flag('train_lengths', c)}: must be (min, max) with min ≤ max"


def _budget(c: ml_collections.ConfigDict) -> Iterable[str]:
  # With max_updates left None the task's entry of `budgets` is the budget.
  if c.max_updates is not None or c.task not in _tasks():
    return
  key = paper.experiment_task(c.task)
  if key in c.budgets and c.budgets[key] % c.chunk_size:
    yield f"--config.budgets.{key}={c.budgets[key]} must be a multiple of {flag('chunk_size', c)}"


RELATIONS = (*fields.SWEEP_RELATIONS, _lengths, _budget)
