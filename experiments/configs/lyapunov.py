"""Config of experiments/lyapunov.py (Lyapunov exponents of saved models and the decay of
their gradient with the lag). Presets: `full` (500 sequences), `cpu` (default), `test`.
The paper has no such experiment, so no preset is called `paper`."""

from pathlib import Path

import ml_collections

from experiments.configs.fields import declare
from experiments.validation import (
  SIZE,
  boolean,
  flag,
  integer,
  number,
  one_of,
  sequence,
  task_lengths,
  text,
)

# The five single models of §4.1.2 (temporal order, lengths [50, 200), SGD-CR), stacked.
GENERALIZATION_LONG = "docs/results/generalization_long/groups/train/params.npz"


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  declare(c, "preset", preset, one_of(("full", "cpu", "test")))
  # A model saved whole (.npz with w_in, w_hh, b, w_out, b_out and `init`) or a group's
  # models stacked [runs, ...] (a workdir's groups/<group>/params.npz).
  declare(c, "params_file", GENERALIZATION_LONG, text())
  # which models of a stacked file; empty: all of them
  declare(c, "params_indices", (), sequence(integer(lo=0), min_len=0, unique=True))
  # the task whose fresh sequences drive the network (marks are inputs 0, 1)
  declare(c, "task", "temporal_order", one_of(("temporal_order", "temporal_order_3bit")))
  # sequence lengths T; the same sequences for every model
  declare(c, "lengths", (100, 1000), sequence(SIZE, unique=True))
  # sequences per length (exponents: mean and spread over them; a spread needs two)
  declare(c, "sequences", 100, integer(2))
  # k: the top-k exponents (repeated QR, docs/reference.md §6)
  declare(c, "n_exponents", 10, SIZE)
  # Steps run before the QR accumulates (the basis turns towards the fast directions),
  # as a fraction of T: 0.1 is the distractor stretch before the first mark's window.
  declare(c, "warmup_fraction", 0.1, number(ge=0, lt=1))
  # a mark's step and the next mark_window − 1 are its phase
  declare(c, "mark_window", 5, SIZE)
  declare(c, "float64", True, boolean())  # compute in float64 (JAX's x64 mode), not float32
  declare(c, "seed", 0, integer(0))  # PRNG seed of the sequences
  if preset == "full":
    c.sequences = 500
  elif preset == "test":
    c.params_indices = (0, 1)
    c.lengths = (20, 40)
    c.sequences = 8
    c.n_exponents = 3
    c.mark_window = 2
  elif preset != "cpu":
    raise ValueError(f"unknown preset {preset!r}; use 'full', 'cpu' or 'test'")
  return c


def _params_file(c):
  # Which models and how many exponents it holds: `trained_lyapunov.model_indices`.
  if not Path(c.params_file).expanduser().is_file():
    yield f"{flag('params_file', c)}: no such file"


RELATIONS = (task_lengths("lengths"), _params_file)
