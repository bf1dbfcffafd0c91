"""One look for every figure and table: labels, colours, markers, font sizes, and the one
way a figure is written (`save_figure`).

Labels follow the paper's own usage where each experiment comes from (docs/reference.md
§4): the synthetic tasks (Figure 7, §4.1) write SGD-C and SGD-CR, Tables 1–2 (the natural
tasks) write SGD+C and SGD+CR. `label(algorithm)` gives the first, `label(algorithm,
table=True)` the second; the algorithm names in files (`sgd`, `sgd_c`, ...) never change.

Importing this module selects matplotlib's Agg backend (binaries and CI have no display;
a notebook brings inline figures back with `%matplotlib inline`); every figure module of
`rnn_dynamics.report` imports it first.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

from rnn_dynamics import results  # noqa: E402

__all__ = [
  "ALGORITHM_LABELS",
  "COLORS",
  "DPI",
  "FONT_MEDIUM",
  "FONT_SMALL",
  "FONT_SUPTITLE",
  "FONT_TITLE",
  "LINESTYLES",
  "MARKERS",
  "TABLE_LABELS",
  "color",
  "label",
  "length_axis",
  "marker",
  "run_color",
  "save_figure",
]

ALGORITHM_LABELS = {
  "sgd": "SGD",
  "sgd_c": "SGD-C",
  "sgd_cr": "SGD-CR",
  "sgd_elementwise": "SGD (element-wise clip)",
  "sgd_cf": "SGD-CF (flossing)",
}
"""Figure 7's and §4.1's names (docs/reference.md §2, §4), and SGD-CF's (§6)."""

TABLE_LABELS = {"sgd": "SGD", "sgd_c": "SGD+C", "sgd_cr": "SGD+CR"}
"""Tables 1–2's names for the same algorithms (docs/reference.md §4)."""

COLORS = {
  "sgd": "tab:blue",
  "sgd_c": "tab:orange",
  "sgd_cr": "tab:green",
  "sgd_elementwise": "tab:purple",
  "sgd_cf": "tab:red",
}
MARKERS = {"sgd": "o", "sgd_c": "s", "sgd_cr": "^", "sgd_elementwise": "v", "sgd_cf": "D"}

LINESTYLES = ("-", "--", ":", "-.")
"""Line styles for a second grouping (e.g. one per initialisation), in order."""

FONT_SMALL = 7
"""Legends and labels of crowded figures (many panels or many lines)."""
FONT_MEDIUM = 8
"""Legends of figures with room for them (the analysis figures)."""
FONT_TITLE = 9
"""Panel titles of grids of panels, and long single-panel titles."""
FONT_SUPTITLE = 10
"""A figure's overall title (`fig.suptitle`)."""

DPI = 130
"""Resolution of every saved PNG (`save_figure`)."""


def label(algorithm: str, table: bool = False) -> str:
  """The display name of `algorithm` (its own name if it has none)."""
  names = TABLE_LABELS if table else ALGORITHM_LABELS
  return names.get(algorithm, ALGORITHM_LABELS.get(algorithm, algorithm))


def color(algorithm: str) -> str | None:
  """The algorithm's colour; None (matplotlib's next) for one without."""
  return COLORS.get(algorithm)


def marker(algorithm: str) -> str:
  return MARKERS.get(algorithm, "x")


def run_color(i: int):
  """The colour of the `i`-th of several runs drawn side by side (seeds, model sizes)."""
  return plt.cm.tab10(i % 10)


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


def save_figure(fig, stem: str | Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
  """Writes `fig` as `<stem>.png`, `<stem>.svg`, ... (each atomically, process 0 only, at
  `DPI`: `rnn_dynamics.results`), closes it and returns the paths."""
  paths = []
  for ext in formats:
    buf = io.BytesIO()
    fig.savefig(buf, format=ext, dpi=DPI)
    results.atomic_write_bytes(f"{stem}.{ext}", buf.getvalue())
    paths.append(Path(f"{stem}.{ext}"))
  plt.close(fig)
  return paths
