r"""Lyapunov exponents of saved models, and the decay of their gradient with the lag.

For each model of --config.params_file (by default the five single models of
`docs/results/generalization_long`, stacked `[runs, ...]`; --config.params_indices picks
some) and each length in --config.lengths: the top-k Lyapunov exponents of the network
driven by fresh sequences of the task (repeated QR after a warm-up, mean and spread over
the sequences), the local rate of the top direction at marks and on distractors, and
`‖∂E/∂h_k‖` against the lag `T − 1 − k` with the prediction `e^{λ_1 · lag}`. Writes
`exponents.{csv,json}`, `lag_decay.npz` and the figures `exponents.{png,svg}`,
`lag_decay.{png,svg}` to --workdir. The work is `rnn_dynamics.analysis.trained_lyapunov.run`.

  python -m experiments.lyapunov --workdir=runs/lyapunov                # cpu preset
  python -m experiments.lyapunov --config=experiments/configs/lyapunov.py:full \
      --workdir=runs/lyapunov_full
"""

from __future__ import annotations

import time

import jax
from absl import logging

from experiments import cli, validation
from rnn_dynamics.analysis import trained_lyapunov
from rnn_dynamics.workdir import Workdir


def main(argv):
  workdir = cli.require_workdir(argv, _WORKDIR, "runs/lyapunov")
  start = time.time()
  config = validation.validate(_CONFIG.value, "lyapunov")
  # Before any array exists: a float64 run is float64 throughout (data, parameters, QR).
  jax.config.update("jax_enable_x64", bool(config.float64))
  trained_lyapunov.model_indices(config)  # bad indices are refused before any write
  rows = trained_lyapunov.run(config, Workdir(workdir, config))
  logging.info("done in %.1f s", time.time() - start)
  for line in trained_lyapunov.summary_lines(rows):
    print(line)
  print(f"figures: {workdir}/exponents.png, {workdir}/lag_decay.png")


if __name__ == "__main__":
  # Flags are defined only when run as a binary, so tests can import several binaries.
  _CONFIG = cli.define_config("experiments/configs/lyapunov.py")
  _WORKDIR = cli.define_workdir("the exponents, lag curves and figures")
  cli.run(main)
