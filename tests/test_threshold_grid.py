"""The threshold × α grid: its runs, its tables and figures, and the binary end to end."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments.configs import threshold_grid as configs
from rnn_dynamics import results, stats
from rnn_dynamics.synthetic import threshold_grid
from rnn_dynamics.report import threshold_grid as heatmaps

REPO = Path(__file__).resolve().parents[1]


def test_grid_keeps_every_threshold_and_alpha_as_given():
  config = configs.get_config("test")
  grid = threshold_grid.grid_runs(config)
  labels, seeds = grid.labels, grid.seeds
  hps = [jax.tree.map(lambda x, i=i: x[i], grid.hparams) for i in range(len(grid))]
  n_clips = len(config.thresholds) + 1
  assert len(labels) == len(hps) == len(seeds) == n_clips * len(config.alphas) * config.seeds

  def f32(x):  # hparams are float32 arrays
    return float(np.float32(x))

  got = {(float(h.clip), float(h.alpha)) for h in hps}
  want = {(f32(c), f32(a)) for c in (*config.thresholds, math.inf) for a in config.alphas}
  assert got == want  # α = 0 with clipping, α > 0 without: nothing rewritten by a preset
  assert all(
    float(h.clip) == f32(lab["clip"]) and float(h.alpha) == f32(lab["alpha"])
    for h, lab in zip(hps, labels)
  )
  assert seeds == [lab["seed"] for lab in labels]
  config.include_unclipped = False
  assert threshold_grid.thresholds(config) == sorted(config.thresholds)


def _rows():
  """Two thresholds plus ∞, α ∈ {0, 2}, 4 seeds; α = 2 solves only when clipped."""
  rows = []
  for clip in (0.1, 1.0, math.inf):
    for alpha in (0.0, 2.0):
      for seed in range(4):
        solved = alpha > 0 and math.isfinite(clip) and seed < (4 if clip == 1.0 else 2)
        rows.append(
          dict(
            init="basic_tanh",
            clip=clip,
            alpha=alpha,
            length=50,
            seed=seed,
            solved=solved,
            updates_to_solve=1000 * (seed + 1) if solved else None,
            diverged=math.isinf(clip) and alpha > 0,
            updates_done=5000,
          )
        )
  return rows


def test_cell_table_after_a_json_round_trip(tmp_path):
  # Stored rows have no infinity: ∞ reads back as None and must still be the ∞ column.
  results.write_results(tmp_path / "rows", _rows())
  stored = results.read_results(tmp_path / "rows")
  assert stored[-1]["clip"] is None
  table = threshold_grid.cell_table(stored)
  assert [(r["clip"], r["alpha"]) for r in table] == [
    (c, a) for c in (0.1, 1.0, math.inf) for a in (0.0, 2.0)
  ]
  cell = {(r["clip"], r["alpha"]): r for r in table}
  assert cell[(1.0, 2.0)]["success"] == "4/4 (40–100 %)"
  assert cell[(1.0, 2.0)]["updates_to_solve_median"] == 2500
  assert cell[(0.1, 2.0)]["success"] == stats.format_rate(2, 4)
  assert cell[(math.inf, 2.0)]["solved"] == 0 and cell[(math.inf, 2.0)]["diverged"] == 4
  assert cell[(math.inf, 0.0)]["updates_to_solve_median"] is None


def test_average_norm_comes_from_the_unclipped_alpha_zero_runs():
  rows = _rows()
  norms = np.full((len(rows), 3), 100.0, np.float32)
  baseline = [i for i, r in enumerate(rows) if math.isinf(r["clip"]) and r["alpha"] == 0]
  norms[baseline] = [[0.2, 0.4, np.nan]] * len(baseline)  # NaN: frozen chunk, skipped
  value, source = threshold_grid.average_grad_norm(rows, {"grad_norm": norms})
  assert value == pytest.approx(0.3) and "4 unclipped α = 0 runs" in source
  # Without such runs: the first chunk of every run.
  clipped = [r for r in rows if math.isfinite(r["clip"])]
  value, source = threshold_grid.average_grad_norm(clipped, {"grad_norm": norms[:16]})
  assert value == pytest.approx(100.0) and "first chunk" in source


def test_summary_and_heatmaps():
  table = threshold_grid.cell_table(_rows())
  text = threshold_grid.summary(table, 0.3, "test")
  assert "average pre-clip gradient norm: 0.3 (test)" in text
  # 0.5–10 × 0.3 holds the threshold 1 only; 4/4 at 1 vs 0/4 unclipped separate, 2/4 vs
  # 4/4 across thresholds do not.
  assert "thresholds 0.5–10× avg (1): 4/4 (40–100 %)" in text
  assert "any two finite thresholds' intervals separate: no" in text
  assert "no clipping 0/4 (0–60 %) (diverged 4) vs best clipped (threshold 1) " in text
  assert "intervals separate" in text
  fig = heatmaps.heatmap_figure(table, value="success", avg_norm=0.3, norm_source="t")
  texts = [t.get_text() for t in fig.axes[0].texts]
  assert "4/4\n40–100%" in texts and len(texts) == len(table)
  # The average norm sits between the 0.1 and 1 columns (log-interpolated).
  line = next(ln for ln in fig.axes[0].get_lines() if "avg" in ln.get_label())
  assert line.get_xdata()[0] == pytest.approx(math.log(3) / math.log(10))
  fig = heatmaps.heatmap_figure(table, value="updates", max_updates=5000)
  assert "2.5k" in [t.get_text() for t in fig.axes[0].texts]
  with pytest.raises(ValueError):
    heatmaps.heatmap_figure(table, value="loss")


def test_binary_end_to_end_and_resume(tmp_path_factory, stop_group, same_results):
  tmp_path = tmp_path_factory.mktemp("whole")
  cmd = [
    sys.executable,
    "-m",
    "experiments.threshold_grid",
    "--config=experiments/configs/threshold_grid.py:test",
    f"--workdir={tmp_path}",
  ]
  # As many devices as this process has, so the resumed run below, here, can be compared
  # bit for bit (the binary would use one per core; the runs axis is sharded over them).
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={jax.device_count()}")
  first = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert first.returncode == 0, first.stderr[-3000:]
  config = configs.get_config("test")
  n = (len(config.thresholds) + 1) * len(config.alphas) * config.seeds
  rows = json.loads((tmp_path / "results.json").read_text())
  assert len(rows) == n and {r["length"] for r in rows} == {config.length}
  table = json.loads((tmp_path / "table.json").read_text())
  assert len(table) == n // config.seeds and all("%)" in r["success"] for r in table)
  for name in ("success_heatmap", "updates_heatmap"):
    for ext in ("png", "svg"):
      assert (tmp_path / f"{name}.{ext}").stat().st_size > 0
  assert "average pre-clip gradient norm" in first.stdout
  assert "unclipped α = 0 runs" in first.stdout
  assert (tmp_path / "summary.txt").read_text().strip() in first.stdout
  # Again: the finished grid is read back, not retrained, and says the same.
  second = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert second.returncode == 0, second.stderr[-3000:]
  assert "already finished" in second.stderr and "runs on" not in second.stderr
  assert second.stdout == first.stdout

  # Stopped mid-way (Ctrl-C after the first of the grid's two chunks, in this process),
  # then run again: it resumes from that chunk's checkpoint and ends with the results of
  # the uninterrupted run above, bit for bit.
  from experiments import threshold_grid as binary

  assert config.max_updates == 2 * config.chunk_size
  resumed = tmp_path_factory.mktemp("resumed")
  lines = stop_group("grid")
  with pytest.raises(KeyboardInterrupt):
    binary.run(config, str(resumed))
  assert any("grid: interrupted — saving a checkpoint at chunk 1" in line for line in lines)
  assert not (resumed / "groups" / "grid" / "results.json").exists()
  assert any((resumed / "checkpoints" / "grid").glob("*"))
  summary = binary.run(config, str(resumed))
  assert any("grid: resumed from chunk 1" in line for line in lines)
  assert summary + "\n" == (tmp_path / "summary.txt").read_text()
  same_results(tmp_path, resumed)
