"""Config of experiments/mechanics.py (§2.1). Presets: `default`, `test`."""

import ml_collections

from experiments.configs.fields import declare
from experiments.validation import POSITIVE, SIZE, integer, mapping, number, one_of, sequence


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  declare(c, "n_hidden", 50, SIZE)  # hidden units
  declare(c, "length", 60, integer(2))  # T: lags 0..T are measured
  # random input sequences per (unit, ρ); curves are geometric means
  declare(c, "n_trajectories", 8, SIZE)
  # inputs u_t ~ N(0, input_scale²) drive every unit directly
  declare(c, "input_scale", 1.0, number(ge=0))
  # "orthogonal" (W = ρQ, normal: ‖W^k‖ = ρ^k) or "gaussian"
  declare(c, "matrix", "orthogonal", one_of(("orthogonal", "gaussian")))
  # Radii drawn as lag curves, per unit type.
  curve_rhos = {
    "linear": (0.8, 0.95, 1.0, 1.05, 1.2),
    "tanh": (0.8, 1.0, 1.5, 3.0),
    "sigmoid": (2.0, 4.0, 6.0, 10.0),
  }
  declare(
    c,
    "curve_rhos",
    ml_collections.ConfigDict(curve_rhos),
    mapping(tuple(curve_rhos), sequence(POSITIVE, unique=True), all_keys=True),
  )
  declare(c, "rate_num_rhos", 13, integer(2))  # radii in the growth-rate-vs-ρ sweep (0.25 to 3/γ)
  declare(c, "seed", 0, integer(0))  # PRNG seed
  if preset == "test":
    c.n_hidden = 16
    c.length = 20
    c.n_trajectories = 2
    c.rate_num_rhos = 4
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; use 'default' or 'test'")
  return c
