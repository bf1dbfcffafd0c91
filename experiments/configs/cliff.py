"""Config of experiments/cliff.py (Figure 6). Presets: `default`, `test`."""

import ml_collections


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.x0 = 0.5  # initial state x_0 (the paper's .5)
  c.target = 0.7  # target of σ(x_T) (the paper's .7)
  c.n_steps = 50  # T: the cost is E_T = (σ(x_T) − target)², T = 50 in the paper
  c.w_min = 2.0  # plotted range of the recurrent weight w
  c.w_max = 8.0
  c.b_min = -5.5  # plotted range of the bias b
  c.b_max = 1.0
  c.grid = 201  # grid points per axis of the surface
  # Gradient-descent starts (w, b), on the plateau below the wall, from where descent
  # walks into it.
  c.starts = ((4.9, -4.0), (5.2, -4.6), (4.3, -4.4), (5.6, -4.8))
  # Unbiased statistics: random starts in this (w, b) box, kept when below the wall.
  c.num_random_starts = 256
  c.random_box_lo = (4.0, -5.5)
  c.random_box_hi = (7.0, -2.5)
  c.solved_loss = 0.01  # a run counts as solved when its final E_T is below this
  c.learning_rate = 1.0  # plain SGD step size, the same with and without clipping
  c.updates = 150  # gradient-descent updates per trajectory
  c.clip_threshold = 1.0  # Algorithm 1's threshold for the clipped runs
  c.lanczos_iters = 2  # Lanczos steps per point (the parameter space is 2-D: exact)
  c.seed = 0  # PRNG seed for the Lanczos start vectors
  if preset == "test":
    c.grid = 41
    c.updates = 60
    c.starts = ((4.9, -4.0), (5.2, -4.6))
    c.num_random_starts = 16
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; use 'default' or 'test'")
  return c
