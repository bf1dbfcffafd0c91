r"""The pathological tasks (§4.1.2 + supplementary): SGD-CR beside its ablations.

For the chosen task, every (algorithm, seed) run — SGD-CR, SGD-C without Ω and
element-wise clipping — is trained in one vmapped, device-sharded program until solved
(< 1% error on fresh sequences), diverged or out of budget. Every solved model is then
tested on fresh sequences at fixed lengths, the trained ones and longer (for
memorization: other gap lengths). Results, tables and figures go to --workdir;
re-running with the same --workdir resumes and never recomputes a finished group.

  python -m experiments.pathological --config.task=addition --workdir=runs/path/addition
  python -m experiments.pathological --config=experiments/configs/pathological.py:paper \
      --config.task=memorization --workdir=runs/path_paper/memorization
  python -m experiments.pathological_summary --workdirs=runs/path/addition,...

Writes `table.{md,csv}` (success rate, updates to solve, test error per algorithm),
`generalization_table.{md,csv}`, `generalization.{png,svg}`, and the per-run rows
`results.{csv,json}` and `generalization.{csv,json}`.
"""

from __future__ import annotations

import time
from pathlib import Path

import ml_collections
from absl import logging

from experiments import cli, validation
from experiments.configs import pathological as configs
from rnn_dynamics import algorithms, results, runs
from rnn_dynamics.synthetic import generalization, sweep, train
from rnn_dynamics.report import pathological
from rnn_dynamics.workdir import Workdir, group_config


def run(config: ml_collections.ConfigDict, workdir_path: str) -> dict[str, list[dict]]:
  """Runs (or resumes) the task's sweep and generalization tests; returns their rows."""
  cfg = configs.resolve(config)
  workdir = Workdir(workdir_path, cfg)
  rows: list[dict] = []
  gen_rows: list[dict] = []
  t_start = time.time()
  todo = configs.groups(cfg)
  for i, (group, variant, lo, hi) in enumerate(todo):
    # What the group runs beside the config: its task variant and lengths (group.json).
    gcfg = group_config(cfg, task=variant, min_length=lo, max_length=hi)
    group_rows = _train_group(workdir, group, gcfg, f"[{i + 1}/{len(todo)}] {group}")
    rows += group_rows
    pathological.write_report(workdir, cfg, rows, gen_rows, figure=False)
    gen_rows += _generalize(workdir, group, gcfg, group_rows)
    pathological.write_report(workdir, cfg, rows, gen_rows, figure=True)
  logging.info("%s finished in %.0f s (this process)", cfg.task, time.time() - t_start)
  return dict(rows=rows, generalization=gen_rows)


def _hparams(cfg, algorithm: str) -> train.HParams:
  return algorithms.hparams(
    algorithm,
    lr=cfg.lr,
    clip=cfg.clip,
    alpha=cfg.alpha,
    init=cfg.init,
    elementwise_clip=cfg.elementwise_clip,
  )


def _train_group(workdir: Workdir, group: str, gcfg, name: str) -> list[dict]:
  """The group's rows: trained (or resumed), or loaded if it is finished."""
  # Runs with the same seed share initial weights and data across algorithms (paired).
  grid = runs.grid(
    gcfg.algorithms,
    gcfg.seeds,
    seed=gcfg.seed,
    label=lambda alg, seed: dict(
      task=gcfg.task,
      algorithm=alg,
      seed=seed,
      min_length=gcfg.min_length,
      max_length=gcfg.max_length,
    ),
    hparams=lambda alg: _hparams(gcfg, alg),
  )
  return sweep.run_in_workdir(workdir, group, gcfg, grid, name=name).rows


def _generalize(workdir: Workdir, group: str, gcfg, group_rows: list[dict]) -> list[dict]:
  """Error of the group's models on fresh sequences at each `generalization_lengths`."""
  stem = workdir.group_path(group) / "generalization"
  if stem.with_suffix(".json").exists():
    return results.read_results(stem)
  picked = [i for i, r in enumerate(group_rows) if r["solved"] or gcfg.generalization_runs == "all"]
  out: list[dict] = []
  if picked:
    params = {k: v[picked] for k, v in workdir.load_params(group).items()}
    hps = runs.stack([_hparams(gcfg, group_rows[i]["algorithm"]) for i in picked])
    n, t0 = int(gcfg.generalization_size), time.time()
    # One model at a time, as the published results were made (`model_errors`).
    for length, errors, _ in generalization.errors_at_lengths(
      gcfg,
      params,
      hps,
      gcfg.generalization_lengths,
      n,
      gcfg.eval_batch,
      vmapped=False,
      memory_mb=gcfg.generalization_memory_mb,
    ):
      for i, error in zip(picked, errors):
        out.append(dict(group_rows[i], eval_length=length, error=float(error), n_sequences=n))
      logging.info(
        "%s: generalization at length %d: %d models, %.0f s so far",
        group,
        length,
        len(picked),
        time.time() - t0,
      )
  results.write_results(stem, out)
  return out


def main(argv):
  workdir = cli.require_workdir(argv, _WORKDIR, "runs/pathological/addition")
  run(validation.validate(_CONFIG.value, "pathological"), workdir)
  path = Path(workdir)
  print((path / "table.md").read_text())
  print(
    f"tables: {path}/table.md, {path}/generalization_table.md; figure: {path}/generalization.png"
  )


if __name__ == "__main__":
  # Flags are defined only when run as a binary, so tests can import several binaries.
  _CONFIG = cli.define_config("experiments/configs/pathological.py:cpu")
  _WORKDIR = cli.define_workdir()
  cli.run(main)
