"""Figures drawn from saved results (never from live training state)."""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rnn_dynamics import results  # noqa: E402

__all__ = ["ALGORITHM_LABELS", "save_figure", "success_rate_figure", "success_table"]

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
    for alg in algorithms:
      pts = sorted((t, r) for (i, a, t), r in rates.items() if i == init and a == alg)
      if not pts:
        continue
      color, marker = _STYLE.get(alg, (None, "x"))
      ax.plot([t for t, _ in pts], [r for _, r in pts], marker=marker, color=color,
              label=ALGORITHM_LABELS.get(alg, alg))
    ax.set_xscale("log")
    ax.set_title(init)
    ax.set_xlabel("sequence length")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3, which="both")
  axes[0][0].set_ylabel("success rate")
  axes[0][-1].legend(loc="lower left")
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  return fig


def save_figure(fig, stem: str | Path) -> None:
  """PNG and SVG, each written atomically."""
  for ext in ("png", "svg"):
    buf = io.BytesIO()
    fig.savefig(buf, format=ext, dpi=130)
    results.atomic_write_bytes(f"{stem}.{ext}", buf.getvalue())
  plt.close(fig)
