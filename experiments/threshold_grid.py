r"""The clipping threshold × Ω weight grid on temporal order (§3.2 and its footnote).

Every (init, threshold, α, seed) run — threshold ∞ (no clipping) and α = 0 included — is
trained with SGD-CR in one vmapped, device-sharded program until solved, diverged or out
of budget. Results, traces, the table and two heatmaps (success rate with its 95 %
interval, median updates to solve; the measured average pre-clip norm on the threshold
axis) go to --workdir; re-running with the same --workdir resumes an interrupted grid.

  python -m experiments.threshold_grid --workdir=runs/threshold_grid          # cpu preset
  python -m experiments.threshold_grid \
      --config=experiments/configs/threshold_grid.py:paper --workdir=runs/threshold_paper
"""

from __future__ import annotations

from experiments import cli, validation
from rnn_dynamics import results
from rnn_dynamics.synthetic import sweep, threshold_grid
from rnn_dynamics.report import style
from rnn_dynamics.report import threshold_grid as report
from rnn_dynamics.workdir import Workdir, group_config

GROUP = "grid"


def run(config, workdir_path: str) -> str:
  """Runs (or resumes, or reloads) the grid, writes its outputs; returns the summary."""
  workdir = Workdir(workdir_path, config)
  cfg = group_config(config)  # the grid runs the config as it is
  # Runs with the same seed share initial weights and data in every cell (paired).
  group = sweep.run_in_workdir(workdir, GROUP, cfg, threshold_grid.grid_runs(cfg))
  return _write_outputs(workdir, config, group.rows, group.traces)


def _write_outputs(workdir: Workdir, config, rows, traces) -> str:
  workdir.write_table(rows)
  table = threshold_grid.cell_table(rows)
  workdir.write_table(table, stem="table")
  norm, source = threshold_grid.average_grad_norm(rows, traces)
  title = (
    f"temporal order T={config.length}, {config.n_hidden} hidden, lr {config.lr:g}, "
    f"≤{config.max_updates:,} updates, {config.seeds} seeds per cell"
  )
  for value, stem in (("success", "success_heatmap"), ("updates", "updates_heatmap")):
    fig = report.heatmap_figure(
      table,
      value=value,
      avg_norm=norm,
      norm_source=source,
      max_updates=int(config.max_updates),
      title=title,
    )
    style.save_figure(fig, workdir.path / stem)
  text = threshold_grid.summary(table, norm, source)
  results.atomic_write_text(workdir.path / "summary.txt", text + "\n")
  return text


def main(argv):
  workdir = cli.require_workdir(argv, _WORKDIR, "runs/threshold_grid")
  text = run(validation.validate(_CONFIG.value, "threshold_grid"), workdir)
  print(text)
  print(
    f"table: {workdir}/table.csv, figures: {workdir}/success_heatmap.png, "
    f"{workdir}/updates_heatmap.png"
  )


if __name__ == "__main__":
  # Flags are defined only when run as a binary, so tests can import several binaries.
  _CONFIG = cli.define_config("experiments/configs/threshold_grid.py:cpu")
  _WORKDIR = cli.define_workdir()
  cli.run(main)
