"""The report of `experiments/generalization.py` (§4.1.1, one model for many lengths).

* `seed_curves_figure`: test error against evaluation length, one line per seed;
* `write_figure`: that figure for a config, as the binary writes it;
* `summary`: the same numbers as a plain-text table, for the terminal;
* `continued_figure`, `write_continued_figure`, `continued_summary`: the same models
  trained on past their pass (`experiments/generalization_continued.py`), a panel per
  model with a line per test point, and the median over models.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, §4.1.1 ("a single model to deal with any sequence
  of length 50 up to 200").
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import ml_collections
import numpy as np

from rnn_dynamics.report import style

__all__ = [
  "CHANCE_ERROR",
  "continued_figure",
  "continued_summary",
  "seed_curves_figure",
  "summary",
  "write_continued_figure",
  "write_figure",
]

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
  _reference_lines(ax, train_range, success_error, chance_error, span="0.85")
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


def _error(r) -> float:
  return math.nan if r["error"] is None else float(r["error"])


def continued_figure(
  rows: Sequence[dict[str, Any]],
  *,
  train_range: tuple[int, int] | None = None,
  success_error: float = 0.01,
  chance_error: float | None = None,
  title: str = "",
):
  """Test error against evaluation length as training goes on past the pass: one panel
  per model (a line per test point, dark to light as updates grow) and a last panel with
  the median over the models at each test point, the range of the models shaded for the
  first and the last test point.

  Args:
    rows: one dict per (model, test point, length) with `seed`, `updates_after_pass`,
      `eval_length`, `error` and optionally `updates_to_solve` (in the panel titles).
    train_range, success_error, chance_error, title: as `seed_curves_figure`.

  Returns:
    The figure; the y axes as `seed_curves_figure`'s.
  """
  seeds = sorted({r["seed"] for r in rows})
  points = sorted({int(r["updates_after_pass"]) for r in rows})
  lengths = sorted({int(r["eval_length"]) for r in rows})
  cmap = plt.get_cmap("viridis")
  shade = {p: cmap(0.85 * i / max(len(points) - 1, 1)) for i, p in enumerate(points)}
  curves: dict[tuple, dict[int, float]] = defaultdict(dict)
  solved_at = {}
  for r in rows:
    curves[r["seed"], int(r["updates_after_pass"])][int(r["eval_length"])] = _error(r)
    solved_at[r["seed"]] = r.get("updates_to_solve")
  n_panels = len(seeds) + 1
  cols = min(n_panels, 3)
  nrows = -(-n_panels // cols)
  fig, axes = plt.subplots(
    nrows, cols, figsize=(3.4 * cols, 2.7 * nrows + 0.6), sharex=True, sharey=True,
    squeeze=False,
  )
  flat = list(axes.flat)
  for ax in flat[n_panels:]:
    ax.set_visible(False)

  def frame(ax, heading: str, labelled: bool = False) -> None:
    lines = (train_range, success_error, chance_error)
    _reference_lines(ax, *lines, span="0.88", labelled=labelled)
    ax.set_title(heading, fontsize=style.FONT_TITLE)
    ax.grid(alpha=0.3, which="major")

  for ax, seed in zip(flat, seeds):
    for p in points:
      at = curves.get((seed, p), {})
      xs = [t for t in lengths if t in at]
      ax.plot(xs, [at[t] for t in xs], marker="o", ms=2.5, lw=1.2, color=shade[p])
    solved = solved_at.get(seed)
    frame(ax, f"seed {seed}" + (f" (passed at {solved:,})" if solved is not None else ""))
  median_ax = flat[len(seeds)]
  _median_panel(median_ax, curves, seeds, lengths, shade)
  frame(median_ax, f"median of {len(seeds)} models (shaded: their range)", labelled=True)
  for ax in flat[:n_panels]:
    style.length_axis(ax, lengths)
    ax.tick_params(axis="x", labelrotation=60, labelsize=style.FONT_SMALL)
    ax.set_xlabel("")
    ax.set_yscale("symlog", linthresh=1e-4, linscale=0.5)
  top = max([e for c in curves.values() for e in c.values() if math.isfinite(e)] + [1.0])
  flat[0].set_ylim(-2e-5, top * 1.5)
  for ax in axes[:, 0]:
    ax.set_ylabel("test error")
  for ax in flat[max(n_panels - cols, 0) : n_panels]:
    ax.set_xlabel("evaluation length")
  median_ax.legend(title="updates after the pass", fontsize=style.FONT_SMALL,
                   title_fontsize=style.FONT_SMALL, loc="upper left",
                   bbox_to_anchor=(1.02, 1.0))
  if title:
    fig.suptitle(title, fontsize=style.FONT_SUPTITLE)
  fig.tight_layout()
  return fig


def _reference_lines(ax, train_range, success_error, chance_error, *, span, labelled=True):
  """The training lengths shaded (grey `span`), the success threshold dotted and chance
  dashed; `labelled`: named in the legend."""
  name = lambda text: text if labelled else None
  if train_range is not None:
    ax.axvspan(*train_range, color=span, zorder=0, label=name("training lengths"))
  ax.axhline(success_error, color="k", ls=":", lw=1, label=name(f"{success_error:.0%} (success)"))
  if chance_error is not None:
    ax.axhline(chance_error, color="0.5", ls="--", lw=1, label=name("chance"))


def _median_panel(ax, curves, seeds, lengths, shade) -> None:
  """The median over the models at each test point (`shade`: test point → colour), the
  range of the models shaded for the first and the last."""
  points = list(shade)
  for p in points:
    by_length = [[curves[s, p][t] for s in seeds if t in curves.get((s, p), {})] for t in lengths]
    xs = [t for t, e in zip(lengths, by_length) if e]
    es = [np.asarray(e) for e in by_length if e]
    ax.plot(xs, [np.nanmedian(e) for e in es], marker="o", ms=2.5, lw=1.4, color=shade[p],
            label=f"+{p:,}")
    if p in (points[0], points[-1]):
      ax.fill_between(xs, [np.nanmin(e) for e in es], [np.nanmax(e) for e in es],
                      color=shade[p], alpha=0.15, lw=0)


def write_continued_figure(setup: Mapping[str, Any], stem: Path, rows: list[dict]) -> None:
  """`continued_figure` for models trained with `setup` (the source's config), as
  `<stem>.{png,svg}`."""
  n = rows[0]["n_sequences"] if rows else 0
  fig = continued_figure(
    rows,
    train_range=(int(setup["min_length"]), int(setup["max_length"])),
    success_error=float(setup["success_error"]),
    chance_error=CHANCE_ERROR.get(setup["task"]),
    title=f"{setup['task']}: {setup['n_hidden']}-unit {setup['init']} models, "
    f"{style.label(setup['algorithm'])}, trained on past their pass "
    f"({n:,} fresh sequences per length)",
  )
  style.save_figure(fig, stem)


def continued_summary(rows: list[dict]) -> str:
  """A plain-text table: per model and test point, the mistakes at each length."""
  lengths = sorted({r["eval_length"] for r in rows})
  n = rows[0]["n_sequences"] if rows else 0
  cells = {(r["seed"], r["updates_after_pass"], r["eval_length"]): r["errors"] for r in rows}
  keys = sorted({(r["seed"], r["updates_after_pass"]) for r in rows})
  lines = ["seed  after pass " + " ".join(f"{t:>6}" for t in lengths)]
  for seed, point in keys:
    values = [cells.get((seed, point, t)) for t in lengths]
    lines.append(
      f"{seed:<5} {point:>10,} " + " ".join(f"{'-' if v is None else v:>6}" for v in values)
    )
  return "\n".join(lines) + f"\n(errors out of {n:,} fresh sequences per length)"
