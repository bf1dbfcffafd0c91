"""The report of `experiments/generalization.py` (§4.1.1, one model for many lengths).

* `seed_curves_figure`: test error against evaluation length, one line per seed;
* `write_figure`: that figure for a config, as the binary writes it;
* `summary`: the same numbers as a plain-text table, for the terminal.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, §4.1.1 ("a single model to deal with any sequence
  of length 50 up to 200").
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt
import ml_collections

from rnn_dynamics.report import style

__all__ = ["CHANCE_ERROR", "seed_curves_figure", "summary", "write_figure"]

# Temporal order has 4 classes; a model that has learnt nothing errs on 3 in 4.
CHANCE_ERROR = {"temporal_order": 0.75}


def seed_curves_figure(
  rows: Sequence[dict[str, Any]],
  *,
  train_range: tuple[int, int] | None = None,
  success_error: float = 0.01,
  chance_error: float | None = None,
  title: str = "",
):
  """Test error of trained models against evaluation length (log x), a line per model.

  Args:
    rows: one dict per (model, evaluation length) with `seed`, `eval_length`, `error`
      and optionally `solved` (the model passed the success test in training: solid
      line, else dashed).
    train_range: `(lo, hi)` lengths seen in training, shaded.
    success_error: the success threshold, drawn as a dotted line.
    chance_error: error of guessing, drawn as a dashed grey line.
    title: figure title.

  Returns:
    The figure. The y axis is linear below 1e-4 (so zero errors show) and log above.
  """
  fig, ax = plt.subplots(figsize=(7.5, 3.8))
  by_seed: dict[Any, list[tuple[int, float]]] = defaultdict(list)
  solved = {}
  for r in rows:
    # A non-finite error is stored as null in the JSON table.
    error = math.nan if r["error"] is None else float(r["error"])
    by_seed[r["seed"]].append((int(r["eval_length"]), error))
    solved[r["seed"]] = bool(r.get("solved", True))
  for i, (seed, pts) in enumerate(sorted(by_seed.items())):
    pts.sort()
    ax.plot([t for t, _ in pts], [e for _, e in pts], marker="o", ms=4,
            ls="-" if solved[seed] else "--", color=style.run_color(i),
            label=f"seed {seed}" + ("" if solved[seed] else " (not solved)"))
  if train_range is not None:
    ax.axvspan(*train_range, color="0.85", zorder=0, label="training lengths")
  ax.axhline(success_error, color="k", ls=":", lw=1, label=f"{success_error:.0%} (success)")
  if chance_error is not None:
    ax.axhline(chance_error, color="0.5", ls="--", lw=1, label="chance")
  style.length_axis(ax, sorted({int(r["eval_length"]) for r in rows}))
  ax.set_xlabel("evaluation length")
  ax.tick_params(axis="x", labelrotation=45)
  ax.set_yscale("symlog", linthresh=1e-4, linscale=0.5)
  top = max([e for pts in by_seed.values() for _, e in pts if math.isfinite(e)] + [1.0])
  ax.set_ylim(-2e-5, top * 1.5)
  ax.set_ylabel("test error")
  ax.grid(alpha=0.3, which="major")
  ax.legend(fontsize=style.FONT_SMALL, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  if title:
    ax.set_title(title, fontsize=style.FONT_TITLE, wrap=True)
  fig.tight_layout()
  return fig


def write_figure(config: ml_collections.ConfigDict, stem: Path, rows: list[dict]) -> None:
  """Error against evaluation length, one line per seed, as `<stem>.{png,svg}`."""
  fig = seed_curves_figure(
    rows,
    train_range=(int(config.min_length), int(config.max_length)),
    success_error=float(config.success_error),
    chance_error=CHANCE_ERROR.get(config.task),
    title=f"{config.task}: one {config.n_hidden}-unit {config.init} model per seed, "
    f"{style.label(config.algorithm)}, "
    f"≤{config.max_updates:,} updates\n{config.eval_sequences:,} fresh sequences per length",
  )
  style.save_figure(fig, stem)


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
