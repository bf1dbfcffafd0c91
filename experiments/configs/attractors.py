"""Config of experiments/attractors.py (trained networks). Presets: `default`, `test`."""

import ml_collections


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # A model saved by an experiment: .npz with w_in, w_hh, b, w_out, b_out and an `init`
  # string (its unit type). Empty: train a small model here with SGD (clipped: see clip_threshold).
  c.params_file = ""
  # Which model of a file holding a group's models stacked [runs, ...] (a workdir's
  # groups/<group>/params.npz, e.g. docs/results/generalization_long/groups/train).
  c.params_index = 0
  c.task = "temporal_order"  # task for training and for the analysis batches
  c.length = 20  # nominal sequence length T
  c.n_hidden = 50  # hidden units of the model trained here
  c.init = "basic_tanh"  # initialisation of the model trained here (docs/reference.md §1)
  c.learning_rate = 0.1  # SGD step size of the inline training
  c.updates = 2000  # SGD updates of the inline training
  c.batch_size = 20  # training minibatch (the paper's 20)
  c.clip_threshold = 1.0  # > 0: norm clipping (SGD-C) in the inline training; 0: plain SGD,
  # which at these settings explodes (ρ → 3.7, 77% error) instead of solving the task
  c.curvature_every = 10  # measure ‖g‖, λ₁ and alignment every this many updates
  c.lanczos_iters = 16  # Lanczos steps (Hessian-vector products) per measurement
  c.spike_factor = 3.0  # a gradient-norm spike is > spike_factor × the running median
  c.spike_window = 21  # measurements in the running median (the current phase of training)
  c.eval_batch = 500  # sequences for the loss-by-lag, Ω and attractor analyses
  c.fixed_point_starts = 512  # starts of the fixed-point search (visited states + noise)
  c.fixed_point_steps = 1500  # Adam steps of the search
  c.flow_steps = 500  # steps of the map before naming the attractor a state reaches
  c.seed = 0  # PRNG seed
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
