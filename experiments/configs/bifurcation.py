"""Config of experiments/bifurcation.py (Figure 3). Presets: `default`, `test`."""

import ml_collections


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.w = 5.0  # fixed recurrent weight of the one-unit map (the paper's 5.0)
  c.unit = "sigmoid"  # "sigmoid" or "tanh": the unit non-linearity σ
  c.b_min = -4.0  # left end of the bias sweep
  c.b_max = -1.0  # right end of the bias sweep
  c.num_b = 3001  # bias values at which the fixed points are solved
  c.x_min = -4.5  # lower end of the state axis (vector field, simulation starts)
  c.x_max = 4.5  # upper end of the state axis
  c.field_num_b = 25  # vector-field arrows along b
  c.field_num_x = 19  # vector-field arrows along x
  c.sim_num_b = 151  # bias values of the simulation check
  c.sim_num_x0 = 21  # simulation starts per bias value
  c.sim_steps = 200  # iterations of rnn.step before reading off x_∞
  if preset == "test":
    c.num_b = 201
    c.sim_num_b = 21
    c.sim_num_x0 = 5
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; use 'default' or 'test'")
  return c
