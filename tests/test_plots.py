"""Tests for the figures of rnn_dynamics/report/ and its one style (report/style.py):
figures from saved rows, one `save_figure`, labels as the paper writes them."""

from __future__ import annotations

import numpy as np
import pytest

from rnn_dynamics.report import generalization, natural, style
from rnn_dynamics.report import success_rate as report

ROWS = [
  dict(init=init, algorithm=alg, length=t, seed=s, solved=(s + t) % 3 == 0,
       updates_to_solve=100 * (s + 1) if (s + t) % 3 == 0 else None)
  for init in ("basic_tanh", "smart_tanh")
  for alg in ("sgd", "sgd_c", "sgd_cr")
  for t in (10, 20)
  for s in range(3)
]


def test_labels_follow_the_paper_per_context():
  assert [style.label(a) for a in ("sgd", "sgd_c", "sgd_cr")] == ["SGD", "SGD-C", "SGD-CR"]
  assert [style.label(a, table=True) for a in ("sgd", "sgd_c", "sgd_cr")] == [
    "SGD", "SGD+C", "SGD+CR"
  ]
  assert style.label("sgd_elementwise", table=True) == "SGD (element-wise clip)"
  assert style.label("other") == "other" and style.marker("other") == "x"
  assert style.color("other") is None
  assert set(style.COLORS) == set(style.MARKERS) == set(style.ALGORITHM_LABELS)


def test_success_table_counts_seeds():
  table = report.success_table(ROWS)
  assert table[("basic_tanh", "sgd", 10)] == pytest.approx(1 / 3)


def test_solved_curve_steps_up_at_each_solve():
  x, frac = report.solved_curve([30, None, 10], 100)
  np.testing.assert_array_equal(x, [0, 10, 30, 100])
  np.testing.assert_allclose(frac, [0, 1 / 3, 2 / 3, 2 / 3])
  with pytest.raises(ValueError):
    report.solved_curve([], 10)


def test_figures_are_saved_as_png_and_svg(tmp_path):
  kw = dict(inits=["basic_tanh", "smart_tanh"], algorithms=["sgd", "sgd_c", "sgd_cr"])
  fig = report.success_rate_figure(ROWS, **kw)
  assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == [
    "SGD", "SGD-C", "SGD-CR"
  ]
  paths = style.save_figure(fig, tmp_path / "rate")
  assert [p.name for p in paths] == ["rate.png", "rate.svg"]
  assert paths[0].read_bytes()[:4] == b"\x89PNG" and b"<svg" in paths[1].read_bytes()[:500]
  style.save_figure(report.updates_to_solve_figure(ROWS, max_updates=400, **kw), tmp_path / "u",
                    formats=("png",))
  gen = [dict(seed=s, eval_length=t, error=e, solved=True)
         for s in range(2) for t, e in ((50, 0.0), (100, 0.02), (200, None))]
  style.save_figure(generalization.seed_curves_figure(gen, train_range=(50, 100)), tmp_path / "g")
  assert sorted(p.name for p in tmp_path.iterdir()) == [
    "g.png", "g.svg", "rate.png", "rate.svg", "u.png"
  ]


def test_continued_figure_has_a_panel_per_model_a_line_per_test_point_and_the_median(
  tmp_path,
):
  rows = [
    dict(seed=s, updates_after_pass=p, eval_length=t, updates_to_solve=1000 * (s + 1),
         error=None if (s, p, t) == (1, 50, 200) else 0.01 * s + p / 1e4)
    for s in range(4) for p in (0, 50, 100) for t in (50, 100, 200)
  ]  # fmt: skip
  fig = generalization.continued_figure(rows, train_range=(50, 100), chance_error=0.75)
  panels = [ax for ax in fig.axes if ax.get_visible()]
  assert [ax.get_title() for ax in panels] == [
    "seed 0 (passed at 1,000)", "seed 1 (passed at 2,000)", "seed 2 (passed at 3,000)",
    "seed 3 (passed at 4,000)", "median of 4 models (shaded: their range)",
  ]  # fmt: skip
  assert all(len(ax.get_lines()) == 3 + 2 for ax in panels)  # 3 test points, success, chance
  np.testing.assert_allclose(panels[1].get_lines()[1].get_ydata(), [0.015, 0.015, np.nan])
  median = panels[-1].get_lines()[0]  # test point 0: the median of 0, .01, .02, .03
  np.testing.assert_allclose(median.get_ydata(), [0.015] * 3)
  labels = [t.get_text() for t in panels[-1].get_legend().get_texts()]
  assert labels[:3] == ["+0", "+50", "+100"]
  style.save_figure(fig, tmp_path / "c", formats=("png",))


def test_epoch_curves_draw_each_run_per_split_with_unscored_epochs_as_gaps():
  history = [dict(epoch=e, valid=2.0 / e, test=None if e == 2 else 2.1 / e) for e in (3, 1, 2)]
  fig = natural.epoch_curves_figure(
    [("256 units", history), ("500 units", history[:2])], reference={"paper": 1.42}
  )
  valid, test = fig.axes
  assert [ax.get_title() for ax in fig.axes] == ["valid", "test"]
  runs = [line for line in test.get_lines() if line.get_label() != "paper"]
  np.testing.assert_array_equal(runs[0].get_xdata(), [1, 2, 3])  # sorted by epoch
  np.testing.assert_allclose(runs[0].get_ydata(), [2.1, np.nan, 0.7])
  assert [line.get_label() for line in valid.get_lines()] == ["256 units", "500 units", "paper"]
  assert valid.get_lines()[-1].get_ydata()[0] == 1.42
