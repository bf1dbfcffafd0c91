"""The methods comparison's report (`experiments/methods.py`): its tables and figures.

* `comparison_table`: one row per (method, task, length): runs solved with the 95 %
  interval, median updates and sequences to solve, the budget in updates, sequences and
  FLOPs, parameters, wall time;
* `grid_table`: one row per (method, task, learning rate) of the grid stage, the picked
  one marked;
* `success_rate_figure`: success rate against length, a panel per task, a line per method;
* `updates_to_solve_figure`: the share of runs solved within u updates, a panel per
  (task, length), a line per method;
* `markdown`: the tables as GitHub Markdown.

Colour follows the cell, line style and marker the algorithm, so the methods of one cell
read as one family.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker

from rnn_dynamics import stats
from rnn_dynamics.report import style
from rnn_dynamics.report.pathological import markdown as _markdown
from rnn_dynamics.report.success_rate import solved_curve

__all__ = [
  "HEADERS",
  "comparison_table",
  "grid_table",
  "markdown",
  "success_rate_figure",
  "updates_to_solve_figure",
]

HEADERS = {
  "method": "method",
  "task": "task",
  "length": "T",
  "lr": "lr",
  "lr_source": "lr from",
  "n_hidden": "units",
  "params": "params",
  "seeds": "runs",
  "success": "solved (95 % interval)",
  "updates_to_solve_median": "median updates to solve",
  "sequences_to_solve_median": "median sequences to solve",
  "budget_updates": "budget (updates)",
  "budget_sequences": "budget (sequences)",
  "flops_per_update": "FLOPs/update",
  "budget_flops": "budget (FLOPs)",
  "wall_s": "wall (s)",
  "diverged": "diverged",
  "test_error_median": "median test error",
  "runs": "runs",
  "median_updates": "median updates to solve",
  "median_error": "median final error",
  "picked": "picked",
}

COMPARISON_COLUMNS = (
  "method", "task", "length", "lr", "lr_source", "n_hidden", "params", "success",
  "updates_to_solve_median", "sequences_to_solve_median", "budget_updates",
  "budget_sequences", "flops_per_update", "budget_flops", "wall_s", "diverged",
)  # fmt: skip
"""The Markdown table's columns (the CSV and JSON keep every field)."""

_ALGORITHM_STYLE = {  # line style, marker
  "sgd": (":", "o"),
  "sgd_c": ("--", "s"),
  "sgd_cr": ("-", "^"),
  "sgd_elementwise": (":", "v"),
  "adam": ("-.", "D"),
  "adam_c": ("-.", "x"),
}


def _median(values: Sequence[float]) -> float | None:
  return float(np.median(values)) if len(values) else None


def _order(values, order: Sequence[str] | None) -> list:
  seen = list(dict.fromkeys(values))
  if order is None:
    return seen
  return [v for v in order if v in seen] + [v for v in seen if v not in order]


def comparison_table(
  rows: Sequence[Mapping[str, Any]],
  *,
  methods: Sequence[str] | None = None,
  flops: Mapping[tuple[str, str, int], float] | None = None,
  params: Mapping[tuple[str, str], int] | None = None,
  batch_size: int,
) -> list[dict[str, Any]]:
  """One row per (method, task, length), from the per-run rows.

  Args:
    rows: the runs' result rows (labels `method`, `cell`, `algorithm`, `task`, `length`,
      `lr`, `lr_source`, `budget`; outcome fields; `wall_s`, the wall time of the group
      that trained the run, and `group`, its name, where one (method, task, length) has
      its seeds in several groups: their wall times add up).
    methods: the order of the methods (others follow in order of appearance).
    flops: (method, task, length) → FLOPs per update (`rnn_dynamics.synthetic.flops`).
    params: (method, task) → trainable parameters (readout included).
    batch_size: sequences per update.
  """
  flops, params = flops or {}, params or {}
  groups: dict[tuple[str, str, int], list[Mapping[str, Any]]] = defaultdict(list)
  for r in rows:
    groups[(r["method"], r["task"], int(r["length"]))].append(r)
  tasks = list(dict.fromkeys(r["task"] for r in rows))
  out = []
  for task in tasks:
    lengths = sorted({t for (_, k, t) in groups if k == task})
    for method in _order([m for (m, k, _) in groups if k == task], methods):
      for length in lengths:
        runs = groups.get((method, task, length))
        if not runs:
          continue
        solved = [int(r["updates_to_solve"]) for r in runs if r["solved"]]
        ci = stats.success_interval(len(solved), len(runs))
        budget = int(runs[0]["budget"])
        per_update = flops.get((method, task, length))
        median = _median(solved)
        out.append(
          dict(
            method=method,
            cell=runs[0]["cell"],
            algorithm=runs[0]["algorithm"],
            task=task,
            length=length,
            lr=float(runs[0]["lr"]),
            lr_source=runs[0]["lr_source"],
            n_hidden=runs[0].get("n_hidden"),
            params=params.get((method, task)),
            **stats.rate_columns(ci),
            updates_to_solve_median=median,
            sequences_to_solve_median=None if median is None else median * batch_size,
            budget_updates=budget,
            budget_sequences=budget * batch_size,
            flops_per_update=per_update,
            budget_flops=None if per_update is None else per_update * budget,
            wall_s=_wall_s(runs),
            diverged=sum(bool(r["diverged"]) for r in runs),
            test_error_median=_median([r["final_error"] for r in runs]),
          )
        )
  return out


def _wall_s(runs: Sequence[Mapping[str, Any]]) -> float | None:
  """The seconds the groups that trained `runs` took together (each row holds its
  group's wall time)."""
  per_group: dict[Any, float] = {}
  for r in runs:
    group = r.get("group")
    per_group[group] = max(per_group.get(group, 0.0), float(r.get("wall_s") or 0.0))
  return sum(per_group.values()) or None


def grid_table(
  grid_rows: Sequence[Mapping[str, Any]],
  picks: Mapping[tuple[str, str], float],
  summarize,
  *,
  methods: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
  """One row per (method, task, learning rate) of the grid.

  Args:
    grid_rows: the grid runs' rows (labels `method`, `task`, `length`, `lr`, `seed`).
    picks: (method, task) → the learning rate picked.
    summarize: `rnn_dynamics.methods.grid_summary` (per lr: runs, solved, medians).
    methods: the order of the methods.
  """
  groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
  for r in grid_rows:
    groups[(r["method"], r["task"])].append(r)
  tasks = list(dict.fromkeys(r["task"] for r in grid_rows))
  out = []
  for task in tasks:
    for method in _order([m for (m, k) in groups if k == task], methods):
      runs = groups[(method, task)]
      for s in summarize(runs):
        ci = stats.success_interval(s["solved"], s["runs"])
        out.append(
          dict(
            method=method,
            task=task,
            length=int(runs[0]["length"]),
            lr=s["lr"],
            runs=s["runs"],
            success=stats.format_rate(ci),
            solved=s["solved"],
            median_updates=None if math.isinf(s["median_updates"]) else s["median_updates"],
            median_error=None if math.isinf(s["median_error"]) else s["median_error"],
            picked="✓" if picks.get((method, task)) == s["lr"] else "",
          )
        )
  return out


_ENGINEERING = ("flops_per_update", "budget_flops")


def _cell(v, column: str) -> str:
  if v is None:
    return "–"
  if column in _ENGINEERING:
    return f"{float(v):.3g}"
  if isinstance(v, float):
    return f"{v:,.0f}" if v >= 100 else f"{v:g}"
  if isinstance(v, int) and not isinstance(v, bool):
    return f"{v:,}"
  return str(v)


def markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
  """A GitHub Markdown table of `rows`' `columns`, numbers written for reading (FLOPs
  to three digits, counts and medians whole)."""
  shown = [{c: _cell(r.get(c), c) for c in columns} for r in rows]
  return _markdown(shown, columns=list(columns), headers={c: HEADERS.get(c, c) for c in columns})


# --- figures -------------------------------------------------------------------------------


def _styles(methods: Sequence[str], cell_of: Mapping[str, str], algorithm_of: Mapping[str, str]):
  """method → (colour, line style, marker): colour per cell, style per algorithm."""
  cell_order = list(dict.fromkeys(cell_of[m] for m in methods))
  out = {}
  for m in methods:
    line, marker = _ALGORITHM_STYLE.get(algorithm_of[m], ("-", "o"))
    out[m] = (plt.cm.tab10(cell_order.index(cell_of[m]) % 10), line, marker)
  return out


def success_rate_figure(table: Sequence[Mapping[str, Any]], *, title: str = ""):
  """Success rate against length (log x), a panel per task, a line per method, each
  point with its 95 % Clopper–Pearson interval (`comparison_table`'s rows)."""
  tasks = list(dict.fromkeys(r["task"] for r in table))
  methods = list(dict.fromkeys(r["method"] for r in table))
  styles = _styles(
    methods, {r["method"]: r["cell"] for r in table}, {r["method"]: r["algorithm"] for r in table}
  )
  fig, axes = plt.subplots(
    1, max(len(tasks), 1), figsize=(5.2 * max(len(tasks), 1), 4.0), sharey=True, squeeze=False
  )
  for ax, task in zip(axes[0], tasks):
    rows = [r for r in table if r["task"] == task]
    shown = [m for m in methods if any(r["method"] == m for r in rows)]
    for j, method in enumerate(shown):
      pts = sorted((r["length"], r) for r in rows if r["method"] == method)
      colour, line, marker = styles[method]
      # Methods often tie (all solve, or none): a small sideways offset on the log axis
      # keeps every line's markers and error bars visible.
      shift = math.exp(0.015 * (j - (len(shown) - 1) / 2))
      ys = [r["success_rate"] for _, r in pts]
      err = [
        [r["success_rate"] - r["success_low"] for _, r in pts],
        [r["success_high"] - r["success_rate"] for _, r in pts],
      ]
      ax.errorbar([t * shift for t, _ in pts], ys, yerr=err, color=colour, ls=line,
                  marker=marker, capsize=2.5, elinewidth=0.9, alpha=0.85, label=method)  # fmt: skip
    style.length_axis(ax, sorted({r["length"] for r in rows}))
    ax.set_title(task.replace("_", " "), fontsize=style.FONT_TITLE)
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3, which="both")
  axes[0][0].set_ylabel("success rate (95 % interval)")
  axes[0][-1].legend(loc="best", fontsize=style.FONT_SMALL)
  if title:
    fig.suptitle(title, fontsize=style.FONT_SUPTITLE)
  fig.tight_layout()
  return fig


def updates_to_solve_figure(rows: Sequence[Mapping[str, Any]], *, title: str = ""):
  """The share of runs solved within u updates against u: a panel per (task, length) (a
  row per task), a line per method, each ending at its runs' budget (dotted line)."""
  tasks = list(dict.fromkeys(r["task"] for r in rows))
  methods = list(dict.fromkeys(r["method"] for r in rows))
  styles = _styles(
    methods, {r["method"]: r["cell"] for r in rows}, {r["method"]: r["algorithm"] for r in rows}
  )
  lengths = {k: sorted({int(r["length"]) for r in rows if r["task"] == k}) for k in tasks}
  n_cols = max((len(v) for v in lengths.values()), default=1)
  height = 2.7 * max(len(tasks), 1) + 0.8
  fig, axes = plt.subplots(
    max(len(tasks), 1), n_cols, figsize=(3.6 * n_cols, height), sharey=True, squeeze=False
  )
  groups: dict[tuple[str, str, int], list[Mapping[str, Any]]] = defaultdict(list)
  for r in rows:
    groups[(r["task"], r["method"], int(r["length"]))].append(r)
  for row_axes, task in zip(axes, tasks):
    for ax in row_axes[len(lengths[task]) :]:
      ax.set_visible(False)
    for ax, length in zip(row_axes, lengths[task]):
      budget = 0
      for method in methods:
        runs = groups.get((task, method, length))
        if not runs:
          continue
        b = max(int(r["budget"]) for r in runs)
        budget = max(budget, b)
        x, frac = solved_curve([r["updates_to_solve"] for r in runs], b)
        colour, line, _ = styles[method]
        ax.step(x, frac, where="post", color=colour, ls=line, lw=1.4, label=method)
      ax.axvline(budget, color="0.4", ls=":", lw=1)
      ax.set_title(f"{task.replace('_', ' ')}, T = {length}", fontsize=style.FONT_TITLE)
      ax.set_ylim(-0.05, 1.05)
      ax.grid(alpha=0.3)
      ax.set_xlabel("updates")
      ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v / 1000:g}k"))
    row_axes[0].set_ylabel("share of runs solved")
  handles = [plt.Line2D([], [], color=styles[m][0], ls=styles[m][1], label=m) for m in methods] + [
    plt.Line2D([], [], color="0.4", ls=":", label="budget")
  ]
  ncol = min(len(handles), max(2, 2 * n_cols))
  rows_of_legend = -(-len(handles) // ncol)
  top = 1 - (0.1 + 0.2 * rows_of_legend + (0.25 if title else 0)) / height
  if title:
    fig.suptitle(title, fontsize=style.FONT_SUPTITLE)
  fig.legend(handles=handles, loc="upper center", ncol=ncol, fontsize=style.FONT_SMALL,
             bbox_to_anchor=(0.5, 1 - (0.25 / height if title else 0)))  # fmt: skip
  fig.tight_layout(rect=(0, 0, 1, top))
  return fig
