r"""Figure 6 of Pascanu et al. (2013): the error surface with a cliff, and clipping.

Computes `E_50(w, b)` of the one-unit sigmoid network on a grid (vmapped), runs plain and
norm-clipped gradient descent from the same starts, and measures along the plain paths
the gradient norm, the leading Hessian eigenvalue (Lanczos on Hessian-vector products)
and their alignment: the paper's hypothesis that gradient and curvature explode
together. Writes `cliff.{npz,json,png,svg}` to --workdir.

  python -m experiments.cliff --workdir=runs/cliff
  python -m experiments.cliff --config=experiments/configs/cliff.py:test --workdir=/tmp/cliff
"""

from __future__ import annotations

import os
import time

import jax
import numpy as np
from absl import logging

from experiments import cli, validation
from rnn_dynamics import plots, results
from rnn_dynamics.analysis import curvature, plotting, surface
from rnn_dynamics.workdir import make_folder


def run(config, workdir: str) -> dict:
  """Computes Figure 6's data, writes it and the figure into `workdir`; returns a summary."""
  setup = surface.CliffSetup(x0=config.x0, target=config.target, n_steps=config.n_steps)
  ws = np.linspace(config.w_min, config.w_max, config.grid)
  bs = np.linspace(config.b_min, config.b_max, config.grid)
  loss, grad_norm = surface.loss_surface(ws, bs, setup)
  wall = surface.wall_bias(ws, setup)

  starts = np.asarray(config.starts, np.float32)
  plain = surface.descend(starts, config.learning_rate, config.updates, None, setup)
  clipped = surface.descend(
    starts, config.learning_rate, config.updates, config.clip_threshold, setup
  )

  diag, eig, align, g_norm = _curvature_along(plain, config, setup)
  stats = curvature.spike_statistics(g_norm.ravel(), eig.ravel(), align.ravel())

  step_plain = np.linalg.norm(np.asarray(plain.step_NxSx2), axis=-1)
  step_clip = np.linalg.norm(np.asarray(clipped.step_NxSx2), axis=-1)
  final_plain = np.asarray(plain.loss_NxS)[:, -1]
  final_clip = np.asarray(clipped.loss_NxS)[:, -1]
  summary = {
    "max_grad_norm_on_grid": float(np.nanmax(grad_norm)),
    "largest_plain_step": step_plain.max(axis=1),
    "largest_clipped_step": step_clip.max(axis=1),
    "final_loss_plain": final_plain,
    "final_loss_clipped": final_clip,
    "thrown_off_plain": int(np.sum(step_plain.max(axis=1) > 2 * config.clip_threshold)),
    "curvature": stats,
    "random_starts": _random_starts(config, setup),
  }
  results.write_npz(
    os.path.join(workdir, "cliff.npz"),
    dict(
      ws=ws,
      bs=bs,
      loss_BxW=loss,
      grad_norm_BxW=grad_norm,
      wall_W=wall,
      plain_theta=plain.theta_NxSx2,
      plain_loss=plain.loss_NxS,
      plain_grad_norm=plain.grad_norm_NxS,
      clipped_theta=clipped.theta_NxSx2,
      clipped_loss=clipped.loss_NxS,
      clipped_grad_norm=clipped.grad_norm_NxS,
      plain_top_eigenvalue=eig,
      plain_alignment=align,
      plain_grad_curvature=np.asarray(diag.grad_curvature).reshape(eig.shape),
    ),
    compressed=False,  # as before: the analysis binaries keep plain .npz
  )
  results.write_json(os.path.join(workdir, "cliff.json"), summary, sort_keys=True)
  fig = plotting.plot_cliff(
    ws,
    bs,
    loss,
    wall,
    np.asarray(plain.theta_NxSx2),
    np.asarray(clipped.theta_NxSx2),
    grad_norm_P=g_norm,
    top_eig_P=eig,
    alignment_P=align,
    threshold=config.clip_threshold,
  )
  plots.save_figure(fig, os.path.join(workdir, "cliff"))
  return summary


def _curvature_along(plain, config, setup):
  """Curvature at every point of the plain paths, all at once: the diagnostics and the
  top eigenvalue, alignment and gradient norm as `[starts, steps]` arrays."""
  thetas = plain.theta_NxSx2.reshape(-1, 2)
  keys = jax.random.split(jax.random.key(config.seed), thetas.shape[0])
  diag = jax.jit(
    jax.vmap(
      lambda t, k: curvature.curvature_diagnostics(
        lambda th: surface.cliff_loss(th, setup), t, k, config.lanczos_iters
      )
    )
  )(thetas, keys)
  shape = plain.theta_NxSx2.shape[:2]
  eig = np.asarray(diag.top_eigenvalue).reshape(shape)
  align = np.asarray(diag.alignment).reshape(shape)
  g_norm = np.asarray(diag.grad_norm).reshape(shape)
  return diag, eig, align, g_norm


def _random_starts(config, setup) -> dict:
  """An unbiased count: many random starts below the wall, plain vs clipped descent."""
  rng = np.random.default_rng(config.seed)
  box = rng.uniform(config.random_box_lo, config.random_box_hi, (4 * config.num_random_starts, 2))
  below = box[box[:, 1] < surface.wall_bias(box[:, 0], setup) - 0.1][: config.num_random_starts]
  r_plain = surface.descend(below, config.learning_rate, config.updates, None, setup)
  r_clip = surface.descend(
    below, config.learning_rate, config.updates, config.clip_threshold, setup
  )
  solved = lambda tr: float(np.mean(np.asarray(tr.loss_NxS)[:, -1] < config.solved_loss))
  jumped = float(
    np.mean(
      np.linalg.norm(np.asarray(r_plain.step_NxSx2), axis=-1).max(1) > 2 * config.clip_threshold
    )
  )
  return {
    "n": len(below),
    "solved_plain": solved(r_plain),
    "solved_clipped": solved(r_clip),
    "fraction_plain_step_over_2x_threshold": jumped,
    "mean_final_loss_plain": float(np.mean(np.asarray(r_plain.loss_NxS)[:, -1])),
    "mean_final_loss_clipped": float(np.mean(np.asarray(r_clip.loss_NxS)[:, -1])),
  }


def main(argv):
  workdir = cli.require_workdir(argv, _WORKDIR, "runs/cliff")
  start = time.time()
  config = validation.validate(_CONFIG.value, "cliff")
  make_folder(workdir)
  results.write_json(os.path.join(workdir, "config.json"), config.to_dict(), sort_keys=True)
  s = run(config, workdir)
  logging.info("done in %.1f s", time.time() - start)
  c = s["curvature"]
  print(
    f"largest step plain {np.max(s['largest_plain_step']):.3g} vs clipped "
    f"{np.max(s['largest_clipped_step']):.3g}; thrown off: {s['thrown_off_plain']} of "
    f"{len(s['final_loss_plain'])}; final loss plain {np.mean(s['final_loss_plain']):.3g}, "
    f"clipped {np.mean(s['final_loss_clipped']):.3g}"
  )
  print(
    f"alignment at spikes {c['alignment_spikes']:.3f} vs elsewhere {c['alignment_other']:.3f};"
    f" |λ1| at spikes {c['top_eig_spikes']:.3g} vs {c['top_eig_other']:.3g}; "
    f"Spearman(‖g‖, |λ1|) = {c['spearman']:.3f}"
  )
  r = s["random_starts"]
  print(
    f"{r['n']} random starts below the wall: solved (E < threshold) plain "
    f"{r['solved_plain']:.0%}, clipped {r['solved_clipped']:.0%}"
  )
  print(f"figure: {workdir}/cliff.png")


if __name__ == "__main__":
  # Flags are defined only when run as a binary, so tests can import several binaries.
  _CONFIG = cli.define_config("experiments/configs/cliff.py")
  _WORKDIR = cli.define_workdir("the data and figures")
  cli.run(main)
