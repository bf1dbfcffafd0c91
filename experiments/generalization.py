r"""One model for many lengths (§4.1.1): train on random lengths, test far beyond them.

Every seed's model is trained with SGD-CR on temporal order, each update at a length drawn
from [min_length, max_length), until it passes the paper's success test (< 1% error on
fresh sequences of training lengths) or runs out of budget; all seeds share one vmapped,
device-sharded program (`rnn_dynamics.synthetic.sweep.run_group`). Each trained model is then
tested on `eval_sequences` fresh sequences at each of `eval_lengths` (the same sequences
for every model). --workdir receives the per-run training results and traces, a table
with one row per (seed, evaluation length) and the error-vs-length figure; re-running
with the same --workdir resumes training from its checkpoint and skips lengths already
evaluated.

  python -m experiments.generalization --workdir=runs/generalization       # cpu preset
  python -m experiments.generalization \
      --config=experiments/configs/generalization.py:paper --workdir=runs/generalization_paper

References:
  Pascanu, Mikolov & Bengio (2013), ICML, §4.1.1 ("a single model to deal with any sequence
  of length 50 up to 200").
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from experiments import cli, validation
from rnn_dynamics import algorithms, results, rnn, runs
from rnn_dynamics.synthetic import generalization, sweep, train
from rnn_dynamics.report import generalization as report
from rnn_dynamics.workdir import Workdir, group_config

GROUP = "train"  # the workdir group holding the trained models
TABLE = "generalization"  # <workdir>/generalization.{csv,json}: one row per (seed, length)


def _hparams(config: ml_collections.ConfigDict) -> train.HParams:
  return algorithms.hparams(
    config.algorithm, lr=config.lr, clip=config.clip, alpha=config.alpha, init=config.init
  )


def train_models(config: ml_collections.ConfigDict, workdir: Workdir) -> list[dict]:
  """Trains (or resumes, or loads) one model per seed; returns their result rows."""
  grid = runs.grid(
    [config.algorithm],
    int(config.seeds),
    seed=config.seed,
    label=lambda alg, s: dict(
      init=config.init,
      algorithm=alg,
      seed=s,
      min_length=int(config.min_length),
      max_length=int(config.max_length),
    ),
    hparams=lambda alg: _hparams(config),
  )
  name = f"train [{config.min_length}, {config.max_length})"
  # The group runs the config as it is (its group.json has no overrides).
  return sweep.run_in_workdir(workdir, GROUP, group_config(config), grid, name=name).rows


def evaluate_lengths(
  config: ml_collections.ConfigDict, workdir: Workdir, train_rows: list[dict]
) -> list[dict]:
  """Error of every trained model at each of `config.eval_lengths`; one row per pair.

  The table is rewritten after each length, and lengths already in it are not evaluated
  again (the workdir's config check guarantees they came from this config).
  """
  stem = workdir.path / TABLE
  rows = results.read_results(stem) if stem.with_suffix(".json").exists() else []
  finished = {int(r["eval_length"]) for r in rows}
  params = jax.tree.map(jnp.asarray, rnn.Params(**workdir.load_params(GROUP)))
  hps = runs.stack([_hparams(config)] * len(train_rows))
  n, lo, hi = int(config.eval_sequences), int(config.min_length), int(config.max_length)
  todo = [length for length in map(int, config.eval_lengths) if length not in finished]
  t0 = time.time()
  for length, errors, block in generalization.errors_at_lengths(
    config,
    params,
    hps,
    todo,
    n,
    config.eval_batch,
    vmapped=True,
    block_steps=int(config.eval_block_steps),
  ):
    for r, e in zip(train_rows, errors):
      rows.append(
        dict(
          seed=r["seed"],
          init=r["init"],
          algorithm=r["algorithm"],
          min_length=lo,
          max_length=hi,
          solved=r["solved"],
          updates_to_solve=r["updates_to_solve"],
          eval_length=length,
          in_training_range=lo <= length < hi,
          n_sequences=n,
          errors=round(e * n) if np.isfinite(e) else None,
          error=float(e),
        )
      )
    rows.sort(key=lambda r: (r["seed"], r["eval_length"]))
    workdir.write_table(rows, stem=TABLE)
    logging.info(
      "length %d: errors %s (of %d; block %d) in %.1f s",
      length,
      [r["errors"] for r in rows if r["eval_length"] == length],
      n,
      block,
      time.time() - t0,
    )
    t0 = time.time()
  return rows


def run(config: ml_collections.ConfigDict, workdir_path: str) -> tuple[list[dict], list[dict]]:
  """Trains, evaluates and plots (resuming whatever is already in the workdir).

  Returns:
    (training rows, one per seed; generalization rows, one per (seed, eval length)).
  """
  workdir = Workdir(workdir_path, config)
  train_rows = train_models(config, workdir)
  workdir.write_table(train_rows)
  rows = evaluate_lengths(config, workdir, train_rows)
  report.write_figure(config, workdir.path / TABLE, rows)
  return train_rows, rows


def main(argv):
  workdir = cli.require_workdir(argv, _WORKDIR, "runs/generalization")
  t0 = time.time()
  train_rows, rows = run(validation.validate(_CONFIG.value, "generalization"), workdir)
  print(report.summary(train_rows, rows))
  print(
    f"table: {workdir}/{TABLE}.csv, figure: {workdir}/{TABLE}.png "
    f"({time.time() - t0:.0f} s in this process)"
  )


if __name__ == "__main__":
  # Flags are defined only when run as a binary, so tests can import several binaries.
  _CONFIG = cli.define_config("experiments/configs/generalization.py:cpu")
  _WORKDIR = cli.define_workdir()
  cli.run(main)
