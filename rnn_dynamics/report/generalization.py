"""The report of `experiments/generalization.py` (§4.1.1, one model for many lengths).

* `write_figure`: error against evaluation length, one line per seed;
* `summary`: the same numbers as a plain-text table, for the terminal.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, §4.1.1 ("a single model to deal with any sequence
  of length 50 up to 200").
"""

from __future__ import annotations

from pathlib import Path

import ml_collections

from rnn_dynamics import plots
from rnn_dynamics.report import style

__all__ = ["CHANCE_ERROR", "summary", "write_figure"]

# Temporal order has 4 classes; a model that has learnt nothing errs on 3 in 4.
CHANCE_ERROR = {"temporal_order": 0.75}


def write_figure(config: ml_collections.ConfigDict, stem: Path, rows: list[dict]) -> None:
  """Error against evaluation length, one line per seed, as `<stem>.{png,svg}`."""
  fig = plots.generalization_figure(
    rows,
    train_range=(int(config.min_length), int(config.max_length)),
    success_error=float(config.success_error),
    chance_error=CHANCE_ERROR.get(config.task),
    title=f"{config.task}: one {config.n_hidden}-unit {config.init} model per seed, "
    f"{style.label(config.algorithm)}, "
    f"≤{config.max_updates:,} updates\n{config.eval_sequences:,} fresh sequences per length",
  )
  plots.save_figure(fig, stem)


def summary(train_rows: list[dict], rows: list[dict]) -> str:
  """A plain-text table: per seed, solved in training and errors at each length."""
  seeds = [r["seed"] for r in train_rows]
  n = rows[0]["n_sequences"] if rows else 0
  lines = ["seed:            " + " ".join(f"{s:<9}" for s in seeds)]
  lines.append(
    "solved in train: " + " ".join(f"{'yes' if r['solved'] else 'no':<9}" for r in train_rows)
  )
  for length in sorted({r["eval_length"] for r in rows}):
    at = {r["seed"]: r for r in rows if r["eval_length"] == length}
    lines.append(
      f"errors at {length:<6} "
      + " ".join(f"{str(at[s]['errors']) if s in at else '-':<9}" for s in seeds)
    )
  return "\n".join(lines) + f"\n(errors out of {n:,} fresh sequences per length)"
