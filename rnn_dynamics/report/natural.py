"""Figures of the natural tasks (Tables 1–2: `experiments/polyphonic.py`, `char_lm.py`).

The tables themselves are `rnn_dynamics.natural.report`'s; this draws what they come from:

* `epoch_curves_figure`: a score per epoch for several runs side by side, a panel per
  split.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, §4.2 and Tables 1–2.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import matplotlib.pyplot as plt

from rnn_dynamics.report import style

__all__ = ["epoch_curves_figure"]


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
      ax.plot([r["epoch"] for r in rows], values, marker="o", ms=2.5, color=style.run_color(i),
              label=label)
    for j, (label, value) in enumerate((reference or {}).items()):
      ax.axhline(value, color="k", lw=0.8, ls=("-.", ":", "--")[j % 3], label=label)
    ax.set(xlabel="epoch", title=split)
    ax.grid(alpha=0.3)
  axes[0, 0].set_ylabel(ylabel)
  axes[0, -1].legend(fontsize=style.FONT_SMALL)
  if title:
    fig.suptitle(title, fontsize=style.FONT_TITLE)
  fig.tight_layout()
  return fig
