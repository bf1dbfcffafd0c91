r"""The fixes since 2013 on the paper's tasks, under one protocol (docs/methods.md).

Every method of `rnn_dynamics.methods` (a cell, an algorithm, its hyper-parameters) is
trained on each task and length of the config, one workdir group per (method, task,
length) whose runs (the seeds) are one vmapped, device-sharded program, until solved
(< 1 % error on 10,000 fresh sequences), diverged or out of budget. First the grid stage:
each method with no learning rate published for a task tries its grid at T =
`grid_length` on separate seeds, and `methods.pick_lr` picks the rate every length then
uses. Re-running with the same --workdir resumes and never recomputes a finished group;
asked for more lengths, methods or seeds later, it trains only the groups they add
(`seed_blocks`).

  python -m experiments.methods --workdir=runs/methods                # cpu preset
  python -m experiments.methods --config=experiments/configs/methods.py:long \
      --workdir=runs/methods_long
  python -m experiments.methods --config.stage=grid --workdir=runs/methods   # grid alone

Writes `table.{md,csv,json}` (per method × task × length: success with its 95 %
interval, median updates and sequences to solve, the budget in updates, sequences and
FLOPs, parameters, wall time), `grid.{md,csv,json}` (the grid, the picks marked),
`results.{csv,json}` and `grid_runs.{csv,json}` (one row per run), `flops.json`, and the
figures `success_rate.png` and `updates_to_solve.png`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping, Sequence

import ml_collections
from absl import logging

from experiments import cli, validation
from rnn_dynamics import methods, results, runs
from rnn_dynamics.errors import ConfigError
from rnn_dynamics.report import methods as report
from rnn_dynamics.report import style
from rnn_dynamics.synthetic import flops as flops_lib
from rnn_dynamics.synthetic import sweep
from rnn_dynamics.tasks import get_task
from rnn_dynamics.workdir import Workdir, groups

FLOPS_FILE = "flops.json"


def group_name(method: str, task: str, length: int, grid: bool = False) -> str:
  """The workdir group of a method on a task at one length (`grid_…` for the grid's)."""
  return f"{'grid_' if grid else ''}{method}_{task}_T{int(length)}"


def seed_blocks(
  base: str, seeds: int, held: Mapping[str, Sequence[int]]
) -> list[tuple[str, range]]:
  """The groups that hold seeds 0, …, `seeds` − 1 of one method, task and length, and the
  seeds each trains: the group `base` (its `group_name`) from seed 0, then `base_seeds<k>`
  from seed k. `held` maps each group of the workdir that has started to the seeds it
  runs (its `group.json`): such a group keeps them, and the first seed no group holds
  starts a new one, up to `seeds`. So a finished 5-seed comparison asked for 10 trains
  seeds 5–9 as new groups beside the old ones (their data streams are those of the same
  seeds in one group: each run draws from its own seed), and one asked for fewer
  seeds reads back the groups that hold them (`run` keeps only the seeds asked for).

  Raises:
    ConfigError: a started group does not hold the seeds its name says it starts from.
  """
  blocks: list[tuple[str, range]] = []
  start = 0
  while start < seeds:
    name = base if start == 0 else f"{base}_seeds{start}"
    if name not in held:
      blocks.append((name, range(start, seeds)))
      break
    runs = sorted(int(s) for s in held[name])
    if not runs or runs != list(range(start, start + len(runs))):
      raise ConfigError(
        f"group {name} holds seeds {runs}, not consecutive seeds from {start} as its name "
        "says; delete its folder and checkpoints to train it again"
      )
    blocks.append((name, range(start, start + len(runs))))
    start += len(runs)
  return blocks


def _held_seeds(workdir: Workdir) -> dict[str, list[int]]:
  """Each started comparison group of `workdir` → the seeds it runs."""
  names = set(groups.recorded(workdir.path)) | set(workdir.groups())
  return {
    g: workdir.spec(g).labels.get("seed", []) for g in sorted(names) if not g.startswith("grid_")
  }


def group_config(
  config: ml_collections.ConfigDict, method: methods.Method, task: str, length: int, budget: int
) -> ml_collections.ConfigDict:
  """The config one group trains with: the binary's, with the method's cell and size
  (`methods.hidden_units`), the task at the fixed length, the budget, and Ω computed only
  where the method uses it (its `group.json` records these where they differ)."""
  return groups.group_config(
    config,
    n_hidden=methods.hidden_units(method, task, config.n_hidden, config.match),
    cell=method.cell,
    task=task,
    min_length=int(length),
    max_length=int(length),
    max_updates=int(budget),
    omega_enabled=bool(method.uses_omega),
  )


def _wall(result) -> dict:
  return dict(wall_s=round(float(result.wall_s), 1))


def _labels(method: methods.Method, task: str, length: int, gcfg, lr_source: str):
  def label(lr, seed):
    return dict(
      method=method.name,
      cell=method.cell,
      algorithm=method.algorithm,
      n_hidden=int(gcfg.n_hidden),
      task=task,
      length=int(length),
      lr=float(lr),
      lr_source=lr_source,
      seed=int(seed),
      budget=int(gcfg.max_updates),
    )

  return label


def _train(workdir: Workdir, group: str, gcfg, method, task, length, lrs, seeds, source, name):
  grid = runs.grid(
    lrs,
    seeds,
    seed=gcfg.seed,
    label=_labels(method, task, length, gcfg, source),
    hparams=lambda lr: methods.hparams(method, task, lr),
  )
  return sweep.run_in_workdir(workdir, group, gcfg, grid, name=name, extra=_wall).rows


def _chosen(config) -> list[methods.Method]:
  return [methods.get(name) for name in config.methods]


def grid_plan(config) -> list[tuple[methods.Method, str]]:
  """The (method, task) pairs the grid stage runs: no learning rate published there."""
  return [(m, task) for task in config.tasks for m in _chosen(config) if m.needs_grid(task)]


def check_grid_finished(config, workdir_path: str) -> None:
  """With `--config.stage=main`, every grid the comparison needs must have finished in
  the workdir (checked before anything is written)."""
  if config.stage != "main":
    return
  for m, task in grid_plan(config):
    group = group_name(m.name, task, config.grid_length, grid=True)
    if not (Path(workdir_path) / "groups" / group / "results.json").is_file():
      raise ConfigError(
        f"--config.stage=main: the learning-rate grid of {m.name} on {task} ({group}) has "
        f"not finished in {workdir_path}; run --config.stage=grid or all first"
      )


def run_grid(config, workdir: Workdir) -> tuple[list[dict], dict[tuple[str, str], float]]:
  """The grid stage: every (method, task) of `grid_plan`, trained or loaded; returns the
  runs' rows and the picked learning rates."""
  todo = grid_plan(config)
  rows: list[dict] = []
  picks: dict[tuple[str, str], float] = {}
  seeds = range(int(config.grid_seed), int(config.grid_seed) + int(config.grid_seeds))
  for i, (m, task) in enumerate(todo):
    group = group_name(m.name, task, config.grid_length, grid=True)
    gcfg = group_config(config, m, task, config.grid_length, config.grid_max_updates)
    name = f"[grid {i + 1}/{len(todo)}] {group}"
    group_rows = _train(workdir, group, gcfg, m, task, config.grid_length, m.lr_grid, seeds,
                        "grid", name)  # fmt: skip
    rows += group_rows
    picks[(m.name, task)] = methods.pick_lr(group_rows)
    logging.info("%s: picked lr %g", group, picks[(m.name, task)])
    _write_grid(workdir, config, rows, picks)
  if not todo:  # every method has published rates: an empty grid, said so
    _write_grid(workdir, config, rows, picks)
  return rows, picks


def _write_grid(workdir: Workdir, config, rows, picks) -> None:
  workdir.write_table(rows, stem="grid_runs")
  table = report.grid_table(rows, picks, methods.grid_summary, methods=config.methods)
  workdir.write_table(table, stem="grid")
  columns = ("method", "task", "length", "lr", "success", "median_updates", "median_error",
             "picked")  # fmt: skip
  head = (
    f"**Learning-rate grid** ({config.preset} preset): T = {config.grid_length}, "
    f"{config.grid_seeds} seeds from {config.grid_seed}, ≤{config.grid_max_updates:,} updates. "
    "Pick: most runs solved; ties → fewest median updates to solve; then the lowest "
    "median final error; then the smaller rate.\n\n"
  )
  results.atomic_write_text(workdir.output("grid.md"), head + report.markdown(table, columns))


def _lr(method: methods.Method, task: str, picks) -> tuple[float, str]:
  published = method.published_for(task)
  if published is not None:
    return published.lr, "published"
  return picks[(method.name, task)], "grid"


def run(config: ml_collections.ConfigDict, workdir_path: str) -> dict[str, list[dict]]:
  """Runs (or resumes) the grid and the comparison; returns their per-run rows."""
  check_grid_finished(config, workdir_path)
  workdir = Workdir(workdir_path, config)
  t_start = time.time()
  grid_rows, picks = run_grid(config, workdir)
  rows: list[dict] = []
  if config.stage != "grid":
    held = _held_seeds(workdir)
    todo = [
      (task, length, m, group, seeds)
      for task in config.tasks
      for length in config.lengths[task]
      for m in _chosen(config)
      for group, seeds in seed_blocks(group_name(m.name, task, length), config.seeds, held)
    ]
    # The finished groups first (read back, not trained; a stable sort keeps each part in
    # table order): the tables and figures then hold every one of them from the start,
    # wherever a later group is interrupted. Each keeps its number in `todo` for the logs.
    done = set(workdir.groups())
    finished = [group in done for _, _, _, group, _ in todo]
    order = sorted(enumerate(todo), key=lambda it: not finished[it[0]])
    for i, (number, (task, length, m, group, seeds)) in enumerate(order):
      lr, source = _lr(m, task, picks)
      gcfg = group_config(config, m, task, length, config.max_updates)
      name = f"[{number + 1}/{len(todo)}] {group}"
      group_rows = _train(workdir, group, gcfg, m, task, length, [lr], seeds, source, name)
      # A group may hold more seeds than asked; each row says which group trained it.
      rows += [dict(r, group=group) for r in group_rows if r["seed"] < config.seeds]
      last_of_length = i + 1 in (len(order), sum(finished)) or order[i + 1][1][:2] != (task, length)
      write_outputs(workdir, config, rows, figures=last_of_length)
  logging.info("methods finished in %.0f s (this process)", time.time() - t_start)
  return dict(rows=rows, grid=grid_rows)


# --- the budget's cost: FLOPs per update and parameters ------------------------------------


def flops_per_update(workdir: Workdir, config, rows) -> dict[tuple[str, str, int], float]:
  """(method, task, length) → FLOPs per update (`rnn_dynamics.synthetic.flops`), for the
  groups in `rows`. The line through the task's two shortest lengths is measured once per
  (method, task) and kept in `flops.json`."""
  cache = workdir.read_json(FLOPS_FILE) if workdir.exists(FLOPS_FILE) else {}
  out, added = {}, False
  for method, task, length in dict.fromkeys((r["method"], r["task"], int(r["length"])) for r in rows):
    key = f"{method}/{task}"
    if key not in cache:
      m = methods.get(method)
      gcfg = group_config(config, m, task, get_task(task).min_length, config.chunk_size)
      a, b = flops_lib.affine_flops(gcfg, methods.hparams(m, task, 0.01))
      cache[key] = dict(intercept=a, per_step=b)
      added = True
    line = cache[key]
    out[(method, task, length)] = flops_lib.update_flops(
      (line["intercept"], line["per_step"]), task, length
    )
  if added:
    results.write_json(workdir.output(FLOPS_FILE), cache, sort_keys=True)
  return out


def parameter_counts(rows) -> dict[tuple[str, str], int]:
  """(method, task) → trainable parameters of the method's network on the task (its cell
  and the linear readout) at the hidden units its runs had."""
  pairs = dict.fromkeys((r["method"], r["task"], int(r["n_hidden"])) for r in rows)
  return {(m, t): methods.parameter_count(methods.get(m), t, n) for m, t, n in pairs}


def _size(config) -> str:
  if config.match == "state":
    return f"{config.n_hidden} hidden units (state size) in every cell"
  return f"each cell sized to the parameters of the paper's RNN at {config.n_hidden} units"


def write_outputs(workdir: Workdir, config, rows: list[dict], figures: bool = True) -> list[dict]:
  """The per-run rows, the comparison table and (with `figures`) the two figures."""
  workdir.write_table(rows)
  table = report.comparison_table(
    rows,
    methods=config.methods,
    flops=flops_per_update(workdir, config, rows),
    params=parameter_counts(rows),
    batch_size=config.batch_size,
  )
  workdir.write_table(table, stem="table")
  head = (
    f"**Methods** ({config.preset} preset): {_size(config)}, batch {config.batch_size}, "
    f"{config.seeds} seeds, ≤{config.max_updates:,} "
    f"updates per run; success = error < {config.success_error:.0%} on "
    f"{config.eval_size:,} fresh sequences. FLOPs: XLA's count of one update "
    "(rnn_dynamics/synthetic/flops.py).\n\n"
  )
  text = head + report.markdown(table, report.COMPARISON_COLUMNS)
  results.atomic_write_text(workdir.output("table.md"), text)
  if figures and table:
    title = f"{config.n_hidden} hidden, ≤{config.max_updates:,} updates, {config.seeds} seeds"
    style.save_figure(report.success_rate_figure(table, title=title), workdir.path / "success_rate")
    fig = report.updates_to_solve_figure(rows, title=title)
    style.save_figure(fig, workdir.path / "updates_to_solve")
  return table


def main(argv):
  workdir = cli.require_workdir(argv, _WORKDIR, "runs/methods")
  config = validation.validate(_CONFIG.value, "methods")
  run(config, workdir)
  path = Workdir.open(workdir).path
  for name in ("grid.md", "table.md"):
    if (path / name).exists():
      print((path / name).read_text())
  print(f"tables: {path}/table.md, {path}/grid.md; figures: {path}/success_rate.png, "
        f"{path}/updates_to_solve.png")  # fmt: skip


if __name__ == "__main__":
  # Flags are defined only when run as a binary, so tests can import several binaries.
  _CONFIG = cli.define_config("experiments/configs/methods.py:cpu")
  _WORKDIR = cli.define_workdir()
  cli.run(main)
