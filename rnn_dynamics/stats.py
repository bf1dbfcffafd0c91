"""Success rates with their uncertainty: exact (Clopper–Pearson) binomial intervals.

With 3 or 5 seeds per point a success rate is a coarse measurement: 3/5 is compatible with
anything from 15 % to 95 %. Every table, figure and notebook that shows a rate goes through
`success_interval` / `format_rate` (a table's columns: `rate_columns`), so they all carry
the same 95 % interval, and
`intervals_separate` is the one test used when two rates are compared in words.

References:
  Clopper & Pearson (1934), The use of confidence or fiducial limits illustrated in the
  case of the binomial, Biometrika 26(4).
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

from scipy import stats

__all__ = [
  "LEVEL",
  "RateInterval",
  "format_rate",
  "intervals_separate",
  "rate_columns",
  "success_interval",
]

LEVEL = 0.95
"""Confidence level of every interval shown."""


class RateInterval(NamedTuple):
  """A success rate `k / n` with its two-sided exact confidence interval.

  Attributes:
    k: successes.
    n: trials (runs).
    rate: `k / n`.
    low: lower end of the interval (0 when `k == 0`).
    high: upper end of the interval (1 when `k == n`).
  """

  k: int
  n: int
  rate: float
  low: float
  high: float


def success_interval(k: int | Iterable[bool], n: int | None = None, level: float = LEVEL):
  """The Clopper–Pearson interval of `k` successes out of `n`.

  Args:
    k: number of successes, or an iterable of per-run outcomes (then `n` is its length).
    n: number of trials (required when `k` is a count).
    level: confidence level.

  Returns:
    A `RateInterval`. E.g. 0/5 → [0, 0.522], 5/5 → [0.478, 1], 3/5 → [0.147, 0.947].

  Raises:
    ValueError: `n < 1` or `k` outside `[0, n]`.
  """
  if n is None:
    outcomes = [bool(x) for x in k]
    k, n = sum(outcomes), len(outcomes)
  k, n = int(k), int(n)
  if n < 1 or not 0 <= k <= n:
    raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
  ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
  return RateInterval(k, n, k / n, float(ci.low), float(ci.high))


def _pct(x: float) -> str:
  return f"{100 * x:.0f}"


def format_rate(k: int | Iterable[bool] | RateInterval, n: int | None = None) -> str:
  """`"3/5 (15–95 %)"`: the count and its 95 % interval, in percent.

  Args:
    k: a `RateInterval`, a count of successes, or per-run outcomes.
    n: number of trials when `k` is a count.
  """
  ci = k if isinstance(k, RateInterval) else success_interval(k, n)
  return f"{ci.k}/{ci.n} ({_pct(ci.low)}–{_pct(ci.high)} %)"


def rate_columns(ci: RateInterval) -> dict[str, int | float | str]:
  """The columns every table gives a success rate in, from its interval: `seeds` (runs),
  `solved`, `success` (`format_rate`), `success_rate`, `success_low`, `success_high`."""
  return dict(
    seeds=ci.n,
    solved=ci.k,
    success=format_rate(ci),
    success_rate=ci.rate,
    success_low=ci.low,
    success_high=ci.high,
  )


def intervals_separate(a: RateInterval, b: RateInterval) -> bool:
  """Whether two rates' intervals do not overlap (the only case a README calls one
  rate higher than another).

  Non-overlap of two 95 % intervals is a conservative test (a difference can be
  significant while the intervals still overlap), which suits claims made in words.
  """
  return a.high < b.low or b.high < a.low
