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
from rnn_dynamics import generalization, paper, results, runs, sweep, train
from rnn_dynamics.errors import ConfigError
from rnn_dynamics.report import pathological
from rnn_dynamics.tasks import get_task
from rnn_dynamics.workdir import Workdir


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The config with every field left None set to the task's published value.

  A registered task the paper does not have (`paper.pathological_setup` is None) takes
  its entry in `configs.pathological.SETUPS`; without one, every field must be given.
  """
  cfg = config.copy_and_resolve_references()
  fields = ("n_hidden", "init", "lr", "alpha", "clip")
  published = paper.pathological_setup(cfg.task)
  published = published._asdict() if published else configs.SETUPS.get(cfg.task)
  if published is None and (missing := [f for f in fields if cfg[f] is None]):
    flags = ", ".join(f"--config.{f}" for f in missing)
    raise ConfigError(
      f"--config.task={cfg.task} has no published set-up (rnn_dynamics.paper): pass {flags}"
    )
  for field in fields:
    if cfg[field] is None:
      cfg[field] = published[field]
  if cfg.elementwise_clip is None:
    cfg.elementwise_clip = cfg.clip
  if cfg.max_updates is None:
    key = paper.experiment_task(cfg.task)
    if key not in cfg.budgets:
      raise ConfigError(f"--config.task={cfg.task} has no budget: pass --config.max_updates")
    cfg.max_updates = cfg.budgets[key]
  if cfg.generalization_runs not in ("solved", "all"):
    raise ValueError(
      f"generalization_runs must be 'solved' or 'all', not {cfg.generalization_runs!r}"
    )
  return cfg


def groups(cfg: ml_collections.ConfigDict) -> list[tuple[str, str, int, int]]:
  """`(group, task variant, min_length, max_length)`: one compiled program each."""
  out = []
  for variant in paper.variants(cfg.task):
    if variant.startswith("memorization"):
      out += [(f"{variant}_T{t}", variant, int(t), int(t)) for t in cfg.memorization_lengths]
    else:
      lo, hi = (int(x) for x in cfg.train_lengths)
      out.append((variant, variant, lo, hi))
  return out


def run(config: ml_collections.ConfigDict, workdir_path: str) -> dict[str, list[dict]]:
  """Runs (or resumes) the task's sweep and generalization tests; returns their rows."""
  cfg = resolve(config)
  workdir = Workdir(workdir_path, cfg)
  rows: list[dict] = []
  gen_rows: list[dict] = []
  t_start = time.time()
  todo = groups(cfg)
  for i, (group, variant, lo, hi) in enumerate(todo):
    gcfg = cfg.copy_and_resolve_references()
    gcfg.task, gcfg.min_length, gcfg.max_length = variant, lo, hi
    if workdir.is_done(group):
      logging.info("%s: already trained, loaded from %s", group, workdir.path)
      group_rows = workdir.load_rows(group)
    else:
      group_rows = _train_group(workdir, group, gcfg, f"[{i + 1}/{len(todo)}] {group}")
    rows += group_rows
    pathological.write_report(workdir, cfg, rows, gen_rows, figure=False)
    gen_rows += _generalize(workdir, group, gcfg, group_rows)
    pathological.write_report(workdir, cfg, rows, gen_rows, figure=True)
  logging.info("%s finished in %.0f s (this process)", cfg.task, time.time() - t_start)
  return dict(rows=rows, generalization=gen_rows)


def _hparams(cfg, algorithm: str) -> train.HParams:
  return train.algorithm_hparams(
    algorithm,
    lr=cfg.lr,
    clip=cfg.clip,
    alpha=cfg.alpha,
    init=cfg.init,
    elementwise_clip=cfg.elementwise_clip,
  )


def _train_group(workdir: Workdir, group: str, gcfg, name: str) -> list[dict]:
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
    task, n = get_task(gcfg.task), int(gcfg.generalization_size)
    t0 = time.time()
    for length in map(int, gcfg.generalization_lengths):
      block = generalization.eval_block(
        task, length, gcfg.n_hidden, n, gcfg.eval_batch, memory_mb=gcfg.generalization_memory_mb
      )
      # One model at a time, as the published results were made (`model_errors`).
      errors = generalization.model_errors(gcfg, params, hps, length, n, block, vmapped=False)
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
