"""One model for many lengths (§4.1.1): train on lengths in [50, 200), test up to 5000 steps.

docs/reference.md §4: 50 tanh units, `basic_tanh`, SGD-CR with the Figure 7 hyper-parameters, trained
on temporal order with a fresh length drawn for every update; the paper reports 100%
success over 5 seeds, and 0 errors out of 10,000 sequences at each of the evaluation
lengths for the same models.

Presets, chosen with `--config=experiments/configs/generalization.py:<preset>`:
  paper: the published set-up — 5 seeds, up to 5M updates, 10,000 test sequences at each
    of 50 … 5000 steps. Needs a GPU/TPU (or days of CPU).
  cpu: about 10 minutes on a 2-core CPU shared with other jobs (a few minutes on an idle
    one). Reduced: 2 seeds (not 5), 30,000 updates per run (0.6% of the paper's 5M; the
    models will rarely reach the 1% success criterion in that budget, so expect errors
    near chance, 75%, at every length), 1,000 (not 10,000) sequences for the success
    test and for each evaluation length. Unchanged: the model, the algorithm, its
    hyper-parameters, the training length range and the evaluation lengths.
  long: the paper's set-up but for the budget (up to 1M updates per run instead of 5M):
    a few hours on a 2-core CPU (BUILD.md).
  test: seconds; for CI and the end-to-end test (lengths [10, 20), a few short
    evaluation lengths, 200 sequences each).
Every field can be overridden on the command line, e.g. `--config.seeds=3`.
"""

import ml_collections

from experiments.configs import fields
from experiments.configs.fields import declare
from experiments.validation import (
  POSITIVE,
  SIZE,
  anything,
  integer,
  number,
  one_of,
  ordered,
  sequence,
  task_lengths,
)
from rnn_dynamics import algorithms, rnn, tasks


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  declare(c, "preset", preset, anything())
  # --- the model and the task ---
  declare(c, "task", "temporal_order", one_of(tasks.TASKS))
  declare(c, "n_hidden", 50, SIZE)  # hidden units (paper: 50 tanh units)
  # docs/reference.md §1: tanh, every weight N(0, 0.1²)
  declare(c, "init", "basic_tanh", one_of(rnn.INITS))
  # --- the algorithm: SGD-CR with the Figure 7 hyper-parameters (docs/reference.md §4) ---
  # 'sgd', 'sgd_c' or 'sgd_cr' (rnn_dynamics.algorithms.PAPER_ALGORITHMS)
  declare(c, "algorithm", "sgd_cr", one_of(algorithms.PAPER_ALGORITHMS))
  declare(c, "lr", 0.01, POSITIVE)  # constant, no momentum
  declare(c, "momentum", 0.0, fields.MOMENTUM)
  declare(c, "batch_size", 20, SIZE)
  # clipping threshold; the kind is the algorithm's (rnn_dynamics.algorithms)
  declare(c, "clip", 1.0, fields.THRESHOLD)
  fields.nonfinite_guard(c)
  fields.engine(c)
  # Success = no mistake at all on the test, not only < 1 %.
  fields.zero_mistake_stop(c, True)
  declare(c, "alpha", 4.0, number(ge=0))  # Ω weight (paper text: 4; original code's default: 2)
  fields.omega(c)
  # --- training lengths: every update draws T uniformly in [min_length, max_length) ---
  # Half-open as in the original code (rnn_dynamics.synthetic.train._draw_length): 50..199; the
  # paper's "between 50 and 200". Set max_length=201 to include 200 itself.
  declare(c, "min_length", 50, SIZE)
  declare(c, "max_length", 200, SIZE)
  # --- the runs ---
  declare(c, "seeds", 5, SIZE)  # independent models, trained together in one vmapped program
  declare(c, "seed", 0, integer(0))  # base seed
  declare(c, "max_updates", 5_000_000, SIZE)  # budget per run
  declare(c, "chunk_size", 1000, SIZE)  # updates per compiled call (and between screens)
  # --- success test in training (paper: error < 1% on 10,000 fresh sequences, each at
  # its own length drawn from the training range) ---
  fields.success_test(c)
  # --- generalization: every trained model on fresh sequences of each fixed length ---
  declare(
    c,
    "eval_lengths",
    (50, 100, 150, 200, 250, 500, 1000, 2000, 3000, 5000),
    sequence(SIZE, unique=True),
  )
  declare(c, "eval_sequences", 10_000, SIZE)  # per length (the same sequences for every model)
  # Memory bound of the evaluation: sequences × steps in one block, per model (a 5000-step
  # block then holds 40 sequences; its states take 40 × 5000 × n_hidden floats).
  declare(c, "eval_block_steps", 200_000, SIZE)
  # --- bookkeeping ---
  fields.bookkeeping(c, checkpoint_every_s=60.0, progress_every_s=15.0)
  if preset == "paper":
    pass
  elif preset == "cpu":
    c.seeds = 2
    c.max_updates = 30_000
    c.chunk_size = 500
    c.screen_size = 500
    c.eval_size = 1000
    c.eval_batch = 500
    c.eval_sequences = 1000
  elif preset == "long":
    # The paper's experiment on a 2-core CPU in a few hours (BUILD.md): 5 seeds, the
    # 10,000-sequence tests, the zero-mistake stop; up to 1M updates per run (5M in the
    # paper; the authors' own log solves at 336k).
    c.max_updates = 1_000_000
  elif preset == "test":
    c.seeds = 2
    c.min_length = 10
    c.max_length = 20
    c.max_updates = 200
    c.chunk_size = 100
    c.screen_size = 100
    c.eval_size = 200
    c.eval_batch = 100
    c.eval_lengths = (10, 20, 40)
    c.eval_sequences = 200
    c.eval_block_steps = 2000
    c.checkpoint_every_s = 0.0
    c.progress_every_s = 0.0
  else:
    raise ValueError(f"unknown preset {preset!r}; choose 'paper', 'long', 'cpu' or 'test'")
  return c


RELATIONS = (
  *fields.SWEEP_RELATIONS,
  ordered("min_length", "max_length", strict=False),
  task_lengths("min_length", "eval_lengths"),
)
