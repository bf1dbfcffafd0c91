"""Gradient flossing beside Ω under Figure 7's protocol: the report of a success_rate
workdir with SGD-CF runs (`experiments/success_rate.py`, the `flossing_cpu` preset).

* `load_runs`: every finished run's result row with its per-chunk traces;
* `comparison_table`, `comparison_markdown`: seeds solved with their 95 % interval and the
  updates the solved runs needed, per (init, length, algorithm), SGD-CR beside SGD-CF;
* `run_summary`, `run_summary_markdown`: per run, final and peak ρ(W_rec), final Ω, final
  λ₁ and λ₂ and the final error, to tell a run whose Ω ran away from one that learned;
* `exponents_figure`: λ₁, λ₂, ρ(W_rec) and Ω per chunk against updates for every run of
  one (init, length), a column per algorithm, solved and failed runs in their own colours.

Success rate against length with the same intervals is Figure 7's own figure,
`report.success_rate.success_rate_figure`, drawn for the compared algorithms.

References: Ω, docs/reference.md §2; the Lyapunov exponents the traces log and gradient
flossing (Engelken 2023) as this project takes it, §6.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker
from matplotlib.patches import Patch

from rnn_dynamics import rnn, stats
from rnn_dynamics.algorithms import FLOSSING_ALGORITHMS
from rnn_dynamics.report import style
from rnn_dynamics.report.pathological import markdown
from rnn_dynamics.report.success_rate import success_intervals

__all__ = [
  "ALGORITHMS",
  "OUTCOME_COLORS",
  "comparison_markdown",
  "comparison_table",
  "exponents_figure",
  "flossing_phases",
  "load_runs",
  "outcome",
  "run_summary",
  "run_summary_markdown",
]

ALGORITHMS = ("sgd_cr", "sgd_cf")
"""The two regularizers compared: Ω (SGD-CR) and flossing (SGD-CF), both with clipping."""

OUTCOME_COLORS = {"solved": "tab:blue", "failed": "tab:orange", "diverged": "black"}
"""A run's colour in `exponents_figure`, by `outcome`."""

# λ₁ solid, λ₂ dashed, ... (the traces keep at most five).
_EXPONENT_STYLES = ("-", "--", ":", "-.", (0, (1, 3)))


def outcome(row: Mapping[str, Any]) -> str:
  """`"solved"`, `"diverged"` (stopped by a non-finite loss) or `"failed"` (out of budget)."""
  if row["solved"]:
    return "solved"
  return "diverged" if row.get("diverged") else "failed"


def load_runs(workdir) -> list[dict[str, Any]]:
  """Every run of the finished groups of `workdir` (a `workdir.Reader`, e.g.
  `Workdir.open(path)`): its result row plus `traces`, field → float64 array over the
  chunks it trained (a run frozen once solved or diverged has NaN chunks after; they are
  cut off). A group still training is not read."""
  runs = []
  for name in workdir.groups():
    group = workdir.load_group(name)
    for i, row in enumerate(group["rows"]):
      traces = {f: np.asarray(a[i], np.float64) for f, a in group["traces"].items()}
      kept = np.isfinite(traces["step"])
      runs.append(dict(row, group=name, traces={f: a[kept] for f, a in traces.items()}))
  return runs


# --- tables --------------------------------------------------------------------------------


def _in_order(values: Iterable, order: Sequence | None = None) -> list:
  """The distinct `values`, those in `order` first (in its order), the rest as found."""
  found = list(dict.fromkeys(values))
  first = [v for v in (order or ()) if v in found]
  return first + [v for v in found if v not in first]


def comparison_table(
  rows: Sequence[Mapping[str, Any]],
  algorithms: Sequence[str] = ALGORITHMS,
  inits: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
  """One row per (init, length, algorithm) of `algorithms` (in that order, inits in
  `inits`' order, lengths ascending): the seeds solved with their 95 % interval
  (`stats.rate_columns` of `report.success_rate.success_intervals`), the runs that
  diverged, and the updates to solve of the solved runs (`updates_median`,
  `updates_min`, `updates_max`; None where none solved)."""
  rows = [r for r in rows if r["algorithm"] in algorithms]
  intervals = success_intervals(rows)
  by_point: dict[tuple[str, str, int], list[Mapping[str, Any]]] = defaultdict(list)
  for r in rows:
    by_point[(r["init"], r["algorithm"], int(r["length"]))].append(r)
  table = []
  for init in _in_order((r["init"] for r in rows), inits):
    for length in sorted({int(r["length"]) for r in rows}):
      for alg in algorithms:
        group = by_point.get((init, alg, length))
        if not group:
          continue
        took = [int(r["updates_to_solve"]) for r in group if r["solved"]]
        table.append(
          dict(
            init=init,
            length=length,
            algorithm=alg,
            **stats.rate_columns(intervals[(init, alg, length)]),
            diverged=sum(bool(r.get("diverged")) for r in group),
            updates_median=float(np.median(took)) if took else None,
            updates_min=min(took) if took else None,
            updates_max=max(took) if took else None,
          )
        )
  return table


def _updates_text(r: Mapping[str, Any]) -> str:
  if r["updates_median"] is None:
    return "–"
  if r["updates_min"] == r["updates_max"]:
    return f"{r['updates_median']:,.0f}"
  return f"{r['updates_median']:,.0f} ({r['updates_min']:,}–{r['updates_max']:,})"


def comparison_markdown(table: Sequence[Mapping[str, Any]]) -> str:
  """`comparison_table` as Markdown: a line per (init, T), for each algorithm its seeds
  solved (95 % interval; diverged runs counted) and the median (range) of its solved
  runs' updates to solve; with two algorithms, whether their intervals separate
  (`stats.intervals_separate`, the one test a rate is called higher by)."""
  algorithms = _in_order((r["algorithm"] for r in table), ALGORITHMS)  # SGD-CR first
  points = _in_order((r["init"], r["length"]) for r in table)
  cell = {(r["init"], r["length"], r["algorithm"]): r for r in table}
  columns = ["init", "T"]
  for alg in algorithms:
    columns += [f"{alg} solved", f"{alg} updates"]
  headers = {"init": "init", "T": "T"}
  for alg in algorithms:
    headers[f"{alg} solved"] = f"{style.label(alg)}: solved (95 %)"
    headers[f"{alg} updates"] = f"{style.label(alg)}: updates to solve, median (range)"
  paired = len(algorithms) == 2
  if paired:
    columns.append("apart")
    headers["apart"] = "intervals separate"
  lines = []
  for init, length in points:
    line = {"init": init, "T": str(length)}
    for alg in algorithms:
      r = cell.get((init, length, alg))
      if r is None:
        line[f"{alg} solved"] = line[f"{alg} updates"] = "–"
        continue
      diverged = f", {r['diverged']} diverged" if r["diverged"] else ""
      line[f"{alg} solved"] = r["success"] + diverged
      line[f"{alg} updates"] = _updates_text(r)
    if paired:
      a, b = (cell.get((init, length, alg)) for alg in algorithms)
      line["apart"] = (
        "–"
        if a is None or b is None
        else ("yes" if stats.intervals_separate(_interval(a), _interval(b)) else "no")
      )
    lines.append(line)
  return markdown(lines, columns=columns, headers=headers)


def _interval(r: Mapping[str, Any]) -> stats.RateInterval:
  return stats.RateInterval(
    r["solved"], r["seeds"], r["success_rate"], r["success_low"], r["success_high"]
  )


def _finite(a) -> np.ndarray:
  """`a` as float64 with ±inf made NaN: a gap in a line, and out of every statistic."""
  a = np.asarray(a, np.float64)
  return np.where(np.isfinite(a), a, np.nan)


def _last(a) -> float:
  """The last finite value (a diverged run's last chunk before its weights blew up)."""
  a = _finite(a)
  a = a[np.isfinite(a)]
  return float(a[-1]) if a.size else float("nan")


def _peak(a) -> float:
  a = _finite(a)
  return float(np.nanmax(a)) if np.isfinite(a).any() else float("nan")


def _trace(run: Mapping[str, Any], field: str) -> np.ndarray:
  """A field of the run's traces; all NaN where the workdir predates it (the exponents)."""
  traces = run["traces"]
  return traces[field] if field in traces else np.full(len(traces["step"]), np.nan)


SUMMARY_HEADERS = {
  "init": "init",
  "length": "T",
  "algorithm": "algorithm",
  "seed": "seed",
  "outcome": "outcome",
  "final_error": "final error",
  "final_rho": "final ρ",
  "peak_rho": "peak ρ",
  "final_omega": "final Ω",
  "final_lyapunov_1": "final λ₁",
  "final_lyapunov_2": "final λ₂",
}
"""`run_summary`'s columns and their headers in `run_summary_markdown`."""


def run_summary(
  runs: Sequence[Mapping[str, Any]],
  algorithms: Sequence[str] = ALGORITHMS,
  inits: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
  """Per run of `algorithms` (by init, length, algorithm, seed): its `outcome` and the
  update it stopped at (`updates`: when solved, else the updates it ran), its final error
  on fresh sequences, and from its traces the final and peak ρ(W_rec), the final Ω and
  the final λ₁, λ₂ (NaN where not traced). "Final" is the last finite chunk: for a
  diverged run, the last one before its weights blew up.

  Ω running away (the SGD-CR failure under `sigmoid` that flossing is set against) reads
  as a failed run whose ρ climbed far past 1/γ while its Ω stayed near 1 and its error at
  chance."""
  runs = [r for r in runs if r["algorithm"] in algorithms]
  init_order = _in_order((r["init"] for r in runs), inits)
  key = lambda r: (
    init_order.index(r["init"]), int(r["length"]), list(algorithms).index(r["algorithm"]),
    int(r["seed"]),
  )  # fmt: skip
  out = []
  for r in sorted(runs, key=key):
    out.append(
      dict(
        init=r["init"],
        length=int(r["length"]),
        algorithm=r["algorithm"],
        seed=int(r["seed"]),
        outcome=outcome(r),
        updates=int(r["updates_to_solve"] if r["solved"] else r["updates_done"]),
        final_error=float(r["final_error"]) if r.get("final_error") is not None else float("nan"),
        final_rho=_last(_trace(r, "spectral_radius")),
        peak_rho=_peak(_trace(r, "spectral_radius")),
        final_omega=_last(_trace(r, "omega")),
        final_lyapunov_1=_last(_trace(r, "lyapunov_1")),
        final_lyapunov_2=_last(_trace(r, "lyapunov_2")),
      )
    )
  return out


def _number(x: float, fmt: str) -> str:
  return f"{x:{fmt}}" if np.isfinite(x) else "–"


def run_summary_markdown(summary: Sequence[Mapping[str, Any]]) -> str:
  """`run_summary` as Markdown, one line per run (outcome with its update count)."""
  formats = dict(final_error=".3f", final_rho=".3g", peak_rho=".3g", final_omega=".3g",
                 final_lyapunov_1=".3f", final_lyapunov_2=".3f")  # fmt: skip
  lines = []
  for s in summary:
    line = {k: str(s[k]) for k in ("init", "length", "algorithm", "seed")}
    at = {"solved": "solved at", "diverged": "diverged by", "failed": "not solved in"}
    line["outcome"] = f"{at[s['outcome']]} {s['updates']:,}"
    line.update({k: _number(s[k], f) for k, f in formats.items()})
    lines.append(line)
  return markdown(lines, columns=list(SUMMARY_HEADERS), headers=SUMMARY_HEADERS)


# --- the exponents over training -----------------------------------------------------------


def flossing_phases(every: int, length: int, phases: int, until: int) -> list[tuple[int, int]]:
  """The update ranges `[start, end)` on which SGD-CF flosses (updates i with
  `i mod every < length`, for `phases` phases; 0: every phase up to `until`)."""
  count = phases if phases else -(-until // every)
  return [(p * every, min(p * every + length, until)) for p in range(count) if p * every < until]


def _inverse_gamma(init: str) -> float | None:
  """1/γ of the init's unit, γ = max |σ'|: ρ(W_rec) > 1/γ is necessary for exploding
  gradients, ρ < 1/γ sufficient for vanishing ones (docs/reference.md §5, "§2.1")."""
  spec = rnn.INITS.get(init)
  if spec is None:
    return None
  return 1.0 / (float(spec.unit.scale) * float(spec.unit.slope))


def exponents_figure(
  runs: Sequence[Mapping[str, Any]],
  *,
  init: str,
  length: int,
  algorithms: Sequence[str] = ALGORITHMS,
  k: int = 2,
  phases: tuple[int, int, int] | None = None,
  title: str = "",
):
  """The top `k` Lyapunov exponents (λ₁ solid, λ₂ dashed, ...), ρ(W_rec) and Ω after
  every chunk against updates, for every run of (`init`, `length`): a column per
  algorithm, the rows sharing their y axis and every panel the x axis; colour: the run's
  `outcome`.

  Non-finite values (a diverging run's last chunks) are gaps; a diverged run's last
  finite point in each panel is marked ×. The dotted lines are λ = 0 (what flossing
  drives the exponents towards) and ρ = 1/γ. `phases`, `(floss_every, floss_for,
  floss_phases)` of the config, shades SGD-CF's flossing updates.
  """
  group = [r for r in runs if r["init"] == init and int(r["length"]) == int(length)]
  algorithms = [a for a in algorithms if any(r["algorithm"] == a for r in group)]
  if not algorithms:
    raise ValueError(f"no run of these algorithms at init {init!r}, T = {length}")
  panels = (("λ (per step)", None), ("ρ(W_rec)", "spectral_radius"), ("Ω (chunk mean)", "omega"))
  fig, axes = plt.subplots(len(panels), len(algorithms), sharex=True, sharey="row",
                           figsize=(4.2 * len(algorithms), 6.4), squeeze=False)  # fmt: skip
  until = max((int(r["traces"]["step"][-1]) for r in group if r["traces"]["step"].size), default=1)
  rho: list[np.ndarray] = []  # every run's ρ, to pick the axis scale
  for col, alg in enumerate(algorithms):
    mine = sorted((r for r in group if r["algorithm"] == alg), key=lambda r: int(r["seed"]))
    solved = sum(outcome(r) == "solved" for r in mine)
    axes[0][col].set_title(f"{style.label(alg)}: {solved}/{len(mine)} solved",
                           fontsize=style.FONT_TITLE)  # fmt: skip
    for r in mine:
      steps, colour = r["traces"]["step"], OUTCOME_COLORS[outcome(r)]
      dots = "." if steps.size <= 2 else None  # a run of one or two chunks is still seen
      drawn = [
        (axes[0][col], _trace(r, f"lyapunov_{i + 1}"), _EXPONENT_STYLES[i]) for i in range(k)
      ]
      drawn += [(axes[p][col], _trace(r, f), "-") for p, (_, f) in enumerate(panels) if f]
      for ax, values, ls in drawn:
        values = _finite(values)
        ax.plot(steps, values, color=colour, ls=ls, lw=1, alpha=0.75, marker=dots)
        if outcome(r) == "diverged" and np.isfinite(values).any():
          last = np.flatnonzero(np.isfinite(values))[-1]
          ax.plot(steps[last], values[last], "x", color=colour, ms=6)
      rho.append(_finite(_trace(r, "spectral_radius")))
    axes[0][col].axhline(0.0, color="0.5", ls=":", lw=1)
    if (bound := _inverse_gamma(init)) is not None:
      axes[1][col].axhline(bound, color="0.5", ls=":", lw=1)
    if phases and alg in FLOSSING_ALGORITHMS:
      for start, end in flossing_phases(*phases, until=until):
        for ax in axes[:, col]:
          ax.axvspan(start, end, color="tab:red", alpha=0.08, lw=0)
  for ax, (name, _) in zip(axes[:, 0], panels):
    ax.set_ylabel(name, fontsize=style.FONT_MEDIUM)
  positive = np.concatenate(rho + [np.zeros(0)])
  positive = positive[positive > 0]  # NaN compares False
  if positive.size and positive.max() > 10 * positive.min():
    # ρ spanning decades (a sigmoid start near 0, a run-away): log, ticks in plain numbers.
    axes[1][0].set_yscale("log")
    axes[1][0].yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axes[1][0].yaxis.set_minor_formatter(ticker.NullFormatter())
  for ax in axes.flat:
    ax.grid(alpha=0.3)
  for ax in axes[-1]:
    ax.set_xlabel("updates")
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(_updates_tick))
  handles = [plt.Line2D([], [], color=c, label=o) for o, c in OUTCOME_COLORS.items()]
  handles += [plt.Line2D([], [], color="0.3", ls=_EXPONENT_STYLES[i], label=f"λ{i + 1}")
              for i in range(k)]  # fmt: skip
  handles.append(plt.Line2D([], [], color="0.5", ls=":", label="λ = 0, ρ = 1/γ"))
  if phases and any(a in FLOSSING_ALGORITHMS for a in algorithms):
    handles.append(Patch(color="tab:red", alpha=0.15, label="flossing updates"))
  fig.suptitle(title or f"{init}, T = {length}", fontsize=style.FONT_SUPTITLE)
  # The legend in a strip below the panels, clear of the title and the x labels.
  fig.tight_layout(rect=(0, 0.05, 1, 1))
  fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=style.FONT_SMALL,
             bbox_to_anchor=(0.5, 0.0), frameon=False)  # fmt: skip
  return fig


def _updates_tick(v, _) -> str:
  return f"{v / 1000:g}k" if abs(v) >= 1000 else f"{v:g}"
