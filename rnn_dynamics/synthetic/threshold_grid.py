"""How much the clipping threshold matters, with and without Ω (§3.2 and its footnote).

The paper: training "is not very sensitive to [the threshold] and the algorithm behaves
well even for rather small thresholds", with the heuristic of half to ten times the
average gradient norm; and (ICML footnote) "when using just the regularization term,
without clipping, learning usually fails due to exploding gradients". `experiments/
threshold_grid.py` trains a threshold × α × seed grid in one vmapped program; this module
builds that grid and turns its rows and traces into the table and the summary
(`rnn_dynamics.report.threshold_grid` draws its two heatmaps):

* `grid_runs`: the runs (`runs.Grid`: labels, hyper-parameters, paired keys; all
  `sgd_cr`, which keeps α as given, α = 0 included; the threshold ∞ is `math.inf`);
* `average_grad_norm`: the measured average pre-clip gradient norm the heuristic refers to;
* `cell_table`: per (init, threshold, α): success with its 95 % interval, median updates;
* `summary`: the table in text plus the two claims, checked with `stats.intervals_separate`.

In stored rows (JSON has no infinity) an unclipped run's `clip` reads None; `threshold`
maps it back to `math.inf`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from rnn_dynamics import algorithms, runs, stats

__all__ = [
  "average_grad_norm",
  "cell_table",
  "grid_runs",
  "summary",
  "threshold",
  "thresholds",
]

ALGORITHM = "sgd_cr"  # the only name whose hparams keep both the threshold and α as given


def thresholds(config) -> list[float]:
  """The grid's thresholds, ascending, ∞ last when `config.include_unclipped`."""
  out = sorted(float(c) for c in config.thresholds)
  return out + ([math.inf] if config.include_unclipped else [])


def threshold(row: dict[str, Any]) -> float:
  """A row's clipping threshold (`math.inf` for no clipping, stored as None in JSON)."""
  c = row["clip"]
  return math.inf if c is None else float(c)


def grid_runs(config) -> runs.Grid:
  """Every run of the grid, in init × threshold × α × seed order.

  Runs with the same seed share initial weights and training data in every cell, so the
  cells are paired comparisons.
  """
  clips = thresholds(config)
  cells = [(i, c, float(a)) for i in config.inits for c in clips for a in config.alphas]
  return runs.grid(
    cells,
    int(config.seeds),
    seed=config.seed,
    label=lambda cell, seed: dict(
      init=cell[0], clip=cell[1], alpha=cell[2], length=int(config.length), seed=seed
    ),
    hparams=lambda cell: algorithms.hparams(
      ALGORITHM, lr=config.lr, clip=cell[1], alpha=cell[2], init=cell[0]
    ),
  )


def average_grad_norm(rows: Sequence[dict], traces: dict[str, np.ndarray]) -> tuple[float, str]:
  """The average pre-clip gradient norm, and which runs it was measured on.

  Measured on the unclipped α = 0 runs (plain SGD: the loss gradient alone, no threshold
  acting on the trajectory), averaged over every update they made (`grad_norm` is each
  chunk's mean; frozen chunks are NaN and skipped). Without such runs in the grid, the
  first chunk of every run is used instead.

  Args:
    rows: the group's rows, in the order of `traces`' runs axis.
    traces: `sweep.TRACE_FIELDS` → `[runs, chunks]` arrays.

  Returns:
    `(norm, source)` where `source` says in words which updates were averaged.
  """
  norms = np.asarray(traces["grad_norm"], dtype=np.float64)
  pick = [i for i, r in enumerate(rows) if math.isinf(threshold(r)) and float(r["alpha"]) == 0]
  if pick:
    sel = norms[pick]
    source = f"mean over all updates of the {len(pick)} unclipped α = 0 runs"
  else:
    sel = norms[:, :1]
    source = f"mean over the first chunk of all {len(rows)} runs"
  sel = sel[np.isfinite(sel)]
  return (float(sel.mean()) if sel.size else math.nan), source


def cell_table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
  """One row per (init, threshold, α), ordered like the grid.

  Returns:
    Rows with `init`, `clip` (`math.inf` for none), `alpha`, `seeds`, `solved`,
    `success` (`"3/5 (15–95 %)"`), `success_rate`, `success_low`, `success_high` (the
    95 % Clopper–Pearson interval), `updates_to_solve_median` (solved runs; None if
    none), `diverged`.
  """
  cells: dict[tuple, list[dict]] = defaultdict(list)
  for r in rows:
    cells[(r["init"], threshold(r), float(r["alpha"]))].append(r)
  inits = list(dict.fromkeys(r["init"] for r in rows))
  out = []
  for key in sorted(cells, key=lambda k: (inits.index(k[0]), k[1], k[2])):
    runs = cells[key]
    ci = stats.success_interval([r["solved"] for r in runs])
    took = [r["updates_to_solve"] for r in runs if r["solved"]]
    out.append(
      dict(
        init=key[0],
        clip=key[1],
        alpha=key[2],
        **stats.rate_columns(ci),
        updates_to_solve_median=float(np.median(took)) if took else None,
        diverged=sum(bool(r["diverged"]) for r in runs),
      )
    )
  return out


def _fmt_clip(c: float) -> str:
  return "∞" if math.isinf(c) else f"{c:g}"


def summary(table: Sequence[dict[str, Any]], avg_norm: float, norm_source: str) -> str:
  """The grid as text (success with intervals, threshold rows × α columns, per init) and
  the two claims measured on it.

  Claims, per init, for every α > 0:
    * threshold insensitivity: the success of each finite threshold in the heuristic range
      [0.5, 10] × `avg_norm` (and the smallest thresholds below it), whether any two
      thresholds' intervals separate;
    * the footnote: no clipping (∞) against the best clipped threshold.
  """
  inits = list(dict.fromkeys(r["init"] for r in table))
  clips = sorted({r["clip"] for r in table})
  alphas = sorted({r["alpha"] for r in table})
  cell = {(r["init"], r["clip"], r["alpha"]): r for r in table}
  width = 17
  lines = [f"average pre-clip gradient norm: {avg_norm:.3g} ({norm_source})"]
  for init in inits:
    lines.append(f"\n{init}: success (95 % interval), threshold × α")
    lines.append(f"{'threshold':>10} " + "".join(f"{'α=' + f'{a:g}':<{width}}" for a in alphas))
    for c in clips:
      row = [cell.get((init, c, a)) for a in alphas]
      lines.append(
        f"{_fmt_clip(c):>10} " + "".join(f"{r['success'] if r else '-':<{width}}" for r in row)
      )
    finite = [c for c in clips if math.isfinite(c)]
    in_range = [c for c in finite if 0.5 * avg_norm <= c <= 10 * avg_norm]
    for a in (a for a in alphas if a > 0):
      rs = [cell[(init, c, a)] for c in finite if (init, c, a) in cell]
      cis = [_ci(r) for r in rs]
      split = any(stats.intervals_separate(x, y) for x in cis for y in cis)
      heur = [cell[(init, c, a)]["success"] for c in in_range if (init, c, a) in cell]
      lines.append(
        f"  α={a:g}: thresholds 0.5–10× avg ({', '.join(map(_fmt_clip, in_range)) or 'none'}):"
        f" {'; '.join(heur) or '-'}; any two finite thresholds' intervals separate: "
        f"{'yes' if split else 'no'}"
      )
      unclipped = cell.get((init, math.inf, a))
      if unclipped and rs:
        best = max(rs, key=lambda r: (r["solved"], -r["clip"]))
        sep = stats.intervals_separate(_ci(unclipped), _ci(best))
        lines.append(
          f"         no clipping {unclipped['success']} (diverged {unclipped['diverged']}) vs "
          f"best clipped (threshold {_fmt_clip(best['clip'])}) {best['success']}: "
          f"intervals {'separate' if sep else 'overlap'}"
        )
  return "\n".join(lines)


def _ci(r: dict[str, Any]) -> stats.RateInterval:
  return stats.RateInterval(
    r["solved"], r["seeds"], r["success_rate"], r["success_low"], r["success_high"]
  )
