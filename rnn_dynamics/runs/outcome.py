"""What a trained group of runs hands back (`GroupResult`), below every writer and reader.

The synthetic sweep (`rnn_dynamics.synthetic.sweep.run_group`) returns it and the workdir
(`rnn_dynamics.workdir.Workdir.save_group`) stores it; neither needs the other for it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["GroupResult"]


@dataclasses.dataclass
class GroupResult:
  """What a finished group hands back.

  Attributes:
    rows: one dict per run: its labels plus `solved` (passed the test in force: error
      under `success_error`, or none with `zero_mistake_stop`), `updates_to_solve`,
      `final_error` and `final_mistakes` (on `eval_size` fresh sequences),
      `strict_solved` (0 errors, the original code's criterion), `worst_length` and
      `worst_length_error` (mixed lengths only: the nominal length with the highest
      error in that test), `diverged`, `updates_done`.
    traces: field (`synthetic.sweep.TRACE_FIELDS`) → `[runs, chunks]` arrays (NaN once a
      run is frozen).
    state: the final stacked run state (`synthetic.train.RunState`) as host (numpy)
      arrays, e.g. for analysis.
    wall_s: seconds spent on the group, over every session (a resumed group counts the
      sessions before its checkpoint too).
  """

  rows: list[dict[str, Any]]
  traces: dict[str, np.ndarray]
  state: Any
  wall_s: float
