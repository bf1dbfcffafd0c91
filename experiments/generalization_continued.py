r"""The single models of §4.1.1 trained on past their pass, tested as they go.

`experiments.generalization` stops each model at its first passed success test. This
binary takes the trained models of such a workdir (--from_workdir) and trains every one
of them on with that workdir's own set-up for --config.updates more updates, never
stopping one for passing the test, and tests every model on the same fresh sequences at
each of --config.eval_lengths every --config.test_every updates (0 included: the models
as they were). --workdir receives the continued group (results, traces, final
parameters), a copy of the source's models and config (`source/`), the table
`continued.{csv,json}` (one row per model, test point and length) and its figure
`continued.{png,svg}`. Re-running the same command resumes (--from_workdir may then be
left out: the workdir's copy is used) and tests only what is missing. The work is
`rnn_dynamics.synthetic.continued`.

  python -m experiments.generalization_continued \
      --config=experiments/configs/generalization_continued.py:long \
      --from_workdir=docs/results/generalization_long --workdir=runs/generalization_continued

References:
  Pascanu, Mikolov & Bengio (2013), ICML, §4.1.1; arXiv:1211.5063v2, §4.1.
"""

from __future__ import annotations

import time
from pathlib import Path

import ml_collections
from absl import flags

from experiments import cli, validation
from rnn_dynamics.errors import ConfigError
from rnn_dynamics.report import generalization as report
from rnn_dynamics.synthetic import continued
from rnn_dynamics.workdir import Workdir


def source_of(workdir_path: str, from_workdir: str | None) -> tuple[continued.Source, str]:
  """The models to continue: from `from_workdir`, else the workdir's own copy (a resumed
  run); returns them with the flag that named them, for messages."""
  if from_workdir:
    return continued.read_source(from_workdir), "--from_workdir"
  copy = Path(workdir_path) / continued.SOURCE
  if not (copy / "config.json").is_file():
    raise ConfigError(
      "--from_workdir is required: the experiments.generalization workdir whose trained "
      "models to continue, e.g. --from_workdir=docs/results/generalization_long"
    )
  return continued.read_source(copy, flag="the workdir's copy"), "the workdir's copy"


def run(
  config: ml_collections.ConfigDict, workdir_path: str, from_workdir: str | None = None
) -> tuple[list[dict], list[dict]]:
  """Trains on and tests (resuming whatever is already in the workdir); writes the table
  and its figure.

  Args:
    config: the validated config (this binary's fields).
    workdir_path: the workdir.
    from_workdir: the generalization workdir whose models to continue (None: the copy a
      first run left in the workdir).

  Returns:
    (the continued group's rows, one per model; the table, one row per (model, test
    point, evaluation length)).
  """
  source, flag = source_of(workdir_path, from_workdir)
  continued.check(config, source, flag)
  full = continued.recorded(config, source)
  workdir = Workdir(workdir_path, full)
  continued.keep_source(workdir, source)
  group_rows, rows = continued.train_and_test(full, workdir, source)
  workdir.write_table(group_rows)
  report.write_continued_figure(source.config, workdir.path / continued.TABLE, rows)
  return group_rows, rows


def main(argv):
  workdir = cli.require_workdir(argv, _WORKDIR, "runs/generalization_continued")
  t0 = time.time()
  config = validation.validate(_CONFIG.value, "generalization_continued")
  _, rows = run(config, workdir, _FROM_WORKDIR.value)
  print(report.continued_summary(rows))
  print(
    f"table: {workdir}/{continued.TABLE}.csv, figure: {workdir}/{continued.TABLE}.png "
    f"({time.time() - t0:.0f} s in this process)"
  )


if __name__ == "__main__":
  # Flags are defined only when run as a binary, so tests can import several binaries.
  _CONFIG = cli.define_config("experiments/configs/generalization_continued.py:cpu")
  _WORKDIR = cli.define_workdir()
  _FROM_WORKDIR = flags.DEFINE_string(
    "from_workdir",
    None,
    "The experiments.generalization workdir whose trained models to continue (needed on "
    "the first run; a resumed one reads the copy it left in --workdir).",
  )
  cli.run(main)
