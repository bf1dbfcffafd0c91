"""Figure 7's report (`experiments/success_rate.py`): seeds solved per (init, algorithm,
length) with their 95 % intervals, success rate against length, and the share of runs
solved against updates.

* `success_intervals`, `success_table`: the seeds solved, as intervals or rates;
* `success_rate_figure`: Figure 7, a panel per init, a line per algorithm;
* `solved_curve`, `updates_to_solve_figure`: the share of runs solved within u updates.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, Figure 7 and §4.1.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker

from rnn_dynamics import stats
from rnn_dynamics.report import style

__all__ = [
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
    style.length_axis(ax, sorted({t for (_, _, t) in rates}))
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
      ax.set_title(f"{init}, {style.label(alg)}", fontsize=style.FONT_TITLE)
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
  axes[0][0].legend(handles=handles, loc="upper left", fontsize=style.FONT_SMALL)
  if title:
    fig.suptitle(title, fontsize=style.FONT_SUPTITLE)
  fig.tight_layout()
  return fig
