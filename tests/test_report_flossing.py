"""`report.flossing`: SGD-CF beside SGD-CR from a success_rate workdir. The tables and the
exponents figure on hand-made runs (solved, failed and diverged, with non-finite
traces), then on what the binary leaves on its `flossing_test` preset (`conftest.py`'s
`flossing_test_run`, made once per session)."""

from __future__ import annotations

import io
import json

import matplotlib.colors as mcolors
import numpy as np
import pytest

from rnn_dynamics import stats
from rnn_dynamics.report import flossing as report
from rnn_dynamics.workdir import Workdir

NAN, INF = float("nan"), float("inf")


def _row(init, alg, length, seed, solved=False, updates=None, diverged=False, done=400):
  return dict(init=init, algorithm=alg, length=length, seed=seed, solved=solved,
              updates_to_solve=updates, diverged=diverged, updates_done=done,
              final_error=0.0 if solved else 0.75)  # fmt: skip


def _run(row, steps, **fields):
  """A run as `load_runs` gives it: its row and traces over the chunks it trained."""
  steps = np.asarray(steps, np.float64)
  traces = {"step": steps}
  for f in ("spectral_radius", "omega", "lyapunov_1", "lyapunov_2"):
    traces[f] = np.asarray(fields.get(f, np.linspace(0.5, 1.0, steps.size)), np.float64)
  return dict(row, traces=traces)


# Under sigmoid at T = 50: SGD-CR solves 0/5, SGD-CF 5/5 (at 100 … 500 updates); one
# SGD-CR run diverged. At T = 20, SGD-CF solved 1 of 2; SGD-CR has no runs there.
ROWS = (
  [_row("sigmoid", "sgd_cr", 50, s, diverged=s == 0) for s in range(5)]
  + [_row("sigmoid", "sgd_cf", 50, s, True, 100 * (s + 1)) for s in range(5)]
  + [_row("sigmoid", "sgd_cf", 20, 0, True, 300), _row("sigmoid", "sgd_cf", 20, 1)]
  + [_row("smart_tanh", "sgd_cr", 20, 0, True, 700), _row("smart_tanh", "sgd_cr", 20, 1)]
  + [_row("smart_tanh", "sgd_c", 20, 0, True, 50)]  # not compared: left out
)


def test_comparison_table_gives_intervals_and_updates_of_the_solved_runs():
  table = report.comparison_table(ROWS, inits=("smart_tanh", "sigmoid"))
  keys = [(r["init"], r["length"], r["algorithm"]) for r in table]
  # Inits in the order asked, lengths ascending, SGD-CR before SGD-CF; sgd_c left out.
  assert keys == [("smart_tanh", 20, "sgd_cr"), ("sigmoid", 20, "sgd_cf"),
                  ("sigmoid", 50, "sgd_cr"), ("sigmoid", 50, "sgd_cf")]  # fmt: skip
  cr, cf = table[2], table[3]
  assert stats.format_rate(0, 5) == cr["success"] and cf["success"] == stats.format_rate(5, 5)
  assert (cr["seeds"], cr["solved"], cr["diverged"]) == (5, 0, 1)
  assert (cr["updates_median"], cr["updates_min"], cr["updates_max"]) == (None, None, None)
  assert (cf["updates_median"], cf["updates_min"], cf["updates_max"]) == (300.0, 100, 500)
  # The median is over the solved runs only: 300 of the 1 solved of 2 at T = 20.
  assert table[1]["updates_median"] == 300.0 and table[1]["solved"] == 1


def test_comparison_markdown_sets_sgd_cr_beside_sgd_cf():
  text = report.comparison_markdown(report.comparison_table(ROWS))
  lines = text.splitlines()
  assert "SGD-CR: solved (95 %)" in lines[0] and "SGD-CF (flossing): solved (95 %)" in lines[0]
  assert lines[0].index("SGD-CR") < lines[0].index("SGD-CF") and "intervals separate" in lines[0]
  # 0/5 against 5/5: the intervals still overlap (48 % < 52 %); a point one algorithm
  # lacks shows "–".
  assert (
    "| sigmoid | 50 | 0/5 (0–52 %), 1 diverged | – | 5/5 (48–100 %) | 300 (100–500) | no |" in lines
  )
  assert "| sigmoid | 20 | – | – | 1/2 (1–99 %) | 300 | – |" in lines
  assert "| smart_tanh | 20 | 1/2 (1–99 %) | 700 | – | – | – |" in lines
  # 10/10 against 0/10 separates.
  ten = [_row("basic_tanh", "sgd_cr", 100, s, True, 1000) for s in range(10)]
  ten += [_row("basic_tanh", "sgd_cf", 100, s) for s in range(10)]
  assert report.comparison_markdown(report.comparison_table(ten)).splitlines()[2] == (
    "| basic_tanh | 100 | 10/10 (69–100 %) | 1,000 | 0/10 (0–31 %) | – | yes |"
  )


def test_run_summary_reads_the_last_finite_chunk_and_the_peak():
  runs = [
    # Diverged: ρ blew up (inf) and then froze (NaN) at its last chunk.
    _run(_row("sigmoid", "sgd_cr", 50, 0, diverged=True, done=300), [100, 200, 300],
         spectral_radius=[2.0, 9.5, INF], omega=[0.9, 1.0, NAN], lyapunov_1=[-0.1, 0.3, NAN]),
    # Solved at 200; no λ₂ traced (a workdir from before the exponents).
    _run(_row("sigmoid", "sgd_cf", 50, 0, True, 200), [100, 200],
         spectral_radius=[1.5, 1.2], omega=[0.4, 0.2], lyapunov_1=[-0.2, -0.05]),
    # Diverged in its first chunk: nothing finite at all.
    _run(_row("sigmoid", "sgd_cf", 50, 1, diverged=True, done=100), [100],
         spectral_radius=[NAN], omega=[INF], lyapunov_1=[-INF]),
  ]  # fmt: skip
  del runs[1]["traces"]["lyapunov_2"]
  summary = report.run_summary(runs)
  assert [(s["algorithm"], s["seed"], s["outcome"], s["updates"]) for s in summary] == [
    ("sgd_cr", 0, "diverged", 300),
    ("sgd_cf", 0, "solved", 200),
    ("sgd_cf", 1, "diverged", 100),
  ]
  cr, cf, gone = summary
  assert (cr["final_rho"], cr["peak_rho"], cr["final_omega"], cr["final_lyapunov_1"]) == (
    9.5,
    9.5,
    1.0,
    0.3,
  )
  assert (cf["final_rho"], cf["peak_rho"], cf["final_omega"], cf["final_lyapunov_1"]) == (
    1.2,
    1.5,
    0.2,
    -0.05,
  )
  assert np.isnan(cf["final_lyapunov_2"])
  assert all(
    np.isnan(gone[k]) for k in ("final_rho", "peak_rho", "final_omega", "final_lyapunov_1")
  )
  text = report.run_summary_markdown(summary)
  assert (
    "| sigmoid | 50 | SGD-CR | 0 | diverged by 300 | 0.750 | 9.5 | 9.5 | 1 | 0.300 | 1.000 |"
    in text
  )
  assert (
    "| sigmoid | 50 | SGD-CF (flossing) | 1 | diverged by 100 | 0.750 | – | – | – | – | 0.500 |"
    in text
  )


def test_flossing_phases_follow_the_config():
  assert report.flossing_phases(600, 500, 3, until=40_000) == [(0, 500), (600, 1100), (1200, 1700)]
  assert report.flossing_phases(100, 60, 0, until=250) == [(0, 60), (100, 160), (200, 250)]
  assert report.flossing_phases(600, 500, 3, until=700) == [(0, 500), (600, 700)]


def _colours(ax):
  """The colour of every data line of a panel (the dotted reference lines left out)."""
  return [
    mcolors.to_hex(line.get_color()) for line in ax.get_lines() if line.get_linestyle() != ":"
  ]


def test_exponents_figure_tells_outcomes_apart_and_draws_through_non_finite_values():
  runs = [
    _run(_row("sigmoid", "sgd_cr", 50, 0, done=400), [100, 200, 300, 400]),
    _run(_row("sigmoid", "sgd_cr", 50, 1, diverged=True, done=300), [100, 200, 300],
         spectral_radius=[2.0, 1e30, INF], omega=[1.0, NAN, NAN], lyapunov_1=[0.1, INF, NAN],
         lyapunov_2=[NAN, NAN, NAN]),
    _run(_row("sigmoid", "sgd_cf", 50, 0, True, 200), [100, 200]),
    # Frozen before its first chunk ended: no trained chunk at all.
    _run(_row("sigmoid", "sgd_cf", 50, 1, diverged=True, done=0), []),
    _run(_row("smart_tanh", "sgd_cf", 50, 0), [100]),  # another init: not drawn
  ]  # fmt: skip
  fig = report.exponents_figure(runs, init="sigmoid", length=50, phases=(150, 50, 0))
  axes = np.asarray(fig.axes).reshape(3, 2)
  assert [ax.get_title() for ax in axes[0]] == [
    "SGD-CR: 0/2 solved",
    "SGD-CF (flossing): 1/2 solved",
  ]
  hex_of = {o: mcolors.to_hex(c) for o, c in report.OUTCOME_COLORS.items()}
  assert len(set(hex_of.values())) == 3  # solved, failed and diverged told apart
  # λ₁ and λ₂ per run, then × at the diverged run's last finite λ₁ (λ₂ has none).
  assert _colours(axes[0][0]) == [hex_of["failed"]] * 2 + [hex_of["diverged"]] * 3
  assert _colours(axes[0][1]) == [hex_of["solved"]] * 2 + [hex_of["diverged"]] * 2
  assert _colours(axes[1][0]) == [hex_of["failed"], hex_of["diverged"], hex_of["diverged"]]
  crosses = [line for line in axes[1][0].get_lines() if line.get_marker() == "x"]
  assert [(line.get_xdata()[0], line.get_ydata()[0]) for line in crosses] == [(200.0, 1e30)]
  # ρ on a log axis with the 1/γ line (4 for the sigmoid); the λ = 0 line.
  assert axes[1][0].get_yscale() == "log"
  assert [
    tuple(line.get_ydata()) for line in axes[1][0].get_lines() if line.get_linestyle() == ":"
  ] == [(4.0, 4.0)]
  assert [
    tuple(line.get_ydata()) for line in axes[0][1].get_lines() if line.get_linestyle() == ":"
  ] == [(0.0, 0.0)]
  # The flossing updates shaded in SGD-CF's column only, every 150 up to the last chunk.
  assert not axes[0][0].patches and len(axes[0][1].patches) == len(axes[2][1].patches) == 3
  for ax in axes.flat:
    assert np.isfinite(ax.get_ylim()).all() and np.isfinite(ax.get_xlim()).all()
  fig.savefig(io.BytesIO(), format="png")
  with pytest.raises(ValueError, match="no run"):
    report.exponents_figure(runs, init="basic_tanh", length=50)


def test_load_runs_cuts_each_run_at_its_last_trained_chunk():
  class Reader:  # a workdir's reading side, as `load_runs` uses it
    def groups(self):
      return ["T50"]

    def load_group(self, name):
      step = np.array([[100, 200, 300], [100, NAN, NAN]], np.float32)
      rho = np.array([[1.0, 2.0, 3.0], [4.0, NAN, NAN]], np.float32)
      return dict(rows=[dict(seed=0), dict(seed=1)], traces=dict(step=step, spectral_radius=rho))

  runs = report.load_runs(Reader())
  assert [r["group"] for r in runs] == ["T50", "T50"]
  np.testing.assert_array_equal(runs[0]["traces"]["spectral_radius"], [1.0, 2.0, 3.0])
  np.testing.assert_array_equal(runs[1]["traces"]["step"], [100.0])
  assert runs[1]["traces"]["spectral_radius"].dtype == np.float64


# --- on the binary's flossing_test output ---------------------------------------------------


@pytest.fixture(scope="module")
def published(flossing_test_run):
  workdir = Workdir.open(flossing_test_run)
  return workdir, report.load_runs(workdir)


def test_the_report_of_a_flossing_test_run(published):
  workdir, runs = published
  config = workdir.config
  rows = workdir.table()
  assert (
    len(runs) == len(rows) == len(config["inits"]) * 2 * config["seeds"] * len(config["lengths"])
  )
  table = report.comparison_table(rows, inits=config["inits"])
  assert [(r["init"], r["length"], r["algorithm"]) for r in table] == [
    (i, t, a) for i in config["inits"] for t in config["lengths"] for a in report.ALGORITHMS
  ]
  assert all(r["seeds"] == config["seeds"] for r in table)
  # Every run's final ρ, Ω and λ₁ are its group's traces at its last trained chunk.
  summary = report.run_summary(runs, inits=config["inits"])
  assert len(summary) == len(runs)
  for s in summary:
    group = workdir.group_path(f"T{s['length']}")
    labels = json.loads((group / "results.json").read_text())
    i = next(
      j
      for j, r in enumerate(labels)
      if (r["init"], r["algorithm"], r["seed"]) == (s["init"], s["algorithm"], s["seed"])
    )
    with np.load(group / "traces.npz") as traces:
      last = np.flatnonzero(np.isfinite(traces["step"][i]))[-1]
      for field, key in (
        ("spectral_radius", "final_rho"),
        ("omega", "final_omega"),
        ("lyapunov_1", "final_lyapunov_1"),
      ):
        assert s[key] == pytest.approx(float(traces[field][i][last]), rel=1e-6), (s, field)
      assert np.isfinite(s["final_lyapunov_1"])  # the preset traces two exponents
  phases = (config["floss_every"], config["floss_for"], config["floss_phases"])
  for init in config["inits"]:
    for length in config["lengths"]:
      fig = report.exponents_figure(runs, init=init, length=length, phases=phases)
      axes = np.asarray(fig.axes).reshape(3, 2)
      for col in range(2):
        # Each seed's λ₁ and λ₂ in the top panel, its ρ and Ω below.
        assert len(_colours(axes[0][col])) == 2 * config["seeds"]
        assert len(_colours(axes[1][col])) == len(_colours(axes[2][col])) == config["seeds"]
      fig.savefig(io.BytesIO(), format="png")
