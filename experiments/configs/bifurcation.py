"""Config of experiments/bifurcation.py (Figure 3). Presets: `default`, `test`."""

import ml_collections

from experiments.configs.fields import declare
from experiments.validation import SIZE, integer, number, one_of, ordered


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  declare(c, "w", 5.0, number())  # fixed recurrent weight of the one-unit map (the paper's 5.0)
  # "sigmoid" or "tanh": the unit non-linearity σ
  declare(c, "unit", "sigmoid", one_of(("sigmoid", "tanh")))
  declare(c, "b_min", -4.0, number())  # left end of the bias sweep
  declare(c, "b_max", -1.0, number())  # right end of the bias sweep
  declare(c, "num_b", 3001, integer(2))  # bias values at which the fixed points are solved
  # lower end of the state axis (vector field, simulation starts)
  declare(c, "x_min", -4.5, number())
  declare(c, "x_max", 4.5, number())  # upper end of the state axis
  declare(c, "field_num_b", 25, integer(2))  # vector-field arrows along b
  declare(c, "field_num_x", 19, integer(2))  # vector-field arrows along x
  declare(c, "sim_num_b", 151, SIZE)  # bias values of the simulation check
  declare(c, "sim_num_x0", 21, SIZE)  # simulation starts per bias value
  declare(c, "sim_steps", 200, SIZE)  # iterations of rnn.step before reading off x_∞
  if preset == "test":
    c.num_b = 201
    c.sim_num_b = 21
    c.sim_num_x0 = 5
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; use 'default' or 'test'")
  return c


RELATIONS = (ordered("b_min", "b_max"), ordered("x_min", "x_max"))
