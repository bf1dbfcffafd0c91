r"""Figure 3 of Pascanu et al. (2013): the bifurcation diagram of one recurrent unit.

Solves every fixed point of `x ↦ w σ(x) + b` along a sweep of `b` (float64 bisection on
provably monotone brackets), classifies them by linear stability, locates the two
saddle-node bifurcations b1, b2 and the basin boundary, checks the solved attractors
against plain simulation, and writes `bifurcation.{npz,json,png,svg}` to --workdir.

  python -m experiments.bifurcation --workdir=runs/bifurcation
  python -m experiments.bifurcation --config=experiments/configs/bifurcation.py:test \
      --workdir=/tmp/bif
"""

from __future__ import annotations

import time

import numpy as np
from absl import logging

from experiments import cli, validation
from rnn_dynamics import results, rnn
from rnn_dynamics.analysis import bifurcation
from rnn_dynamics.report import dynamics, style
from rnn_dynamics.workdir import Workdir

UNITS = {"sigmoid": rnn.SIGMOID, "tanh": rnn.TANH}


def run(config, workdir_path: str) -> dict:
  """Computes Figure 3's data, writes it and the figure into the workdir (made, or checked
  against `config`, by `Workdir`); returns a summary."""
  workdir = Workdir(workdir_path, config)
  unit = UNITS[config.unit]
  bs = np.linspace(config.b_min, config.b_max, config.num_b)
  curves = bifurcation.branches(config.w, bs, unit)
  bif = bifurcation.bifurcation_points(config.w, unit)

  # Vector field F(x) − x on a coarse grid: where a start in that region moves.
  field_bs = np.linspace(config.b_min, config.b_max, config.field_num_b)
  field_xs = np.linspace(config.x_min, config.x_max, config.field_num_x)
  fb, fx = np.meshgrid(field_bs, field_xs)
  field_dx = np.asarray(bifurcation.iterate(config.w, fb, unit, fx, 1)) - fx

  # Check: simulating the model from many starts lands on the solved attractors.
  sim_b = np.repeat(np.linspace(config.b_min, config.b_max, config.sim_num_b), config.sim_num_x0)
  sim_x0 = np.tile(np.linspace(config.x_min, config.x_max, config.sim_num_x0), config.sim_num_b)
  sim_x = np.asarray(bifurcation.iterate(config.w, sim_b, unit, sim_x0, config.sim_steps))
  fp = bifurcation.fixed_points(config.w, sim_b, unit)
  dist_Nx3 = np.abs(fp.x_Nx3 - sim_x[:, None])
  sim_error = np.nanmin(dist_Nx3, axis=1)
  # A start exactly on the basin boundary (e.g. x0 = 0 at b = −w/2) stays there.
  on_unstable = ~np.take_along_axis(fp.stable_Nx3, np.nanargmin(dist_Nx3, 1)[:, None], 1)[:, 0]

  summary = {
    "w": config.w,
    "unit": config.unit,
    **bif,
    "bistable_range": [bif["b2"], bif["b1"]],
    "max_fixed_points": int(curves["count"].max()),
    # float32 simulation, slow convergence right at the tangencies: a loose check.
    "sim_max_distance_to_solved_fixed_point": float(np.max(sim_error)),
    "sim_median_distance_to_solved_fixed_point": float(np.median(sim_error)),
    "sim_ended_on_unstable": int(np.sum(on_unstable)),
  }
  results.write_npz(
    workdir.output("bifurcation.npz"),
    dict(
      bs=bs,
      field_bs=field_bs,
      field_xs=field_xs,
      field_dx=field_dx,
      sim_b=sim_b,
      sim_x0=sim_x0,
      sim_x=sim_x,
      **curves,
    ),
    compressed=False,  # as before: the analysis binaries keep plain .npz
  )
  results.write_json(workdir.output("bifurcation.json"), summary, sort_keys=True)
  fig = dynamics.bifurcation_figure(
    bs,
    curves["lower"],
    curves["upper"],
    curves["boundary"],
    bif["b1"],
    bif["b2"],
    bif["x1"],
    bif["x2"],
    field_bs=field_bs,
    field_xs=field_xs,
    field_dx=field_dx,
    sim_bs=sim_b,
    sim_xs=sim_x,
    w=config.w,
  )
  style.save_figure(fig, workdir.output("bifurcation"))
  return summary


def main(argv):
  workdir = cli.require_workdir(argv, _WORKDIR, "runs/bifurcation")
  start = time.time()
  config = validation.validate(_CONFIG.value, "bifurcation")
  summary = run(config, workdir)
  logging.info("done in %.1f s", time.time() - start)
  print(
    f"b1 = {summary['b1']:.6f} (x = {summary['x1']:.6f}), "
    f"b2 = {summary['b2']:.6f} (x = {summary['x2']:.6f})"
  )
  print(f"figure: {workdir}/bifurcation.png")


if __name__ == "__main__":
  # Flags are defined only when run as a binary, so tests can import several binaries.
  _CONFIG = cli.define_config("experiments/configs/bifurcation.py")
  _WORKDIR = cli.define_workdir("the data and figures")
  cli.run(main)
