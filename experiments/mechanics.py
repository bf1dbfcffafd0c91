r"""§2.1 of Pascanu et al. (2013): how `‖∂x_t/∂x_k‖` depends on the lag and on ρ.

For linear, tanh and sigmoid networks with `W_rec = ρ·Q` (or a Gaussian matrix scaled to
radius ρ), driven by random inputs, measures `‖∂x_T/∂x_{T−l}‖₂` for every lag `l` from
`jax.jacrev` of the model's step, against the bound `(γρ)^l`, and fits the per-step
growth rate over a sweep of ρ: the rate stays below 1 whenever `ρ < 1/γ` (sufficient
for vanishing) and can exceed 1 only beyond (necessary for exploding). Writes
`mechanics.{npz,json,png,svg}` to --workdir.

  python -m experiments.mechanics --workdir=runs/mechanics
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from experiments import cli, validation
from rnn_dynamics import results, rnn
from rnn_dynamics.analysis import mechanics
from rnn_dynamics.report import dynamics, style
from rnn_dynamics.workdir import Workdir

UNITS = {"tanh": rnn.TANH, "sigmoid": rnn.SIGMOID}


@functools.partial(jax.jit, static_argnames=("kind", "matrix", "n_hidden", "length", "n_traj"))
def _log_norms(key, rho, input_scale, kind, matrix, n_hidden, length, n_traj):
  """`log ‖∂x_T/∂x_{T−l}‖` for `n_traj` random input sequences: `[n_traj, T + 1]`."""
  k_w, k_x, k_u = jax.random.split(key, 3)
  make = mechanics.scaled_orthogonal if matrix == "orthogonal" else mechanics.scaled_gaussian
  params = rnn.Params(
    w_in=input_scale * jnp.eye(n_hidden),
    w_hh=make(k_w, n_hidden, rho),
    b=jnp.zeros((n_hidden,)),
    w_out=jnp.zeros((n_hidden, 1)),
    b_out=jnp.zeros((1,)),
  )
  if kind == "linear":
    step = mechanics.linear_step(params)
  else:
    step = functools.partial(rnn.step, params, UNITS[kind])
  x0s = jax.random.normal(k_x, (n_traj, n_hidden))
  us = jax.random.normal(k_u, (n_traj, length, n_hidden))
  norms = jax.vmap(lambda x0, u: mechanics.jacobian_norms_by_lag(step, x0, u))(x0s, us)
  return jnp.log(norms)


def run(config, workdir_path: str) -> dict:
  """Computes the §2.1 data, writes it and the figure into the workdir (made, or checked
  against `config`, by `Workdir`); returns a summary."""
  workdir = Workdir(workdir_path, config)
  key = jax.random.key(config.seed)
  common = dict(
    matrix=config.matrix,
    n_hidden=config.n_hidden,
    length=config.length,
    n_traj=config.n_trajectories,
  )
  curves, rates, arrays, summary = {}, {}, {}, {}
  for i, kind in enumerate(("linear", "tanh", "sigmoid")):
    gamma = mechanics.GAMMA[kind]
    k = jax.random.fold_in(key, i)
    curves[kind] = {}
    for rho in config.curve_rhos[kind]:
      log_n = np.asarray(_log_norms(k, rho, config.input_scale, kind=kind, **common))
      curves[kind][float(rho)] = np.exp(log_n.mean(axis=0))  # geometric mean
      arrays[f"{kind}/rho={rho:g}"] = curves[kind][float(rho)]
    rhos = np.linspace(0.25, 3.0 / gamma, config.rate_num_rhos)
    r = np.array(
      [
        mechanics.decay_rate(
          np.exp(
            np.asarray(_log_norms(k, rho, config.input_scale, kind=kind, **common)).mean(axis=0)
          )
        )
        for rho in rhos
      ]
    )
    rates[kind] = (rhos, r)
    arrays[f"{kind}/rate_rhos"], arrays[f"{kind}/rates"] = rhos, r
    below = rhos < 1.0 / gamma
    summary[kind] = {
      "gamma": gamma,
      "threshold_rho": 1.0 / gamma,
      "max_rate_below_threshold": float(np.nanmax(r[below])) if below.any() else None,
      "max_rate_above_threshold": float(np.nanmax(r[~below])) if (~below).any() else None,
      "rates": dict(zip([f"{x:.3g}" for x in rhos], r)),
    }
  results.write_npz(workdir.output("mechanics.npz"), arrays, compressed=False)
  results.write_json(workdir.output("mechanics.json"), summary, sort_keys=True)
  fig = dynamics.mechanics_figure(curves, rates, mechanics.GAMMA)
  style.save_figure(fig, workdir.output("mechanics"))
  return summary


def main(argv):
  workdir = cli.require_workdir(argv, _WORKDIR, "runs/mechanics")
  start = time.time()
  config = validation.validate(_CONFIG.value, "mechanics")
  summary = run(config, workdir)
  logging.info("done in %.1f s", time.time() - start)
  for kind, s in summary.items():
    print(
      f"{kind:8s} ρ < 1/γ = {s['threshold_rho']:g}: max per-step rate "
      f"{s['max_rate_below_threshold']:.3f}; above: {s['max_rate_above_threshold']:.3f}"
    )
  print(f"figure: {workdir}/mechanics.png")


if __name__ == "__main__":
  # Flags are defined only when run as a binary, so tests can import several binaries.
  _CONFIG = cli.define_config("experiments/configs/mechanics.py")
  _WORKDIR = cli.define_workdir("the data and figures")
  cli.run(main)
