"""Figure 6's numbers end to end: the cliff surface, plain and clipped descent, curvature on
the path.

`compute` evaluates `E_50(w, b)` of the one-unit sigmoid network on a grid (`surface`),
runs plain and norm-clipped gradient descent from the same starts, and measures along
the plain paths the gradient norm, the leading Hessian eigenvalue (Lanczos on
Hessian-vector products, `curvature`) and their alignment: the paper's hypothesis that
gradient and curvature explode together. It also counts, over many random starts below
the wall, how often each descent solves the task. `experiments/cliff.py` writes it and
draws it with `rnn_dynamics.report.dynamics.cliff_figure`.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, §2.3 and Figure 6 (the cliff, clipping, and the
  hypothesis that gradient and curvature explode together); docs/reference.md §5.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np

from rnn_dynamics.analysis import curvature, surface

__all__ = ["Figure6", "compute"]


class Figure6(NamedTuple):
  """`arrays`: the surface, both descents' paths and the curvature along the plain ones
  (what `cliff.npz` keeps); `summary`: the numbers of `cliff.json`; `curvature_grad_norm`:
  ‖∇E‖ at each point of the plain paths, `[starts, steps]`, as the curvature pass saw it."""

  arrays: dict[str, Any]
  summary: dict[str, Any]
  curvature_grad_norm: np.ndarray


def compute(config: ml_collections.ConfigDict) -> Figure6:
  """Figure 6's data and summary for `config` (`experiments/configs/cliff.py`)."""
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
  arrays = dict(
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
  )
  return Figure6(arrays, summary, g_norm)


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
