"""Figures drawn from saved results (never from live training state)."""

from __future__ import annotations

import io
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

from rnn_dynamics import results  # noqa: E402

__all__ = [
  "ALGORITHM_LABELS",
  "generalization_figure",
  "length_axis",
  "save_figure",
  "success_rate_figure",
  "success_table",
]

ALGORITHM_LABELS = {
  "sgd": "SGD",
  "sgd_c": "SGD-C",
  "sgd_cr": "SGD-CR",
  "sgd_elementwise": "SGD (element-wise clip)",
}
_STYLE = {"sgd": ("tab:blue", "o"), "sgd_c": ("tab:orange", "s"), "sgd_cr": ("tab:green", "^")}


def success_table(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str, int], float]:
  """(init, algorithm, length) → share of seeds solved."""
  counts: dict[tuple[str, str, int], list[bool]] = defaultdict(list)
  for r in rows:
    counts[(r["init"], r["algorithm"], int(r["length"]))].append(bool(r["solved"]))
  return {k: sum(v) / len(v) for k, v in counts.items()}


def success_rate_figure(
  rows: Sequence[dict[str, Any]], *, inits: Sequence[str], algorithms: Sequence[str], title=""
):
  """Figure 7: success rate vs sequence length (log x), a panel per init, a line per algorithm."""
  rates = success_table(rows)
  fig, axes = plt.subplots(1, len(inits), figsize=(4.2 * len(inits), 3.4), sharey=True,
                           squeeze=False)
  for ax, init in zip(axes[0], inits):
    for j, alg in enumerate(algorithms):
      pts = sorted((t, r) for (i, a, t), r in rates.items() if i == init and a == alg)
      if not pts:
        continue
      color, marker = _STYLE.get(alg, (None, "x"))
      # Algorithms often tie (all solve, or none): a small sideways offset on the log axis
      # keeps every line's markers visible instead of drawing one over the other.
      shift = math.exp(0.02 * (j - (len(algorithms) - 1) / 2))
      ax.plot([t * shift for t, _ in pts], [r for _, r in pts], marker=marker, color=color,
              alpha=0.85, label=ALGORITHM_LABELS.get(alg, alg))
    length_axis(ax, sorted({t for (_, _, t) in rates}))
    ax.set_title(init)
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3, which="both")
  axes[0][0].set_ylabel("success rate")
  axes[0][-1].legend(loc="lower left")
  if title:
    fig.suptitle(title)
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


def save_figure(fig, stem: str | Path) -> None:
  """PNG and SVG, each written atomically."""
  for ext in ("png", "svg"):
    buf = io.BytesIO()
    fig.savefig(buf, format=ext, dpi=130)
    results.atomic_write_bytes(f"{stem}.{ext}", buf.getvalue())
  plt.close(fig)
