"""What changes between epochs: α's schedule and the learning-rate halving rule (§4.2)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ALPHA_SCHEDULES", "alpha_at", "halve_lr"]

ALPHA_SCHEDULES = ("constant", "inverse")


def alpha_at(alpha0: Any, epoch: int, schedule: str) -> Any:
  """Ω weight in epoch `epoch` (1-based): `α_0` (constant) or `α_0 / epoch` (inverse).

  The paper's Piano-midi.de / Nottingham schedule `α_t = 1/(2t)` is `α_0 = 0.5` inverse.
  """
  if epoch < 1:
    raise ValueError(f"epochs count from 1, got {epoch}")
  if schedule == "constant":
    return alpha0
  if schedule == "inverse":
    return alpha0 / epoch
  raise ValueError(f"unknown alpha schedule {schedule!r}; choose one of {ALPHA_SCHEDULES}")


def halve_lr(lr: np.ndarray, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
  """The paper's rule: halve a run's learning rate when its epoch error rose.

  Args:
    lr: `[runs]` current learning rates.
    previous: `[runs]` the error of the epoch before (NaN: none yet, no change).
    current: `[runs]` this epoch's error (NaN, a diverged run: no change).

  Returns:
    `[runs]` learning rates for the next epoch.
  """
  lr, previous, current = (np.asarray(a, np.float64) for a in (lr, previous, current))
  with np.errstate(invalid="ignore"):
    rose = current > previous  # False whenever either is NaN
  return np.where(rose, lr / 2, lr)
