"""Success-rate intervals and the updates-to-solve curve, against hand-checked values."""

import math

import numpy as np
import pytest

from rnn_dynamics import stats
from rnn_dynamics.report import success_rate as report


@pytest.mark.parametrize(
  "k, n, low, high",
  [
    # k = 0 and k = n have closed forms: 1 - 0.025^(1/n) and 0.025^(1/n).
    (0, 5, 0.0, 0.52182),
    (5, 5, 0.47818, 1.0),
    (0, 3, 0.0, 0.70760),
    # k = 1 of 2: 1 - sqrt(0.975) and sqrt(0.975).
    (1, 2, 0.01258, 0.98742),
    # 3 of 5, as tabulated for the exact interval.
    (3, 5, 0.14663, 0.94726),
  ],
)
def test_clopper_pearson_interval(k, n, low, high):
  ci = stats.success_interval(k, n)
  assert (ci.k, ci.n, ci.rate) == (k, n, k / n)
  assert ci.low == pytest.approx(low, abs=1e-5)
  assert ci.high == pytest.approx(high, abs=1e-5)


def test_interval_from_outcomes_and_formatting():
  assert stats.success_interval([True, False, True, True, False]) == stats.success_interval(3, 5)
  assert stats.format_rate(3, 5) == "3/5 (15–95 %)"
  assert stats.format_rate([False] * 5) == "0/5 (0–52 %)"
  assert stats.format_rate(stats.success_interval(5, 5)) == "5/5 (48–100 %)"
  with pytest.raises(ValueError):
    stats.success_interval(6, 5)
  with pytest.raises(ValueError):
    stats.success_interval([])


def test_rate_columns_are_every_tables_six_in_order():
  # The methods, pathological and threshold-grid tables all write these, in this order
  # (their CSV columns).
  columns = stats.rate_columns(stats.success_interval(3, 5))
  assert list(columns) == [
    "seeds", "solved", "success", "success_rate", "success_low", "success_high"
  ]  # fmt: skip
  assert columns["seeds"] == 5 and columns["solved"] == 3 and columns["success_rate"] == 0.6
  assert columns["success"] == "3/5 (15–95 %)"
  ends = (columns["success_low"], columns["success_high"])
  assert ends == pytest.approx((0.1466, 0.9473), abs=1e-4)


def test_intervals_separate():
  ci = stats.success_interval
  # 0/5 [0, 52 %] and 5/5 [48 %, 100 %] overlap: five seeds cannot tell them apart...
  assert not stats.intervals_separate(ci(0, 5), ci(5, 5))
  # ...ten can: 0/10 [0, 31 %] vs 10/10 [69 %, 100 %], in either order.
  assert stats.intervals_separate(ci(0, 10), ci(10, 10))
  assert stats.intervals_separate(ci(10, 10), ci(0, 10))
  assert not stats.intervals_separate(ci(0, 5), ci(3, 5))


def test_solved_curve_steps_up_at_each_solve_and_ends_at_the_budget():
  x, frac = report.solved_curve([3000, None, 1000, 1000], max_updates=5000)
  np.testing.assert_array_equal(x, [0, 1000, 1000, 3000, 5000])
  np.testing.assert_allclose(frac, [0, 0.25, 0.5, 0.75, 0.75])
  x, frac = report.solved_curve([None, None], max_updates=100)
  np.testing.assert_array_equal(x, [0, 100])
  np.testing.assert_array_equal(frac, [0, 0])


def _rows():
  rows = []
  for alg, solved_at in (("sgd", [None] * 5), ("sgd_cr", [500, 1500, None, 2500, 1000])):
    for length in (10, 20):
      for seed, u in enumerate(solved_at):
        rows.append(
          dict(
            init="smart_tanh",
            algorithm=alg,
            length=length,
            seed=seed,
            solved=u is not None,
            updates_to_solve=u,
          )
        )
  return rows


def test_figures_carry_the_intervals():
  rows = _rows()
  ivs = report.success_intervals(rows)
  assert ivs[("smart_tanh", "sgd_cr", 10)] == stats.success_interval(4, 5)
  assert report.success_table(rows)[("smart_tanh", "sgd", 20)] == 0.0
  fig = report.success_rate_figure(rows, inits=["smart_tanh"], algorithms=["sgd", "sgd_cr"])
  # One error bar per (algorithm): its vertical segments span the intervals.
  segments = [seg for c in fig.axes[0].collections for seg in c.get_segments()]
  spans = sorted((round(s[0][1], 4), round(s[1][1], 4)) for s in segments)
  cr = stats.success_interval(4, 5)
  assert (round(cr.low, 4), round(cr.high, 4)) in spans
  assert (0.0, round(stats.success_interval(0, 5).high, 4)) in spans
  fig = report.updates_to_solve_figure(
    rows, inits=["smart_tanh"], algorithms=["sgd", "sgd_cr"], max_updates=3000
  )
  cr_axis = fig.axes[1]
  ys = [line.get_ydata() for line in cr_axis.get_lines() if len(line.get_ydata()) > 2]
  assert any(math.isclose(y[-1], 0.8) for y in ys)  # 4 of 5 solved by the budget
  # A group run with a smaller budget (the baselines after SGD-CR) ends at its own.
  small = [dict(r, budget=1000) if r["algorithm"] == "sgd" else r for r in rows]
  fig = report.updates_to_solve_figure(
    small, inits=["smart_tanh"], algorithms=["sgd", "sgd_cr"], max_updates=3000
  )
  curves = [line for line in fig.axes[0].get_lines() if line.get_linestyle() != ":"]
  ends = [max(line.get_xdata()) for line in curves if len(line.get_xdata()) > 1]
  assert 1000 in ends and 3000 not in ends
