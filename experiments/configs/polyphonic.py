"""Table 1: polyphonic music prediction, NLL per time step (docs/reference.md §4).

Presets, chosen with `--config=experiments/configs/polyphonic.py:<preset>`:
  paper: the published set-up for `--config.dataset` (300 sigmoid units, lr 1.0 halved
    when the epoch's error rises, clip 8 on the gradient of the per-step mean cost,
    α_t = 0.5/t; MuseData: 400 units, lr 0.5, α_0 = 0.1), segments of 200 steps.
  cpu: the paper's set-up stopped by a time budget (about an hour on a 2-core CPU).
  test: seconds, on a tiny synthetic data set; for CI and the end-to-end test.

`--config.dataset` picks the data and, for fields left unset, the paper's set-up:
  piano-midi | nottingham | musedata | jsb: the Boulanger-Lewandowski files, read from
    `--config.data_path` (the `.mat` or pickle file, or a folder holding it under its
    standard name, e.g. Nottingham.mat); jsb uses Nottingham's set-up (not in the paper);
  bach: the built-in default, Bach chorales from music21 (no download beyond PyPI);
  synthetic: a small generated data set (tests).
Fields shown as `placeholder` take the data set's paper value unless given on the command
line, e.g. `--config.n_hidden=200`.
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

# The fields left unset take the data set's published value (`rnn_dynamics.paper.TABLE1_SETUPS`,
# docs/reference.md §4 "Table 1"); JSB and the built-in sets take Nottingham's.
PUBLISHED_FIELDS = ("n_hidden", "lr", "alpha0")
DATASETS = ("piano-midi", "nottingham", "musedata", "jsb", "bach", "synthetic")


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  declare(c, "preset", preset, anything())
  # --- data ---
  declare(c, "dataset", "nottingham", one_of(DATASETS))  # one of DATASETS (module docstring)
  # the data set's file, or a folder holding it; unused for bach/synthetic
  declare(c, "data_path", "", text())
  # score the train split on its first N songs only (0: all)
  declare(c, "train_eval_limit", 0, COUNT)
  # --- the model: a sigmoid RNN with one Bernoulli output per key ---
  declare(c, "n_hidden", config_dict.placeholder(int), SIZE)  # paper: 300 (MuseData 400)
  # docs/reference.md §1: sigmoid units, weights N(0, 0.01²), biases 0
  declare(c, "init", "sigmoid", one_of(rnn.INITS))
  declare(c, "biases", True, boolean())
  # --- truncated BPTT ---
  # steps per segment; the state is carried across a song's segments
  declare(c, "segment_length", 200, SIZE)
  declare(c, "batch_size", 1, SIZE)  # lanes (songs played in parallel); not stated in the paper
  declare(c, "chunk_size", 8, SIZE)  # segments (updates) per compiled call
  # lanes when scoring a split (exact: every song starts from zero)
  declare(c, "eval_batch_size", 16, SIZE)
  # --- the columns: SGD (no clipping), SGD+C (norm clipping), SGD+CR (clipping + Ω) ---
  declare(c, "algorithms", ("sgd", "sgd_c", "sgd_cr"), names(natural.ALGORITHMS))
  # paper: 1.0 (MuseData 0.5), the same for all columns
  declare(c, "lr", config_dict.placeholder(float), POSITIVE)
  # halve when the epoch's training error rose ('valid', 'none')
  declare(c, "lr_halving", "train", fields.LR_HALVING)
  declare(c, "min_lr", 0.0, number(ge=0))  # stop once every run's lr is below this (0: never)
  declare(c, "momentum", 0.0, fields.MOMENTUM)
  # clip the gradient of the per-step mean cost (paper's note)
  declare(c, "cost", "mean", fields.COST)
  declare(c, "clip", 8.0, fields.THRESHOLD)  # norm-clipping threshold (SGD+C, SGD+CR)
  fields.nonfinite_guard(c)
  # Ω weight α_0 (paper 0.5; MuseData 0.1)
  declare(c, "alpha0", config_dict.placeholder(float), number(ge=0))
  # α_t = α_0 / t, t the epoch (1-based); or 'constant'
  declare(c, "alpha_schedule", "inverse", one_of(natural.ALPHA_SCHEDULES))
  fields.omega(c)
  # --- budget and bookkeeping ---
  declare(c, "max_epochs", 200, SIZE)  # not stated in the paper; the lr halving anneals long before
  declare(c, "time_budget_s", 0.0, SECONDS)  # start no epoch that would end past this (0: no limit)
  declare(c, "seeds", 1, SIZE)  # seeds per column (paired: same initial weights and data order)
  declare(c, "seed", 0, integer(0))
  # test songs whose predicted piano rolls are saved for the notebook
  declare(c, "n_predictions", 3, COUNT)
  fields.bookkeeping(c, checkpoint_every_s=120.0, progress_every_s=30.0)
  if preset == "paper":
    pass
  elif preset == "cpu":
    # The paper's model, cut short. On a CPU an epoch costs about the same whatever the
    # number of lanes (the same frames go through; the runs axis already fills the cores),
    # so one lane, i.e. the most updates per epoch, is free: ~70 s per Nottingham epoch
    # (1,168 updates) for the three columns on 2 busy cores. The budget stops it near 55 min.
    c.chunk_size = 16
    c.eval_batch_size = 32
    c.max_epochs = 100
    c.time_budget_s = 3300.0
  elif preset == "test":
    c.dataset = "synthetic"
    c.n_hidden = 12
    c.segment_length = 16
    c.batch_size = 4
    c.chunk_size = 2
    c.eval_batch_size = 4
    c.max_epochs = 2
    c.seeds = 2
    c.n_predictions = 1
    c.checkpoint_every_s = 600.0  # epoch ends only (a stop request saves too)
    c.progress_every_s = 0.0
  else:
    raise ValueError(f"unknown preset {preset!r}; choose 'paper', 'cpu' or 'test'")
  return c


RELATIONS = (data_path_for(("piano-midi", "nottingham", "musedata", "jsb")),)


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy with every unset field filled from the data set's paper set-up."""
  if config.dataset not in DATASETS:
    raise ValueError(f"unknown dataset {config.dataset!r}; choose one of {DATASETS}")
  setup = paper.TABLE1_SETUPS.get(config.dataset, paper.TABLE1_SETUPS["nottingham"])
  return fields.fill_placeholders(config, {f: getattr(setup, f) for f in PUBLISHED_FIELDS})
