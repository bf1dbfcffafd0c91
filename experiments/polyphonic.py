r"""Table 1 of Pascanu et al. (2013): polyphonic music prediction, NLL per time step.

A sigmoid RNN with one Bernoulli output per key is trained by truncated BPTT over
segments of 200 steps (state carried across a song's segments), as SGD, SGD+C and SGD+CR
in one vmapped program; every split is scored after each epoch and each run's
best-validation epoch gives its row of the table. Re-running with the same --workdir
resumes (from the last epoch, or mid-epoch) and never redoes a finished epoch.

  python -m experiments.polyphonic --workdir=runs/music_bach          # cpu preset, built-in
  python -m experiments.polyphonic --config.dataset=nottingham \
      --config.data_path=/path/to/Nottingham.mat --workdir=runs/music_nottingham
  python -m experiments.polyphonic --config=experiments/configs/polyphonic.py:paper \
      --config.dataset=musedata --config.data_path=/path/to/music/ --workdir=runs/musedata

Writes to --workdir: table.md / table.csv (ours beside the paper's Table 1), runs.csv
(best epoch per run), history.csv (every split per epoch per run), best_params.npz,
predictions.npz (predicted piano rolls of a few test songs), summary.json.
"""

from __future__ import annotations

import time

from absl import logging

from experiments import cli, validation
from experiments.configs import polyphonic as polyphonic_config
from rnn_dynamics import natural, paper, results
from rnn_dynamics.workdir import Workdir


def columns(config) -> list[natural.Column]:
  """The table's columns as hyper-parameters of one program."""
  return natural.columns(config.algorithms, lambda a: config.lr, config.clip, config.alpha0)


def write_outputs(workdir: Workdir, config, res: natural.FitResult, baseline: float) -> str:
  """Tables, history and best parameters; returns the Markdown table."""
  published = paper.TABLE1.get(config.dataset)
  notes = natural.table_notes(
    config,
    res,
    published,
    score="NLL per time step (nats, summed over 88 keys, pooled over all frames)",
    baseline="Frequency baseline (independent keys at their training frequencies), test: "
    f"{baseline:.2f}.",
    setup=f"{config.n_hidden} sigmoid units, lr {config.lr} halved on rising "
    f"{config.lr_halving} error, clip {config.clip} on the mean cost, α_0 {config.alpha0} "
    f"({config.alpha_schedule}), segments of {config.segment_length} steps, "
    f"{config.batch_size} lane(s).",
  )
  return natural.write_fit_outputs(
    workdir.path,
    res,
    algorithms=config.algorithms,
    paper=published,
    notes=notes,
    title=f"Table 1 — {natural.MUSIC_NAMES[config.dataset]}, NLL per time step (lower is better)",
    summary=dict(
      dataset=config.dataset,
      name=natural.MUSIC_NAMES[config.dataset],
      score="NLL per time step",
      frequency_baseline_test=baseline,
      init=config.init,
    ),
  )


def write_predictions(workdir: Workdir, config, res: natural.FitResult, test) -> None:
  """Predicted piano rolls (seed 0 of every column, best-validation parameters)."""
  models = res.seed_models(0)
  out = {}
  for j, roll in enumerate(test[: int(config.n_predictions)]):
    out[f"real/{j}"] = roll
    for algorithm, params in models.items():
      out[f"{algorithm}/{j}"] = natural.predict_roll(params, config.init, roll)
  results.write_npz(workdir.path / "predictions.npz", out)


def run(config, workdir_path: str) -> tuple[natural.FitResult, str]:
  """Trains (or resumes) every column and writes the outputs; returns them and the table."""
  config = polyphonic_config.resolve(config)
  t0 = time.time()
  # Before the workdir records the config: a data path that cannot be read is refused
  # with nothing written, so the corrected command is not "a different config". The
  # workdir records the data by file name and sha256, not by path: the same files
  # elsewhere resume it.
  data = natural.music_splits(config)
  workdir = Workdir(workdir_path, natural.recorded(config))
  logging.info(
    "%s: %s songs, %d training frames (loaded in %.0f s)",
    config.dataset,
    " / ".join(str(len(data[s])) for s in ("train", "valid", "test")),
    sum(len(r) for r in data["train"]),
    time.time() - t0,
  )
  baseline = natural.frequency_baseline(data["train"], data["test"])
  task = natural.music_task(config.dataset)
  res, md = natural.fit_in_workdir(
    workdir,
    config,
    task,
    data,
    columns(config),
    lambda r: write_outputs(workdir, config, r, baseline),
  )
  write_predictions(workdir, config, res, data["test"])
  return res, md


def main(argv):
  workdir = cli.require_workdir(argv, _WORKDIR, "runs/music")
  _, md = run(validation.validate(_CONFIG.value, "polyphonic"), workdir)
  print(md)
  print(f"results: {workdir}/table.md, history: {workdir}/history.csv")


if __name__ == "__main__":
  # Flags live here, not at import, so tests can import several binaries into one process.
  _CONFIG = cli.define_config("experiments/configs/polyphonic.py:cpu")
  _WORKDIR = cli.define_workdir("results, checkpoints and tables")
  cli.run(main)
