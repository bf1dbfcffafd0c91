r"""Figure 7 of Pascanu et al. (2013): success rate on temporal order vs sequence length.

For each length, every (initialisation, algorithm, seed) run is trained in one vmapped,
device-sharded program until solved (< 1% error on 10,000 fresh sequences), diverged or
out of budget. Results, traces and the figure go to --workdir; re-running with the same
--workdir resumes an interrupted sweep and never recomputes a finished length.

  python -m experiments.success_rate --workdir=runs/fig7            # cpu preset
  python -m experiments.success_rate \
      --config=experiments/configs/success_rate.py:paper --workdir=runs/fig7_paper
  python -m experiments.success_rate \
      --config=experiments/configs/success_rate.py:flossing_cpu --workdir=runs/flossing
"""

from __future__ import annotations

import time

import numpy as np
from absl import logging

from experiments import cli, validation
from rnn_dynamics import algorithms, runs, stats
from rnn_dynamics.synthetic import sweep
from rnn_dynamics.report import style
from rnn_dynamics.report import success_rate as report
from rnn_dynamics.workdir import Workdir, group_config


def run(config, workdir_path: str) -> list[dict]:
  """Runs (or resumes) the whole sweep; returns every run's result row."""
  workdir = Workdir(workdir_path, config)
  rows: list[dict] = []
  t_start = time.time()
  for length in config.lengths:
    if not config.baselines_after_sgd_cr:
      rows += _run_group(config, workdir, f"T{length}", length, config.algorithms)
      _write_outputs(workdir, config, rows)
      continue
    # SGD-CR first; the other algorithms then get the updates SGD-CR needed at this
    # length (its median), so "fails" reads "fails within what SGD-CR took to solve".
    cr = _run_group(config, workdir, f"T{length}_sgd_cr", length, ("sgd_cr",))
    rows += cr
    # Written now too: the baselines may take hours, and SGD-CR's column is a result.
    _write_outputs(workdir, config, rows)
    others = tuple(a for a in config.algorithms if a != "sgd_cr")
    if others:
      budget = baseline_budget(cr, config)
      rows += _run_group(config, workdir, f"T{length}_baselines", length, others, budget)
    _write_outputs(workdir, config, rows)
  logging.info("sweep finished in %.0f s (this process)", time.time() - t_start)
  return rows


def baseline_budget(sgd_cr_rows: list[dict], config) -> int:
  """The baselines' budget at one length: the median updates to solve of SGD-CR's solved
  runs there (its own budget if none solved), at least `baseline_min_updates`, in whole
  chunks.

  The median is over the solved runs only: where SGD-CR solves under one initialisation
  and not the others (T = 200 in the long preset), "what SGD-CR needed" is what its solved
  runs needed. The baselines then fail or solve within that many updates; under an
  initialisation where SGD-CR solved nothing, their failure adds nothing to SGD-CR's own.
  """
  solved = [r["updates_to_solve"] for r in sgd_cr_rows if r["solved"]]
  median = float(np.median(solved)) if solved else float(config.max_updates)
  chunk = int(config.chunk_size)
  budget = max(median, float(config.baseline_min_updates))
  return int(-(-budget // chunk) * chunk)


def _run_group(config, workdir: Workdir, group: str, length: int, names, budget=None):
  """One length's runs of the algorithms `names` in one program; loaded if already finished.

  The group runs the binary's config at length T = `length` and, for the baselines,
  with `budget` updates; a group with a flossing algorithm computes flossing
  (`floss_enabled`: the others' programs skip it); its `group.json` records all three
  (`config.json` keeps the config as given)."""
  overrides = dict(min_length=int(length), max_length=int(length))
  if budget is not None:
    overrides["max_updates"] = int(budget)
  if any(algorithms.get(name).uses_flossing for name in names):
    overrides["floss_enabled"] = True
  cfg = group_config(config, **overrides)
  # Runs with the same seed share initial weights and data across algorithms (paired).
  grid = runs.grid(
    [(init, alg) for init in cfg.inits for alg in names],
    cfg.seeds,
    seed=cfg.seed,
    label=lambda cell, seed: dict(
      init=cell[0], algorithm=cell[1], length=int(length), seed=seed, budget=cfg.max_updates
    ),
    hparams=lambda cell: algorithms.hparams(
      cell[1], lr=cfg.lr, clip=cfg.clip, alpha=cfg.alpha, init=cell[0], floss=cfg.floss_weight
    ),
  )
  # `budget` joined the labels after Figure 7's cpu run (docs/results/fig7_cpu), whose
  # runs all had their group's max_updates (the spec compares that field on its own).
  former = dict(budget=cfg.max_updates)
  return sweep.run_in_workdir(workdir, group, cfg, grid, former_labels=former).rows


def _write_outputs(workdir: Workdir, config, rows: list[dict]) -> None:
  workdir.write_table(rows)
  fig = report.success_rate_figure(
    rows,
    inits=config.inits,
    algorithms=config.algorithms,
    title=f"{config.task.replace('_', ' ')}, {config.n_hidden} hidden, ≤{config.max_updates:,} updates, "
    f"{config.seeds} seeds",
  )
  style.save_figure(fig, workdir.path / "success_rate")
  fig = report.updates_to_solve_figure(
    rows, inits=config.inits, algorithms=config.algorithms, max_updates=config.max_updates
  )
  style.save_figure(fig, workdir.path / "updates_to_solve")


def _summary(rows: list[dict], config) -> str:
  rates = report.success_intervals(rows)  # seeds solved, with the 95 % interval
  # As wide as the longest label ("SGD-CF (flossing)"), so the length columns line up.
  width = max(len("algorithm"), *(len(style.label(a)) for a in config.algorithms))
  lines = [f"init        {'algorithm':<{width}} " + " ".join(f"T={t:<14}" for t in config.lengths)]
  for init in config.inits:
    for alg in config.algorithms:
      cells = [rates.get((init, alg, int(t))) for t in config.lengths]
      lines.append(
        f"{init:<11} {style.label(alg):<{width}} "
        + " ".join(f"{stats.format_rate(c) if c else '-':<16}" for c in cells)
      )
  return "\n".join(lines)


def main(argv):
  workdir = cli.require_workdir(argv, _WORKDIR, "runs/fig7")
  config = validation.validate(_CONFIG.value, "success_rate")
  rows = run(config, workdir)
  print(_summary(rows, config))
  print(
    f"results: {workdir}/results.csv, figures: {workdir}/success_rate.png, "
    f"{workdir}/updates_to_solve.png"
  )


if __name__ == "__main__":
  # Flags are defined only when run as a binary, so tests can import several binaries.
  _CONFIG = cli.define_config("experiments/configs/success_rate.py:cpu")
  _WORKDIR = cli.define_workdir()
  cli.run(main)
