"""Config of experiments/lyapunov.py (Lyapunov exponents of saved models and the decay of
their gradient with the lag). Presets: `paper`, `cpu` (default), `test`."""

import ml_collections

# The five single models of §4.1.2 (temporal order, lengths [50, 200), SGD-CR), stacked.
GENERALIZATION_LONG = "docs/results/generalization_long/groups/train/params.npz"


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.preset = preset
  # A model saved whole (.npz with w_in, w_hh, b, w_out, b_out and `init`) or a group's
  # models stacked [runs, ...] (a workdir's groups/<group>/params.npz).
  c.params_file = GENERALIZATION_LONG
  c.params_indices = ()  # which models of a stacked file; empty: all of them
  c.task = "temporal_order"  # the task whose fresh sequences drive the network
  c.lengths = (100, 1000)  # sequence lengths T; the same sequences for every model
  c.sequences = 100  # sequences per length (exponents: mean and spread over them)
  c.n_exponents = 10  # k: the top-k exponents (repeated QR, docs/reference.md §6)
  # Steps run before the QR accumulates (the basis turns towards the fast directions),
  # as a fraction of T: 0.1 is the distractor stretch before the first mark's window.
  c.warmup_fraction = 0.1
  c.mark_window = 5  # a mark's step and the next mark_window − 1 are its phase
  c.float64 = True  # compute in float64 (JAX's x64 mode) instead of float32
  c.seed = 0  # PRNG seed of the sequences
  if preset == "paper":
    c.sequences = 500
  elif preset == "test":
    c.params_indices = (0, 1)
    c.lengths = (20, 40)
    c.sequences = 8
    c.n_exponents = 3
    c.mark_window = 2
  elif preset != "cpu":
    raise ValueError(f"unknown preset {preset!r}; use 'paper', 'cpu' or 'test'")
  return c
