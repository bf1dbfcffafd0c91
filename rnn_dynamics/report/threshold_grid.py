"""The threshold × α grid's heatmaps (`experiments/threshold_grid.py`, §3.2).

`heatmap_figure` draws either quantity of `rnn_dynamics.synthetic.threshold_grid.cell_table`'s rows
over the grid, a panel per initialisation: the success rate (each cell: the count and its
95 % interval) or the median updates to solve, with the measured average pre-clip
gradient norm marked on the threshold axis and the paper's heuristic range (half to ten
times it) shaded under it.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, §3.2 and its footnote.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors

from rnn_dynamics.report import style

__all__ = ["heatmap_figure"]

_CELL_FONT = 6.5  # a cell holds two short lines of text
_LEGEND_FONT = 6  # the legend sits under a panel, as wide as it


def _threshold_text(c: float) -> str:
  """A threshold on the axis: ∞ for no clipping."""
  return "∞" if math.isinf(c) else f"{c:g}"


def heatmap_figure(
  table: Sequence[dict[str, Any]],
  *,
  value: str,
  avg_norm: float | None = None,
  norm_source: str = "",
  max_updates: int | None = None,
  title: str = "",
):
  """A heatmap over threshold (x) × α (y), a panel per initialisation.

  Args:
    table: `cell_table` rows.
    value: "success" (the rate, each cell's text: the count and its 95 % interval) or
      "updates" (median updates to solve over the solved runs, log colour; "–" if none).
    avg_norm: the measured average pre-clip norm, drawn as a line on the threshold axis
      with the heuristic's range (half to ten times it) shaded.
    norm_source: how `avg_norm` was measured, for the legend.
    max_updates: the budget, the top of the colour scale for "updates".
    title: figure title.
  """
  if value not in ("success", "updates"):
    raise ValueError(f"value must be 'success' or 'updates', got {value!r}")
  inits = list(dict.fromkeys(r["init"] for r in table))
  clips = sorted({r["clip"] for r in table})
  alphas = sorted({r["alpha"] for r in table})
  size = ((0.9 * len(clips) + 2.6) * len(inits), 0.55 * len(alphas) + 2.2)
  fig, axes = plt.subplots(1, len(inits), figsize=size, squeeze=False)
  for ax, init in zip(axes[0], inits):
    grid, text = _cells([r for r in table if r["init"] == init], value, alphas, clips)
    if value == "success":
      im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, origin="lower", aspect="auto")
      label = "success rate"
    else:
      finite = grid[np.isfinite(grid)]
      top = max_updates or (finite.max() if finite.size else 1.0)
      low = min(finite.min() if finite.size else top / 10, top / 10)
      im = ax.imshow(
        grid, cmap="magma_r", norm=colors.LogNorm(low, top), origin="lower", aspect="auto"
      )
      label = "median updates to solve"
    for i in range(len(alphas)):
      for j in range(len(clips)):
        level = grid[i, j]
        dark = value == "success" and np.isfinite(level) and level < 0.6
        ax.text(
          j,
          i,
          text[i][j],
          ha="center",
          va="center",
          fontsize=_CELL_FONT,
          color="w"
          if dark
          or (value == "updates" and np.isfinite(level) and level > 0.3 * (max_updates or np.inf))
          else "k",
        )
    ax.set_xticks(range(len(clips)), [_threshold_text(c) for c in clips])
    ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set_xlabel("clipping threshold (∞: none)")
    ax.set_ylabel("α (Ω weight)")
    ax.set_title(init)
    _mark_average_norm(ax, avg_norm, norm_source, clips)
    fig.colorbar(im, ax=ax, label=label, shrink=0.85)
  if title:
    fig.suptitle(title, fontsize=style.FONT_TITLE)
  fig.tight_layout()
  return fig


def _cells(rows, value: str, alphas: list[float], clips: list[float]):
  """One init's `[α, threshold]` grid of colour levels and the cells' texts."""
  grid = np.full((len(alphas), len(clips)), np.nan)
  text = [["" for _ in clips] for _ in alphas]
  for r in rows:
    i, j = alphas.index(r["alpha"]), clips.index(r["clip"])
    if value == "success":
      grid[i, j] = r["success_rate"]
      text[i][j] = f"{r['solved']}/{r['seeds']}\n{100 * r['success_low']:.0f}–" + (
        f"{100 * r['success_high']:.0f}%"
      )
    else:
      med = r["updates_to_solve_median"]
      grid[i, j] = np.nan if med is None else med
      text[i][j] = "–" if med is None else f"{med / 1000:.3g}k"
  return grid, text


def _mark_average_norm(ax, avg_norm: float | None, norm_source: str, clips: list[float]):
  """The measured average norm as a line on the threshold axis, the heuristic's range
  (half to ten times it) shaded under it."""
  pos = _axis_position(avg_norm, clips) if avg_norm is not None else None
  if pos is None:
    return
  ax.axvline(
    pos,
    color="tab:red",
    lw=1.5,
    ls="--",
    label=f"avg ‖∂E/∂θ‖ = {avg_norm:.3g}" + (f" ({norm_source})" if norm_source else ""),
  )
  band = [_axis_position(f * avg_norm, clips) for f in (0.5, 10.0)]
  lo = band[0] if band[0] is not None else -0.5
  hi = band[1] if band[1] is not None else sum(math.isfinite(c) for c in clips) - 0.5
  ax.axvspan(
    lo, hi, ymin=0, ymax=0.03, color="tab:red", alpha=0.8,
    label="0.5–10 × avg (paper's heuristic)",
  )
  ax.legend(fontsize=_LEGEND_FONT, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)


def _axis_position(value: float, ticks: Sequence[float]) -> float | None:
  """Where `value` falls on a categorical axis of ascending finite `ticks` (log-linear
  between neighbours), or None outside them."""
  finite = [t for t in ticks if math.isfinite(t)]
  if not finite or not math.isfinite(value) or value < finite[0] or value > finite[-1]:
    return None
  return float(np.interp(math.log(value), np.log(finite), np.arange(len(finite))))
