"""Config of experiments/mechanics.py (§2.1). Presets: `default`, `test`."""

import ml_collections


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.n_hidden = 50  # hidden units
  c.length = 60  # T: lags 0..T are measured
  c.n_trajectories = 8  # random input sequences per (unit, ρ); curves are geometric means
  c.input_scale = 1.0  # inputs u_t ~ N(0, input_scale²) drive every unit directly
  c.matrix = "orthogonal"  # "orthogonal" (W = ρQ, normal: ‖W^k‖ = ρ^k) or "gaussian"
  # Radii drawn as lag curves, per unit type.
  c.curve_rhos = ml_collections.ConfigDict(
    {
      "linear": (0.8, 0.95, 1.0, 1.05, 1.2),
      "tanh": (0.8, 1.0, 1.5, 3.0),
      "sigmoid": (2.0, 4.0, 6.0, 10.0),
    }
  )
  c.rate_num_rhos = 13  # radii in the growth-rate-vs-ρ sweep (0.25 to 3/γ)
  c.seed = 0  # PRNG seed
  if preset == "test":
    c.n_hidden = 16
    c.length = 20
    c.n_trajectories = 2
    c.rate_num_rhos = 4
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; use 'default' or 'test'")
  return c
