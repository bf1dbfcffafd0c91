"""Sensitivity to the clipping threshold, with and without Ω (§3.2 and its footnote).

Temporal order at one length with Figure 7's set-up (50 hidden, lr 0.01, batch 20,
original-form Ω), trained with SGD-CR over a grid of clipping thresholds × Ω weights α ×
seeds, every run in one vmapped program. α = 0 is plain norm clipping (SGD-C), the
unclipped column (`include_unclipped`, threshold ∞) with α = 0 is plain SGD and with α > 0
the footnote's "just the regularization term, without clipping".

Presets, chosen with `--config=experiments/configs/threshold_grid.py:<preset>`:
  paper: both tanh initialisations, 5 seeds, the paper's 5M-update budget. Needs a GPU.
  cpu: the built-in default for a 2-core CPU: basic_tanh, 7 thresholds + ∞ × 6 α × 3 seeds
    = 144 runs, up to 24,000 updates each. Sized to about an hour (300 updates of a
    162-run version took 47 s on this project's 2-core CPU under load, ≈ 56 min if no run
    stopped early); measured: 38 min (2026-12-01, beside other jobs; solved runs stop).
  test: seconds; for the end-to-end test.
Every field can be overridden on the command line, e.g. `--config.alphas=0,2,4`.
"""

import ml_collections

from experiments.configs import fields
from experiments.configs.fields import declare
from experiments.validation import (
  POSITIVE,
  SIZE,
  anything,
  boolean,
  integer,
  names,
  number,
  one_of,
  sequence,
  task_lengths,
)
from rnn_dynamics import rnn, tasks


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  declare(c, "preset", preset, anything())
  # --- the model and the task (Figure 7's set-up) ---
  declare(c, "task", "temporal_order", one_of(tasks.TASKS))
  declare(c, "length", 50, SIZE)  # fixed sequence length T
  declare(c, "n_hidden", 50, SIZE)
  declare(c, "inits", ("basic_tanh", "smart_tanh"), names(rnn.INITS))
  declare(c, "lr", 0.01, POSITIVE)
  declare(c, "momentum", 0.0, fields.MOMENTUM)
  declare(c, "batch_size", 20, SIZE)
  fields.nonfinite_guard(c)  # "original": norm-clipped runs only (not c = ∞)
  fields.omega(c)
  # --- the grid (every cell trained with `sgd_cr`, which keeps α as given, also α = 0) ---
  # Finite thresholds. The unclipped α = 0 runs' average pre-clip norm at T = 50 measured
  # 0.42 over their first 600 updates (basic_tanh), so these reach from 1/20 of it to 50×,
  # with three inside the paper's heuristic range (0.5–10 × average).
  declare(c, "thresholds", (0.02, 0.05, 0.1, 0.25, 1.0, 4.0, 20.0), sequence(POSITIVE, unique=True))
  declare(c, "include_unclipped", True, boolean())  # add the threshold ∞ (no clipping) column
  declare(c, "alphas", (0.0, 0.5, 1.0, 2.0, 4.0, 8.0), sequence(number(ge=0), unique=True))
  declare(c, "seeds", 5, SIZE)  # per cell; the same seeds (weights and data) in every cell: paired
  declare(c, "seed", 0, integer(0))
  declare(c, "max_updates", 5_000_000, SIZE)
  declare(c, "chunk_size", 1000, SIZE)
  # --- success test (paper: error < 1% on 10,000 fresh sequences) ---
  fields.success_test(c)
  # --- bookkeeping ---
  fields.bookkeeping(c, checkpoint_every_s=60.0, progress_every_s=15.0)
  if preset == "paper":
    pass
  elif preset == "cpu":
    c.inits = ("basic_tanh",)
    c.seeds = 3
    c.max_updates = 24_000
    c.chunk_size = 500
    c.screen_size = 500
    c.eval_batch = 500
  elif preset == "test":
    c.length = 10  # temporal order's shortest well-formed length
    c.n_hidden = 8
    c.inits = ("basic_tanh",)
    c.thresholds = (0.1, 1.0)
    c.alphas = (0.0, 2.0)
    c.seeds = 2
    c.max_updates = 200
    c.chunk_size = 100
    c.screen_size = 100
    c.eval_size = 500
    c.eval_batch = 500
    c.checkpoint_every_s = 0.0
    c.progress_every_s = 0.0
  else:
    raise ValueError(f"unknown preset {preset!r}; choose 'paper', 'cpu' or 'test'")
  # The trainer's length range: one fixed length, following `length` on the command line.
  declare(c, "min_length", c.get_ref("length"), SIZE)
  declare(c, "max_length", c.get_ref("length"), SIZE)
  return c


RELATIONS = (*fields.SWEEP_RELATIONS, task_lengths("length"))
