"""The report of `experiments/pathological.py` (§4.1.2): result tables and figures.

Everything here reads what that binary leaves in a workdir (per-run result rows,
generalization rows) and turns it into the tables and plots of the report; the published
set-ups and outcomes it compares against are `rnn_dynamics.paper.PATHOLOGICAL`:

* `load_workdir`: a task's workdir, read through `Workdir.open`;
* `task_table`: success rate, updates to solve, test error per (task, lengths, algorithm);
* `generalization_table`, `generalization_figure`: error vs evaluation length;
* `summary_table`, `summary_columns`: several tasks side by side with the paper's column;
* `markdown`: any of these tables as GitHub Markdown;
* `write_report`: all of them for one task, into its workdir.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, §4.1.2 and the supplementary material
  ("The pathological synthetic tasks").
  Martens & Sutskever (2011), Learning recurrent neural networks with Hessian-free
  optimization (the success criterion).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from rnn_dynamics import paper, results, stats
from rnn_dynamics.errors import ConfigError
from rnn_dynamics.report import style
from rnn_dynamics.workdir import PARTIAL_FILE, Workdir

__all__ = [
  "ALGORITHMS",
  "generalization_figure",
  "generalization_reach",
  "generalization_table",
  "load_workdir",
  "markdown",
  "summary_columns",
  "summary_table",
  "task_table",
  "write_report",
]

# The tables' column order: SGD-CR after its two ablations (norm and element-wise
# clipping without Ω), as in `experiments/configs/pathological.py`.
ALGORITHMS = ("sgd_c", "sgd_elementwise", "sgd_cr")


# --- tables ------------------------------------------------------------------------------


def _lengths_label(row: dict[str, Any]) -> str:
  lo, hi = int(row["min_length"]), int(row["max_length"])
  return str(lo) if lo == hi else f"[{lo}, {hi})"


def _median(xs: Sequence[float]) -> float | None:
  xs = [x for x in xs if x is not None and math.isfinite(x)]
  return float(np.median(xs)) if xs else None


def _group_rows(rows: Iterable[dict[str, Any]], keys: Sequence[str]) -> dict[tuple, list[dict]]:
  groups: dict[tuple, list[dict]] = defaultdict(list)
  for r in rows:
    groups[tuple(r[k] for k in keys)].append(r)
  return groups


def _order(rows: list[dict[str, Any]], algorithms: Sequence[str] | None) -> list[str]:
  seen = list(dict.fromkeys(r["algorithm"] for r in rows))
  if algorithms is None:
    return seen
  return [a for a in algorithms if a in seen] + [a for a in seen if a not in algorithms]


def task_table(
  rows: Sequence[dict[str, Any]], algorithms: Sequence[str] | None = None
) -> list[dict[str, Any]]:
  """One row per (task variant, training lengths, algorithm) from the per-run rows.

  Args:
    rows: per-run result rows (`runs.outcome.GroupResult.rows` with labels `task`,
      `algorithm`, `seed`, `min_length`, `max_length`).
    algorithms: order of the algorithms (others follow in order of appearance).

  Returns:
    Rows with `task`, `lengths`, `algorithm`, `seeds`, `solved`, `success` (the count
    with its 95 % interval, `"3/5 (15–95 %)"`), `success_rate`, `success_low`,
    `success_high` (the interval's ends), `updates_to_solve_median`/`_min`/`_max`
    (solved runs), `test_error_median` (error on the final test of every run),
    `strict_solved` (0 errors out of the test set, the original code's criterion) and
    `diverged`.
  """
  out = []
  by_setting = _group_rows(rows, ("task", "min_length", "max_length"))
  for (task, lo, hi), setting in sorted(by_setting.items(), key=lambda kv: kv[0][1:]):
    by_alg = _group_rows(setting, ("algorithm",))
    for alg in _order(setting, algorithms):
      runs = by_alg[(alg,)]
      solved = [r for r in runs if r["solved"]]
      updates = [r["updates_to_solve"] for r in solved]
      ci = stats.success_interval(len(solved), len(runs))
      out.append(
        dict(
          task=task,
          lengths=_lengths_label(runs[0]),
          algorithm=alg,
          **stats.rate_columns(ci),
          updates_to_solve_median=_median(updates),
          updates_to_solve_min=min(updates) if updates else None,
          updates_to_solve_max=max(updates) if updates else None,
          test_error_median=_median([r["final_error"] for r in runs]),
          strict_solved=sum(bool(r["strict_solved"]) for r in runs),
          diverged=sum(bool(r["diverged"]) for r in runs),
        )
      )
  return out


def generalization_table(
  gen_rows: Sequence[dict[str, Any]], algorithms: Sequence[str] | None = None
) -> list[dict[str, Any]]:
  """Error vs evaluation length: one row per (task, training lengths, algorithm, length).

  Args:
    gen_rows: one row per (run, evaluation length) with the run's labels plus
      `eval_length`, `error` and `solved`.
    algorithms: order of the algorithms.

  Returns:
    Rows with `task`, `lengths` (training), `algorithm`, `eval_length`, `models`,
    `error_median`, `error_max` and `under_1pct` (models with error < 1%).
  """
  out = []
  by_setting = _group_rows(gen_rows, ("task", "min_length", "max_length"))
  for (task, lo, hi), setting in sorted(by_setting.items(), key=lambda kv: kv[0][1:]):
    by_alg = _group_rows(setting, ("algorithm", "eval_length"))
    lengths = sorted({int(r["eval_length"]) for r in setting})
    for alg in _order(setting, algorithms):
      for length in lengths:
        runs = by_alg.get((alg, length), [])
        if not runs:
          continue
        errors = [float(r["error"]) for r in runs]
        out.append(
          dict(
            task=task,
            lengths=_lengths_label(runs[0]),
            algorithm=alg,
            eval_length=length,
            models=len(runs),
            error_median=float(np.median(errors)),
            error_max=float(np.max(errors)),
            under_1pct=sum(e < 0.01 for e in errors),
          )
        )
  return out


def generalization_reach(
  gen_rows: Sequence[dict[str, Any]], success_error: float = 0.01
) -> dict[tuple, int | None]:
  """How far each model generalizes: run → the longest evaluation length L such that
  the error is below `success_error` at every evaluated length from its shortest
  training length up to L (None if it already fails at the first).

  Runs are keyed by `(task, min_length, max_length, algorithm, seed)`.
  """
  reach: dict[tuple, int | None] = {}
  by_run = _group_rows(gen_rows, ("task", "min_length", "max_length", "algorithm", "seed"))
  for key, runs in by_run.items():
    best = None
    for r in sorted(runs, key=lambda r: int(r["eval_length"])):
      if int(r["eval_length"]) < int(r["min_length"]):
        continue
      if float(r["error"]) >= success_error:
        break
      best = int(r["eval_length"])
    reach[key] = best
  return reach


def summary_table(
  workdirs: Sequence[dict[str, Any]], algorithms: Sequence[str] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
  """Several tasks side by side with the paper's column.

  Args:
    workdirs: `load_workdir` outputs, one per task.
    algorithms: the algorithm columns, in order (default: as found).

  Returns:
    `(rows, algorithms)`: one row per task variant with `task`, `preset`, `setup`
    (hidden, lr, α, clip, init), `lengths` (training), `max_updates`, a `k/n solved`
    column per algorithm (`"k/n (low–high %)"`, the 95 % interval),
    `sgd_cr_updates_median`, `sgd_cr_generalizes_to` (median over solved SGD-CR models
    of `generalization_reach`, with the range) and `paper`.
  """
  algs: list[str] = list(algorithms or [])
  out = []
  for wd in workdirs:
    cfg, rows, gen = wd["config"], wd["rows"], wd["generalization"]
    for a in _order(rows, None):
      if a not in algs:
        algs.append(a)
    reach = generalization_reach(gen, float(cfg.get("success_error", 0.01)))
    budgets: dict[str, list[int]] = {}  # task variant → its groups' budgets (group.json)
    for spec in wd.get("specs", {}).values():
      budgets.setdefault(spec.task, []).append(spec.max_updates)
    for variant, vrows in _group_rows(rows, ("task",)).items():
      variant = variant[0]
      published = paper.pathological_setup(variant)
      row = dict(
        task=variant,
        preset=cfg.get("preset", ""),
        setup=f"{cfg['n_hidden']} {cfg['init']}, lr {cfg['lr']:g}, α {cfg['alpha']:g}, "
        f"clip {cfg['clip']:g}",
        lengths=", ".join(sorted({_lengths_label(r) for r in vrows}, key=_length_sort)),
        max_updates=int(max(budgets.get(variant, [cfg["max_updates"]]))),
      )
      by_alg = _group_rows(vrows, ("algorithm",))
      for a in algs:
        runs = by_alg.get((a,), [])
        row[a] = stats.format_rate([r["solved"] for r in runs]) if runs else ""
      cr = [r for r in by_alg.get(("sgd_cr",), []) if r["solved"]]
      row["sgd_cr_updates_median"] = _median([r["updates_to_solve"] for r in cr])
      reaches = [
        reach.get((variant, r["min_length"], r["max_length"], "sgd_cr", r["seed"])) for r in cr
      ]
      short = sum(x is None for x in reaches)  # ≥ 1% error already at the shortest length
      reaches = [x for x in reaches if x is not None]
      text = f"{int(np.median(reaches))} ({min(reaches)}–{max(reaches)})" if reaches else ""
      if short:
        text += f"{'; ' if text else ''}{short} of {len(cr)} at ≥ 1% already at the shortest"
      row["sgd_cr_generalizes_to"] = text
      row["paper"] = published.reported if published else _NOT_IN_PAPER
      out.append(row)
  return out, algs


def summary_columns(algorithms: Sequence[str]) -> list[str]:
  """The columns of `summary_table` in the order they are shown, for `algorithms` (the
  algorithm columns it returned)."""
  return [
    "task",
    "preset",
    "setup",
    "lengths",
    "max_updates",
    *algorithms,
    "sgd_cr_updates_median",
    "sgd_cr_generalizes_to",
    "paper",
  ]


def _length_sort(label: str) -> int:
  return int(label.strip("[").split(",")[0])


# --- reading a workdir -------------------------------------------------------------------


def load_workdir(path: str | Path) -> dict[str, Any]:
  """What a pathological workdir holds, read through `Workdir.open` (never written).

  Returns:
    A dict with `path`, `config` (the resolved config), `rows` (one per run),
    `generalization` (one per run and evaluation length), `groups`: finished group
    name → `{"rows": [...], "traces": {field: [runs, chunks] array}}` (the per-chunk
    training traces of `rnn_dynamics.synthetic.sweep.TRACE_FIELDS`), and `in_progress`: group still
    training → its runs as of the last checkpoint (`Workdir.in_progress`), `specs`: each
    of those groups → what it runs (`Workdir.spec`: task variant, lengths, budget, chunk
    size), and `partial`:
    a partial copy's `partial.json` (`rnn_dynamics.workdir.publish`), None elsewhere. Missing
    pieces (a sweep still running) read as empty.

  Raises:
    UserError: `path` is not a workdir, or a file in it is damaged.
  """
  wd = Workdir.open(path, of="experiments.pathological")
  if "task" not in wd.config:
    raise ConfigError(f"{wd.path} is not a workdir of experiments.pathological (no task)")
  return dict(
    path=wd.path,
    config=wd.config,
    rows=wd.table("results", default=[]),
    generalization=wd.table("generalization", default=[]),
    groups={g: wd.load_group(g) for g in wd.groups()},
    in_progress=(training := wd.in_progress()),
    specs={g: wd.spec(g) for g in [*wd.groups(), *training]},
    # A partial copy's note: how far its groups got when published, and which code ran it.
    partial=wd.read_json(PARTIAL_FILE) if wd.exists(PARTIAL_FILE) else None,
  )


# --- rendering ---------------------------------------------------------------------------


def _cell(x: Any) -> str:
  if x is None:
    return ""
  if isinstance(x, bool):
    return "yes" if x else "no"
  if isinstance(x, float):
    if not math.isfinite(x):
      return ""
    if x == int(x) and abs(x) >= 1:
      return f"{int(x):,}"
    return f"{x:.4g}"
  if isinstance(x, int):
    return f"{x:,}" if abs(x) >= 10_000 else str(x)
  return str(x).replace("|", "\\|")


_SUCCESS_NUMBERS = ("success_rate", "success_low", "success_high")


def markdown(
  rows: Sequence[dict[str, Any]],
  columns: Sequence[str] | None = None,
  headers: dict[str, str] | None = None,
) -> str:
  """A GitHub Markdown table of `rows` (column order: `columns`, or as found).

  By default the numeric twins of the `success` text (`success_rate`, `success_low`,
  `success_high`, kept for the CSV) are left out: the text already shows them.
  """
  if columns is None:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    if "success" in columns:
      columns = [c for c in columns if c not in _SUCCESS_NUMBERS]
  headers = headers or {}
  head = [headers.get(c, style.label(c)) for c in columns]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(columns)]
  for r in rows:
    cells = [_cell(r.get(c)) for c in columns]
    if "algorithm" in r and "algorithm" in columns:
      cells[list(columns).index("algorithm")] = style.label(r["algorithm"])
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


# --- the report of one task ------------------------------------------------------------


def write_report(
  workdir: Workdir, cfg, rows: list[dict], gen_rows: list[dict], figure: bool = True
) -> None:
  """Writes a task's report into its workdir: the per-run rows (`results`), `table` and
  `generalization_table` (`.csv`, `.json`, `.md`), the generalization rows and, with
  `figure` and rows to draw, `generalization.{png,svg}`. `cfg` is the resolved config."""
  algs = tuple(cfg.algorithms)
  workdir.write_table(rows)
  table = task_table(rows, algs)
  workdir.write_table(table, stem="table")
  results.atomic_write_text(workdir.path / "table.md", _table_markdown(cfg, table))
  workdir.write_table(gen_rows, stem="generalization")
  gen_table = generalization_table(gen_rows, algs)
  workdir.write_table(gen_table, stem="generalization_table")
  results.atomic_write_text(
    workdir.path / "generalization_table.md",
    _generalization_markdown(cfg, gen_table),
  )
  if figure and gen_rows:
    fig = generalization_figure(
      gen_rows,
      algs,
      float(cfg.success_error),
      title=f"{cfg.task}: error on {cfg.generalization_size:,} fresh sequences per length",
    )
    style.save_figure(fig, workdir.path / "generalization")


_NOT_IN_PAPER = "not one of the paper's tasks"


def _table_markdown(cfg, table: list[dict]) -> str:
  published = paper.pathological_setup(cfg.task)
  head = (
    f"**{cfg.task}** ({cfg.preset} preset): {cfg.n_hidden} hidden, {cfg.init}, lr {cfg.lr:g}, "
    f"α {cfg.alpha:g}, clip {cfg.clip:g} (element-wise {cfg.elementwise_clip:g}), "
    f"≤{cfg.max_updates:,} updates, success = error < {cfg.success_error:.0%} on "
    f"{cfg.eval_size:,} fresh sequences.\n"
    f"Paper (docs/reference.md §4): {published.reported if published else _NOT_IN_PAPER}.\n\n"
  )
  return head + markdown(table, headers=_HEADERS)


def _generalization_markdown(cfg, gen_table: list[dict]) -> str:
  head = (
    f"**{cfg.task}**: error on {cfg.generalization_size:,} fresh sequences per length, "
    f"{cfg.generalization_runs} models"
    + (" (for memorization the length is the gap T)" if cfg.task.startswith("mem") else "")
    + ".\n\n"
  )
  if not gen_table:
    return head + "No model evaluated: none solved (so far).\n"
  return head + markdown(gen_table, headers=_HEADERS)


_HEADERS = {
  "lengths": "train lengths",
  "success_rate": "success",
  "updates_to_solve_median": "updates to solve (median)",
  "updates_to_solve_min": "min",
  "updates_to_solve_max": "max",
  "test_error_median": "test error (median)",
  "strict_solved": "0 errors",
  "eval_length": "length",
  "error_median": "error (median)",
  "error_max": "error (worst)",
  "under_1pct": "models < 1%",
}


# --- figures -----------------------------------------------------------------------------

def generalization_figure(
  gen_rows: Sequence[dict[str, Any]],
  algorithms: Sequence[str] | None = None,
  success_error: float = 0.01,
  title: str = "",
):
  """Error vs evaluation length (log-log), a panel per task variant.

  A line per (algorithm, training lengths): the median over the evaluated models, with
  a band from the best to the worst model; the success threshold dashed; the training
  range shaded.
  """
  tasks = list(dict.fromkeys(r["task"] for r in gen_rows)) or [""]
  fig, axes = plt.subplots(
    1, len(tasks), figsize=(max(6.0, 4.6 * len(tasks)), 3.8), squeeze=False, sharey=True
  )
  floor = 1e-5
  for ax, task in zip(axes[0], tasks):
    trows = [r for r in gen_rows if r["task"] == task]
    table = generalization_table(trows, algorithms)
    settings = list(dict.fromkeys((r["lengths"], r["algorithm"]) for r in table))
    many = len({s[0] for s in settings}) > 1
    for lengths, alg in settings:
      pts = [r for r in table if r["lengths"] == lengths and r["algorithm"] == alg]
      xs = [r["eval_length"] for r in pts]
      med = [max(r["error_median"], floor) for r in pts]
      color, marker = style.color(alg), style.marker(alg)
      label = style.label(alg) + (f", T={lengths}" if many else "")
      line = ax.plot(xs, med, marker=marker, color=None if many else color, label=label)[0]
      lo = [max(min(float(r["error"]) for r in trows if _match(r, p)), floor) for p in pts]
      hi = [max(r["error_max"], floor) for r in pts]
      ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
    spans = sorted({(int(r["min_length"]), int(r["max_length"])) for r in trows})
    for i, (lo, hi) in enumerate(spans):
      label = "training lengths" if i == 0 else None
      if lo == hi:
        ax.axvline(lo, color="0.6", ls=":", lw=1, zorder=0, label=label)
      else:
        ax.axvspan(lo, hi, color="0.85", zorder=0, label=label)
    ax.axhline(success_error, color="k", ls="--", lw=0.8, label=f"{success_error:.0%} error")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(floor / 2, 1.5)
    ax.set_title(task)
    ax.set_xlabel("evaluation length")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=style.FONT_SMALL, loc="lower right")
  axes[0][0].set_ylabel(f"test error (floor {floor:g})")
  if title:
    fig.suptitle(title, fontsize=style.FONT_SUPTITLE)
  fig.tight_layout()
  return fig


def _match(row: dict[str, Any], point: dict[str, Any]) -> bool:
  return (
    row["algorithm"] == point["algorithm"]
    and int(row["eval_length"]) == point["eval_length"]
    and _lengths_label(row) == point["lengths"]
  )
