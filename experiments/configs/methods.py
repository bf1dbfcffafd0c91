"""The methods since 2013 on the paper's tasks, under one protocol (docs/methods.md).

Every method of `rnn_dynamics.methods` (a cell, an algorithm, its hyper-parameters) on
temporal order at T = 50, 100, 200 (Figure 7's task and test: batch 20, success = < 1 %
error on 10,000 fresh sequences) and on addition at T = 100, 200, each (method, task,
length) one group of `seeds` runs in one vmapped program. Where a method's paper gives no
learning rate for a task, the grid stage first tries its `lr_grid` at T = `grid_length`
on the seeds `grid_seed`, `grid_seed + 1`, … and keeps the one `methods.pick_lr` picks
for every length.

Presets, chosen with `--config=experiments/configs/methods.py:<preset>`:
  long: the protocol — every method whose cell this build has (`methods.runnable()`),
    10 seeds, up to 150,000 updates per run (Figure 7's `long` budget), the grid with 5
    seeds × 5 learning rates up to 30,000 updates at T = 50. Days on a 2-core CPU: it
    resumes anywhere and travels between machines (BUILD.md, "Carrying a long run").
  cpu: the built-in default, a few hours on a 2-core CPU (docs/methods.md gives the
    measured throughput it was sized from): the same methods at shorter lengths and
    budgets — temporal order at T = 20, 50, 100 and addition at T = 50 — 5 seeds, up to
    20,000 updates per run; the grid at T = 20 with 3 seeds up to 10,000 updates.
  test: seconds; for CI and the end-to-end tests (8 hidden units, T = 10 and 12, three
    methods of the cells every build has: the paper RNN's SGD-CR, IRNN (autodiff) and
    Adam with clipping).
Every field can be overridden on the command line, e.g. `--config.seeds=3` or
`--config.methods=rnn_sgd_cr,irnn_sgd_c`; `--config.stage=grid` runs the grid alone
(then `all` or `main` goes on from it in the same workdir).
"""

import ml_collections

from experiments.configs import fields
from experiments.configs.fields import declare
from experiments.validation import (
  SIZE,
  anything,
  integer,
  mapping,
  multiple_of,
  names,
  one_of,
  sequence,
  short_lengths,
)
from rnn_dynamics import cells, methods, paper

STAGES = ("all", "grid", "main")


def _methods_check():
  """Names of the table (`rnn_dynamics.methods.METHODS`) whose cell this build has."""
  known = names(methods.METHODS)

  def check(v):
    if problem := known(v):
      return problem
    for name in v:
      cell = methods.METHODS[name].cell
      if cell not in cells.CELLS:
        return (
          f"entry {name!r} needs cell {cell!r}, which this build does not have "
          f"(cells: {', '.join(cells.CELLS)})"
        )
    return None

  return check


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  declare(c, "preset", preset, anything())
  # 'all': the grid, then the comparison; 'grid': the grid alone; 'main': the comparison
  # alone (needs the grid finished). Which groups a session runs, not what they compute:
  # a workdir resumes under any stage.
  declare(c, "stage", "all", one_of(STAGES))
  # --- what runs: methods (rnn_dynamics/methods.py) × tasks × lengths ---
  declare(c, "methods", methods.runnable(), _methods_check())
  declare(c, "tasks", ("temporal_order", "addition"), names(methods.TASKS))
  # fixed length T per group (one compiled program per method, task and length)
  lengths = ml_collections.ConfigDict(
    dict(temporal_order=(50, 100, 200), addition=(100, 200), multiplication=(100, 200))
  )
  declare(c, "lengths", lengths, mapping(methods.TASKS, sequence(SIZE, unique=True)))
  # --- the model and training (Figure 7's: 50 units, batch 20, no momentum) ---
  # hidden units of every cell ('state': matched by state size, docs/methods.md says
  # why), or of the paper's RNN, every other cell then sized to its parameter count
  # ('parameters')
  declare(c, "n_hidden", paper.FIGURE7.n_hidden, SIZE)
  declare(c, "match", "state", one_of(methods.MATCHES))
  declare(c, "batch_size", paper.FIGURE7.batch_size, SIZE)
  declare(c, "momentum", paper.FIGURE7.momentum, fields.MOMENTUM)  # SGD's
  fields.nonfinite_guard(c)
  fields.engine(c)
  fields.zero_mistake_stop(c, False)
  # Ω for the SGD-CR methods (α and the threshold are the task's published ones:
  # rnn_dynamics.methods.task_setting)
  fields.omega(c)
  # --- the comparison ---
  declare(c, "seeds", 10, SIZE)  # runs per (method, task, length); paired across methods
  declare(c, "seed", 0, integer(0))  # base seed
  # Each (method, task, length) is its own group (or several, each a block of its seeds),
  # trained from its own fields: a workdir takes more lengths, methods or seeds later and
  # keeps the groups it has (`experiments.methods.seed_blocks`).
  fields.chooses_groups(c, "methods", "tasks", "lengths", "seeds")
  declare(c, "max_updates", 150_000, SIZE)  # budget per run
  declare(c, "chunk_size", 1000, SIZE)  # updates per compiled call (and between screens)
  # --- the learning-rate grid (methods with no published rate for a task) ---
  declare(c, "grid_length", 50, SIZE)  # T of the grid's groups
  declare(c, "grid_seeds", 5, SIZE)  # runs per learning rate
  declare(c, "grid_seed", 1000, integer(0))  # the grid's first seed (apart from `seeds`)
  declare(c, "grid_max_updates", 30_000, SIZE)  # budget per grid run
  # --- success test (paper: error < 1% on 10,000 fresh sequences) ---
  fields.success_test(c)
  # --- bookkeeping ---
  fields.bookkeeping(c, checkpoint_every_s=60.0, progress_every_s=15.0)
  if preset == "long":
    pass
  elif preset == "cpu":
    # Sized from throughput measured on this 2-core machine beside other jobs (load 6–7;
    # docs/methods.md): 370–550 run-updates/s at T = 50, about half at T = 100. Shorter
    # lengths than the protocol's, so that 12 methods fit in hours, not days.
    c.lengths.temporal_order = (20, 50, 100)  # T = 100 added later: see `chooses_groups`
    c.lengths.addition = (50,)
    c.lengths.multiplication = (50,)
    c.seeds = 5
    c.max_updates = 20_000
    c.grid_length = 20
    c.grid_seeds = 3
    c.grid_max_updates = 10_000
    c.chunk_size = 500
    c.screen_size = 500
    c.eval_batch = 500
  elif preset == "test":
    c.methods = ("rnn_sgd_cr", "irnn_sgd_c", "rnn_adam_c")
    c.n_hidden = 8
    c.lengths.temporal_order = (10, 12)
    c.lengths.addition = (10,)
    c.lengths.multiplication = (10,)
    c.seeds = 2
    c.max_updates = 200
    c.chunk_size = 100
    c.grid_length = 10
    c.grid_seeds = 2
    c.grid_max_updates = 100
    c.screen_size = 100
    c.eval_size = 200
    c.eval_batch = 100
    c.checkpoint_every_s = 0.0
    c.progress_every_s = 0.0
  else:
    raise ValueError(f"unknown preset {preset!r}; choose 'long', 'cpu' or 'test'")
  return c


def _lengths(c: ml_collections.ConfigDict):
  """Every task run has lengths, each at least the task's shortest; so has the grid."""
  for task in c.tasks:
    if task not in c.lengths:
      yield f"--config.tasks={','.join(c.tasks)}: {task} has no --config.lengths.{task}"
      continue
    yield from short_lengths(f"lengths.{task}", c.lengths[task], task)
    yield from short_lengths("grid_length", c.grid_length, task)


RELATIONS = (
  *fields.SWEEP_RELATIONS,
  multiple_of("grid_max_updates", "chunk_size"),
  _lengths,
)
