"""Config of experiments/cliff.py (Figure 6). Presets: `default`, `test`."""

from collections.abc import Iterable

import ml_collections

from experiments.configs.fields import declare
from experiments.validation import (
  COUNT,
  POSITIVE,
  SIZE,
  flag,
  integer,
  number,
  ordered,
  sequence,
)


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  declare(c, "x0", 0.5, number())  # initial state x_0 (the paper's .5)
  declare(c, "target", 0.7, number(gt=0, lt=1))  # target of σ(x_T) (the paper's .7)
  # T: the cost is E_T = (σ(x_T) − target)², T = 50 in the paper
  declare(c, "n_steps", 50, SIZE)
  declare(c, "w_min", 2.0, number())  # plotted range of the recurrent weight w
  declare(c, "w_max", 8.0, number())
  declare(c, "b_min", -5.5, number())  # plotted range of the bias b
  declare(c, "b_max", 1.0, number())
  declare(c, "grid", 201, integer(2))  # grid points per axis of the surface
  # Gradient-descent starts (w, b), on the plateau below the wall, from where descent
  # walks into it.
  declare(
    c,
    "starts",
    ((4.9, -4.0), (5.2, -4.6), (4.3, -4.4), (5.6, -4.8)),
    sequence(sequence(number(), length=2)),
  )
  # Unbiased statistics: random starts in this (w, b) box, kept when below the wall.
  declare(c, "num_random_starts", 256, COUNT)
  declare(c, "random_box_lo", (4.0, -5.5), sequence(number(), length=2))
  declare(c, "random_box_hi", (7.0, -2.5), sequence(number(), length=2))
  # a run counts as solved when its final E_T is below this
  declare(c, "solved_loss", 0.01, POSITIVE)
  # plain SGD step size, the same with and without clipping
  declare(c, "learning_rate", 1.0, POSITIVE)
  declare(c, "updates", 150, SIZE)  # gradient-descent updates per trajectory
  declare(c, "clip_threshold", 1.0, POSITIVE)  # Algorithm 1's threshold for the clipped runs
  # Lanczos steps per point (the parameter space is 2-D: exact)
  declare(c, "lanczos_iters", 2, SIZE)
  declare(c, "seed", 0, integer(0))  # PRNG seed for the Lanczos start vectors
  if preset == "test":
    c.grid = 41
    c.updates = 60
    c.starts = ((4.9, -4.0), (5.2, -4.6))
    c.num_random_starts = 16
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; use 'default' or 'test'")
  return c


def _random_box(c: ml_collections.ConfigDict) -> Iterable[str]:
  if any(lo >= hi for lo, hi in zip(c.random_box_lo, c.random_box_hi)):
    yield f"{flag('random_box_lo', c)} must be below {flag('random_box_hi', c)} in w and b"


RELATIONS = (ordered("w_min", "w_max"), ordered("b_min", "b_max"), _random_box)
