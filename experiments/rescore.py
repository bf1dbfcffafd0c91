r"""Scores a finished Table 1 / Table 2 workdir's best parameters on a whole split.

The `cpu` presets score valid and test on their first 100,000 symbols each epoch; the
published number is the whole split's (`rnn_dynamics.natural.rescore`). Nothing in the
workdir is changed; the scores go to `rescored_<split>.{json,csv,md}` beside its files.

  python -m experiments.rescore --workdir=runs/ptb --split=test --data_path=/path/to/ptb
  python -m experiments.rescore --workdir=docs/results/ptb1_cpu --data_path=/path/to/ptb

A workdir records its data by file name and sha256, not by path, so `--data_path` says
where the data is now; files with other checksums are refused.
"""

from __future__ import annotations

from absl import flags

from experiments import cli
from rnn_dynamics.natural import rescore
from rnn_dynamics.workdir import Workdir


def main(argv):
  path = cli.require_workdir(argv, _WORKDIR, "runs/ptb")
  rows = rescore.rescore(path, _SPLIT.value, _DATA_PATH.value)
  summary = Workdir.open(path).read_json("summary.json")
  text = rescore.write(path, rows, summary.get("score", "score"))
  print(text)
  print(f"results: {path}/rescored_{_SPLIT.value}.md")


if __name__ == "__main__":
  _WORKDIR = cli.define_workdir("a finished char_lm or polyphonic workdir")
  _SPLIT = flags.DEFINE_string("split", "test", "Split to score in full: train, valid, test.")
  _DATA_PATH = flags.DEFINE_string("data_path", "", "The data, where it moved since the run.")
  cli.run(main)
