r"""Trained networks: ρ and Ω over training, the gradient by lag, curvature at gradient
spikes, and the attractors that hold (or do not hold) the first symbol (§2, §4.1.1).

With --config.params_file pointing at a saved model (.npz with w_in, w_hh, b, w_out,
b_out and `init`, or a group's stacked `params.npz`, one run of it picked by
--config.params_index) it analyses that model; otherwise it first trains a small
temporal-order model with a few hundred SGD steps (norm-clipped unless
--config.clip_threshold=0). Writes `attractors.{npz,json,png,svg}` to --workdir. The work is `rnn_dynamics.analysis.trained_attractors.run`.

  python -m experiments.attractors --workdir=runs/attractors
  python -m experiments.attractors --workdir=runs/attr --config.params_index=2 \
      --config.params_file=docs/results/generalization_long/groups/train/params.npz
"""

from __future__ import annotations

import time

from absl import logging

from experiments import cli, validation
from rnn_dynamics.analysis import trained_attractors
from rnn_dynamics.workdir import Workdir


def main(argv):
  workdir = cli.require_workdir(argv, _WORKDIR, "runs/attractors")
  start = time.time()
  config = validation.validate(_CONFIG.value, "attractors")
  summary = trained_attractors.run(config, Workdir(workdir, config))
  logging.info("done in %.1f s", time.time() - start)
  for line in trained_attractors.summary_lines(summary, config.flow_steps):
    print(line)
  print(f"figure: {workdir}/attractors.png")


if __name__ == "__main__":
  # Flags are defined only when run as a binary, so tests can import several binaries.
  _CONFIG = cli.define_config("experiments/configs/attractors.py")
  _WORKDIR = cli.define_workdir("the data and figures")
  cli.run(main)
