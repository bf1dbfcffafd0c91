"""Config of experiments/attractors.py (trained networks). Presets: `default`, `test`."""

from collections.abc import Iterable
from pathlib import Path

import ml_collections
import numpy as np

from experiments.configs.fields import declare
from experiments.validation import (
  POSITIVE,
  SIZE,
  flag,
  integer,
  is_int,
  number,
  one_of,
  task_lengths,
  text,
)
from rnn_dynamics import rnn, tasks


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # A model saved by an experiment: .npz with w_in, w_hh, b, w_out, b_out and an `init`
  # string (its unit type). Empty: train a small model here with SGD (clipped: see clip_threshold).
  declare(c, "params_file", "", text())
  # Which model of a file holding a group's models stacked [runs, ...] (a workdir's
  # groups/<group>/params.npz, e.g. docs/results/generalization_long/groups/train).
  declare(c, "params_index", 0, integer(0))
  # task for training and for the analysis batches
  declare(c, "task", "temporal_order", one_of(tasks.TASKS))
  declare(c, "length", 20, SIZE)  # nominal sequence length T
  declare(c, "n_hidden", 50, SIZE)  # hidden units of the model trained here
  # initialisation of the model trained here (docs/reference.md §1)
  declare(c, "init", "basic_tanh", one_of(rnn.INITS))
  declare(c, "learning_rate", 0.1, POSITIVE)  # SGD step size of the inline training
  declare(c, "updates", 2000, SIZE)  # SGD updates of the inline training
  declare(c, "batch_size", 20, SIZE)  # training minibatch (the paper's 20)
  # > 0: norm clipping (SGD-C) in the inline training; 0: plain SGD, which at these
  # settings explodes (ρ → 3.7, 77% error) instead of solving the task
  declare(c, "clip_threshold", 1.0, number(ge=0))
  # measure ‖g‖, λ₁ and alignment every this many updates
  declare(c, "curvature_every", 10, SIZE)
  declare(c, "lanczos_iters", 16, SIZE)  # Lanczos steps (Hessian-vector products) per measurement
  # a gradient-norm spike is > spike_factor × the running median
  declare(c, "spike_factor", 3.0, number(gt=1))
  # measurements in the running median (the current phase of training)
  declare(c, "spike_window", 21, SIZE)
  declare(c, "eval_batch", 500, SIZE)  # sequences for the loss-by-lag, Ω and attractor analyses
  # starts of the fixed-point search (visited states + noise)
  declare(c, "fixed_point_starts", 512, SIZE)
  declare(c, "fixed_point_steps", 1500, SIZE)  # Adam steps of the search
  # steps of the map before naming the attractor a state reaches
  declare(c, "flow_steps", 500, SIZE)
  declare(c, "seed", 0, integer(0))  # PRNG seed
  if preset == "test":
    c.length = 12
    c.n_hidden = 12
    c.updates = 40
    c.curvature_every = 10
    c.lanczos_iters = 6
    c.eval_batch = 40
    c.fixed_point_starts = 32
    c.fixed_point_steps = 200
    c.flow_steps = 50
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; use 'default' or 'test'")
  return c


def _params_file(c: ml_collections.ConfigDict) -> Iterable[str]:
  if c.params_file and not Path(c.params_file).expanduser().is_file():
    yield f"{flag('params_file', c)}: no such file"


def _params_index(c: ml_collections.ConfigDict) -> Iterable[str]:
  """`params_index` names one of the models in `params_file` (a stacked group's file
  holds `[runs, ...]`; a single model's only index 0)."""
  path = Path(c.params_file).expanduser() if c.params_file else None
  if path is None or not path.is_file() or not is_int(c.params_index):
    return []
  try:
    with np.load(path) as f:
      shape = f["w_hh"].shape
  except Exception:  # a damaged or foreign file: the binary names it when it reads it
    return []
  runs = shape[0] if len(shape) == 3 else 1
  if c.params_index < runs:
    return []
  held = f"holds {runs} models, so use 0 to {runs - 1}" if runs > 1 else "holds a single model"
  return [f"{flag('params_index', c)}: {c.params_file} {held}"]


RELATIONS = (task_lengths("length"), _params_file, _params_index)
