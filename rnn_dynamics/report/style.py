"""One look for every figure and table: algorithm labels, colours and markers.

Labels follow the paper's own usage where each experiment comes from (docs/reference.md
§4): the synthetic tasks (Figure 7, §4.1) write SGD-C and SGD-CR, Tables 1–2 (the natural
tasks) write SGD+C and SGD+CR. `label(algorithm)` gives the first, `label(algorithm,
table=True)` the second; the algorithm names in files (`sgd`, `sgd_c`, ...) never change.
"""

from __future__ import annotations

__all__ = [
  "ALGORITHM_LABELS",
  "COLORS",
  "DPI",
  "LINESTYLES",
  "MARKERS",
  "TABLE_LABELS",
  "color",
  "label",
  "marker",
]

ALGORITHM_LABELS = {
  "sgd": "SGD",
  "sgd_c": "SGD-C",
  "sgd_cr": "SGD-CR",
  "sgd_elementwise": "SGD (element-wise clip)",
}
"""Figure 7's and §4.1's names (docs/reference.md §2, §4)."""

TABLE_LABELS = {"sgd": "SGD", "sgd_c": "SGD+C", "sgd_cr": "SGD+CR"}
"""Tables 1–2's names for the same algorithms (docs/reference.md §4)."""

COLORS = {
  "sgd": "tab:blue",
  "sgd_c": "tab:orange",
  "sgd_cr": "tab:green",
  "sgd_elementwise": "tab:purple",
}
MARKERS = {"sgd": "o", "sgd_c": "s", "sgd_cr": "^", "sgd_elementwise": "v"}

LINESTYLES = ("-", "--", ":", "-.")
"""Line styles for a second grouping (e.g. one per initialisation), in order."""

DPI = 130
"""Resolution of every saved PNG (`rnn_dynamics.plots.save_figure`)."""


def label(algorithm: str, table: bool = False) -> str:
  """The display name of `algorithm` (its own name if it has none)."""
  names = TABLE_LABELS if table else ALGORITHM_LABELS
  return names.get(algorithm, ALGORITHM_LABELS.get(algorithm, algorithm))


def color(algorithm: str) -> str | None:
  """The algorithm's colour; None (matplotlib's next) for one without."""
  return COLORS.get(algorithm)


def marker(algorithm: str) -> str:
  return MARKERS.get(algorithm, "x")
