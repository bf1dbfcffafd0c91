"""Figures drawn from saved results (never from live training state), and `save_figure`,
the one way every experiment writes a figure (PNG at `style.DPI` and SVG, atomically,
process 0 only: `rnn_dynamics.results`). Labels, colours and markers: `report.style`."""

from __future__ import annotations

import io
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import ticker  # noqa: E402

from rnn_dynamics import results, stats  # noqa: E402
from rnn_dynamics.report import style  # noqa: E402

__all__ = [
  "epoch_curves_figure",
  "generalization_figure",
  "length_axis",
  "save_figure",
  "solved_curve",
  "success_intervals",
  "success_rate_figure",
  "success_table",
  "updates_to_solve_figure",
]


def success_table(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str, int], float]:
  """(init, algorithm, length) → share of seeds solved."""
  return {k: ci.rate for k, ci in success_intervals(rows).items()}


def success_intervals(
  rows: Iterable[dict[str, Any]],
) -> dict[tuple[str, str, int], stats.RateInterval]:
  """(init, algorithm, length) → seeds solved with its 95 % interval (`stats.success_interval`)."""
  counts: dict[tuple[str, str, int], list[bool]] = defaultdict(list)
  for r in rows:
    counts[(r["init"], r["algorithm"], int(r["length"]))].append(bool(r["solved"]))
  return {k: stats.success_interval(v) for k, v in counts.items()}


def success_rate_figure(
  rows: Sequence[dict[str, Any]], *, inits: Sequence[str], algorithms: Sequence[str], title=""
):
  """Figure 7: success rate vs sequence length (log x), a panel per init, a line per algorithm.

  Each point carries its 95 % Clopper–Pearson interval as an error bar: with 5 seeds a
  point is a coarse measurement (3/5 is compatible with 15–95 %).
  """
  rates = success_intervals(rows)
  fig, axes = plt.subplots(1, len(inits), figsize=(4.2 * len(inits), 3.4), sharey=True,
                           squeeze=False)
  for ax, init in zip(axes[0], inits):
    for j, alg in enumerate(algorithms):
      pts = sorted((t, ci) for (i, a, t), ci in rates.items() if i == init and a == alg)
      if not pts:
        continue
      color, marker = style.color(alg), style.marker(alg)
      # Algorithms often tie (all solve, or none): a small sideways offset on the log axis
      # keeps every line's markers and error bars visible instead of drawn one over another.
      shift = math.exp(0.04 * (j - (len(algorithms) - 1) / 2))
      ys = [ci.rate for _, ci in pts]
      err = [[ci.rate - ci.low for _, ci in pts], [ci.high - ci.rate for _, ci in pts]]
      ax.errorbar([t * shift for t, _ in pts], ys, yerr=err, marker=marker, color=color,
                  alpha=0.85, capsize=2.5, elinewidth=0.9, label=style.label(alg))
    length_axis(ax, sorted({t for (_, _, t) in rates}))
    ax.set_title(init)
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3, which="both")
  axes[0][0].set_ylabel("success rate (95 % interval)")
  axes[0][-1].legend(loc="lower left")
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  return fig


def solved_curve(
  updates_to_solve: Sequence[int | None], max_updates: int
) -> tuple[np.ndarray, np.ndarray]:
  """The cumulative fraction of runs solved against updates, as step-plot points.

  Args:
    updates_to_solve: one entry per run: the update count at which it was solved, None
      for a run not solved within the budget (diverged or out of budget).
    max_updates: the budget; the curve runs from 0 to it.

  Returns:
    `(x, fraction)`, for `plt.step(x, fraction, where="post")`: starts at (0, 0), rises by
    1/n at each solve and ends at `(max_updates, solved / n)`.
  """
  n = len(updates_to_solve)
  if n == 0:
    raise ValueError("need at least one run")
  solved = np.sort([int(u) for u in updates_to_solve if u is not None])
  x = np.concatenate([[0], solved, [max_updates]])
  frac = np.concatenate([[0], np.arange(1, solved.size + 1), [solved.size]]) / n
  return x, frac


def updates_to_solve_figure(
  rows: Sequence[dict[str, Any]],
  *,
  inits: Sequence[str],
  algorithms: Sequence[str],
  max_updates: int,
  title: str = "",
):
  """Share of runs solved within u updates, against u: a panel per (init, algorithm), a
  line per length (colour).

  A curve still rising at the budget (dotted line) says a larger budget would solve more
  of those runs; a flat one says it would not change the point of Figure 7. Each curve
  ends at its own runs' budget (the rows' `budget`, e.g. the baselines' smaller one of
  `baselines_after_sgd_cr`; `max_updates` where rows have none), so a flat stretch never
  claims updates that were not run. The error bar at the budget is the final rate's
  95 % interval.
  """
  lengths = sorted({int(r["length"]) for r in rows})
  cmap = plt.get_cmap("viridis")
  colour = {t: cmap(i / max(len(lengths) - 1, 1) * 0.9) for i, t in enumerate(lengths)}
  fig, axes = plt.subplots(len(inits), len(algorithms), sharex=True, sharey=True,
                           figsize=(3.3 * len(algorithms), 2.5 * len(inits) + 0.6),
                           squeeze=False)
  runs: dict[tuple[str, str, int], list[dict]] = defaultdict(list)
  for r in rows:
    runs[(r["init"], r["algorithm"], int(r["length"]))].append(r)
  for row_axes, init in zip(axes, inits):
    for ax, alg in zip(row_axes, algorithms):
      for k, t in enumerate(lengths):
        group = runs.get((init, alg, t))
        if not group:
          continue
        budget = max(int(r.get("budget") or max_updates) for r in group)
        x, frac = solved_curve([r["updates_to_solve"] for r in group], budget)
        ax.step(x, frac, where="post", color=colour[t], lw=1.4, label=f"T={t}")
        ci = stats.success_interval([r["solved"] for r in group])
        # Side by side past the budget line, so the lengths' intervals do not hide each other.
        ax.errorbar([max_updates * (1.03 + 0.03 * k)], [ci.rate],
                    yerr=[[ci.rate - ci.low], [ci.high - ci.rate]], color=colour[t], capsize=2,
                    lw=0.9, marker="o", ms=3)
      ax.axvline(max_updates, color="0.4", ls=":", lw=1)
      ax.set_title(f"{init}, {style.label(alg)}", fontsize=9)
      ax.set_ylim(-0.05, 1.05)
      ax.grid(alpha=0.3)
      ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v / 1000:g}k"))
  for ax in axes[-1]:
    ax.set_xlabel("updates")
  for ax in axes[:, 0]:
    ax.set_ylabel("share of runs solved")
  handles = [plt.Line2D([], [], color=colour[t], label=f"T={t}") for t in lengths]
  handles.append(plt.Line2D([], [], color="0.4", ls=":", label=f"budget {max_updates:,}"))
  handles.append(plt.Line2D([], [], color="0.4", marker="o", ms=3, label="final, 95 % interval"))
  axes[0][0].legend(handles=handles, loc="upper left", fontsize=7)
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  return fig


def length_axis(ax, lengths: Sequence[int]) -> None:
  """A log-x "sequence length" axis ticked at the lengths themselves, in plain numbers.

  Matplotlib's default log ticks label minor ticks in scientific notation when the range
  spans less than a decade, which turns a short range (10 to 12) into unreadable text.
  """
  ax.set_xscale("log")
  ax.set_xlabel("sequence length")
  if lengths:
    ax.set_xticks(list(lengths))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def generalization_figure(
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
            ls="-" if solved[seed] else "--", color=plt.cm.tab10(i % 10),
            label=f"seed {seed}" + ("" if solved[seed] else " (not solved)"))
  if train_range is not None:
    ax.axvspan(*train_range, color="0.85", zorder=0, label="training lengths")
  ax.axhline(success_error, color="k", ls=":", lw=1, label=f"{success_error:.0%} (success)")
  if chance_error is not None:
    ax.axhline(chance_error, color="0.5", ls="--", lw=1, label="chance")
  length_axis(ax, sorted({int(r["eval_length"]) for r in rows}))
  ax.set_xlabel("evaluation length")
  ax.tick_params(axis="x", labelrotation=45)
  ax.set_yscale("symlog", linthresh=1e-4, linscale=0.5)
  top = max([e for pts in by_seed.values() for _, e in pts if math.isfinite(e)] + [1.0])
  ax.set_ylim(-2e-5, top * 1.5)
  ax.set_ylabel("test error")
  ax.grid(alpha=0.3, which="major")
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  if title:
    ax.set_title(title, fontsize=9, wrap=True)
  fig.tight_layout()
  return fig


def epoch_curves_figure(
  curves: Sequence[tuple[str, Sequence[dict[str, Any]]]],
  *,
  splits: Sequence[str] = ("valid", "test"),
  ylabel: str = "",
  reference: dict[str, float] | None = None,
  title: str = "",
):
  """A natural-task score per epoch for several runs side by side, a panel per split.

  Args:
    curves: `(label, rows)` per run, `rows` its `history` rows (`epoch` and a score per
      split; None where not scored), e.g. two model sizes' SGD+C runs.
    splits: the splits to draw, one panel each.
    ylabel: the score's name.
    reference: label → value drawn as a horizontal line in every panel (the paper's).
    title: figure title.
  """
  fig, axes = plt.subplots(
    1, len(splits), figsize=(5.2 * len(splits), 3.6), sharey=True, squeeze=False
  )
  for ax, split in zip(axes[0], splits):
    for i, (label, rows) in enumerate(curves):
      rows = sorted(rows, key=lambda r: r["epoch"])
      values = [math.nan if r.get(split) is None else float(r[split]) for r in rows]
      ax.plot([r["epoch"] for r in rows], values, marker="o", ms=2.5, color=plt.cm.tab10(i % 10),
              label=label)
    for j, (label, value) in enumerate((reference or {}).items()):
      ax.axhline(value, color="k", lw=0.8, ls=("-.", ":", "--")[j % 3], label=label)
    ax.set(xlabel="epoch", title=split)
    ax.grid(alpha=0.3)
  axes[0, 0].set_ylabel(ylabel)
  axes[0, -1].legend(fontsize=7)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  return fig


def save_figure(fig, stem: str | Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
  """Writes `fig` as `<stem>.png`, `<stem>.svg`, ... (each atomically, process 0 only, at
  `style.DPI`), closes it and returns the paths."""
  paths = []
  for ext in formats:
    buf = io.BytesIO()
    fig.savefig(buf, format=ext, dpi=style.DPI)
    results.atomic_write_bytes(f"{stem}.{ext}", buf.getvalue())
    paths.append(Path(f"{stem}.{ext}"))
  plt.close(fig)
  return paths
