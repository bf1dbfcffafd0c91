"""What a trained temporal-order network's attractors hold, end to end.

The paper suggests (§4.1.1) that a solved temporal-order model stores the first symbol in
an attractor of its dynamics. `run` takes a model — read back by `saved_model`, or
trained here by `training_history` with its curvature, ρ and Ω measured along the way —
and measures on one evaluation batch: the loss by lag at the start and end of training
(`mechanics`), the fixed points of the input-free map and of the map under the mean input
with their stability (`attractors`), and whether the first symbol settles into one of
their attractors or stays readable after flowing under the map. It writes
`attractors.{npz,json,png,svg}`, the files of `experiments/attractors.py` (the figure is
`rnn_dynamics.report.dynamics.attractors_figure`).

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, §2.2, §2.3 and §4.1.1; docs/reference.md §5 ("§2.2 and §4.1.1: attractors").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rnn_dynamics import results, rnn
from rnn_dynamics.analysis import attractors, curvature, mechanics
from rnn_dynamics.analysis.saved_model import load_params
from rnn_dynamics.analysis.training_history import measure_training
from rnn_dynamics.report import dynamics, style
from rnn_dynamics.tasks import get_task
from rnn_dynamics.workdir import Workdir

__all__ = ["analyse", "run", "states_x", "summary_lines"]


def states_x(params, unit, inputs_TxBxI):
  """Pre-activation states `x_t` (the paper's state) from the model's own `rnn.step`."""
  step = jax.vmap(lambda x, u: rnn.step(params, unit, x, u))
  # h_{-1} = 0, so the first state has no recurrent term.
  x0 = inputs_TxBxI[0] @ params.w_in + params.b[None, :]

  def body(x, u):
    x = step(x, u)
    return x, x

  _, xs = jax.lax.scan(body, x0, inputs_TxBxI[1:])
  return jnp.concatenate([x0[None], xs], axis=0)


def run(config, workdir: Workdir) -> dict:
  """Trains (or loads) the model, analyses it, writes data and figure into `workdir`;
  returns a summary."""
  key = jax.random.key(config.seed)
  task = get_task(config.task)
  summary: dict = {"task": config.task, "length": config.length}
  if config.params_file:
    params, unit, init = load_params(config.params_file, int(config.params_index))
    params_start, history = None, {}
    summary["params_file"] = config.params_file
  else:
    params, unit, params_start, history, trained = measure_training(config, task, key)
    summary.update(trained)
    init = config.init
  summary["init"] = init
  arrays, picture = analyse(config, task, key, params, unit, params_start, summary)
  results.write_npz(
    workdir.output("attractors.npz"),
    dict(
      arrays,
      **{f"history/{k}": v for k, v in history.items()},
      **{f"params/{k}": getattr(params, k) for k in ("w_in", "w_hh", "b", "w_out", "b_out")},
    ),
    compressed=False,  # as before: the analysis binaries keep plain .npz
  )
  results.write_json(workdir.output("attractors.json"), summary, sort_keys=True)
  style.save_figure(_figure(config, history, arrays, picture), workdir.output("attractors"))
  return summary


def analyse(config, task, key, params, unit, params_start, summary: dict):
  """The loss by lag at start and end, and the fixed points of the input-free map and of
  the map under the mean input, with how well they hold the first symbol.

  Adds its numbers to `summary`; returns the arrays to save and, for the figure, the
  visited states and the attractors of the mean-input map in their top-2 PCA plane.
  """
  buffer = task.buffer_length(config.length)
  k_eval = jax.random.fold_in(key, 7)
  batch = task.sample(k_eval, config.eval_batch, config.length, buffer)
  loss, error = rnn.loss_fn(params, unit, batch, task.head)
  summary.update(
    eval_loss=float(loss),
    eval_error=float(error),
    spectral_radius=float(rnn.spectral_radius(params.w_hh)),
  )
  lag_end, _ = mechanics.adjoint_norms_by_lag(params, unit, batch, task.head)
  lag_start = (
    mechanics.adjoint_norms_by_lag(params_start, unit, batch, task.head)[0]
    if params_start is not None
    else jnp.full_like(lag_end, jnp.nan)
  )
  summary["grad_ratio_lag_max_over_lag0"] = {
    "start": float(lag_start[-1] / lag_start[0]),
    "end": float(lag_end[-1] / lag_end[0]),
  }

  xs_TxBxH = states_x(params, unit, batch.inputs)
  fixed, v0 = _fixed_points(config, params, unit, batch, xs_TxBxH, summary)
  flat = np.asarray(xs_TxBxH).reshape(-1, xs_TxBxH.shape[-1])

  # Top-2 PCA plane of the visited states, for the picture.
  mean = flat.mean(0)
  _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
  proj = lambda x: (x - mean) @ vt[:2].T
  proj_states = proj(np.asarray(xs_TxBxH).transpose(1, 0, 2))
  fm = fixed["u_mean"]
  arrays = dict(
    lag_start=lag_start,
    lag_end=lag_end,
    fixed_u_mean=fm.x_KxH,
    stable_u_mean=fm.stable_K,
    eig_u_mean=fm.eigvals_KxH,
    fixed_u0=fixed["u0"].x_KxH,
    stable_u0=fixed["u0"].stable_K,
    first_symbol=v0,
  )
  picture = (proj_states, proj(fm.x_KxH) if len(fm.x_KxH) else np.zeros((0, 2)))
  return arrays, picture


def _fixed_points(config, params, unit, batch, xs_TxBxH, summary: dict):
  """Fixed points of the input-free map F and of the map under the mean input ū, and
  whether the first symbol of each sequence settles into one of their attractors.

  Adds `fixed_points_<map>` to `summary`; returns `({map: FixedPointSet}, first symbols)`.
  """
  h = xs_TxBxH.shape[-1]
  flat = np.asarray(xs_TxBxH).reshape(-1, h)
  rng = np.random.default_rng(config.seed)
  starts = flat[rng.choice(len(flat), config.fixed_point_starts)]
  starts = starts + rng.normal(0, 0.5, starts.shape) * starts.std(0)
  u_bar = jnp.mean(batch.inputs.reshape(-1, batch.inputs.shape[-1]), axis=0)
  maps = {"u0": attractors.map_for(params, unit), "u_mean": attractors.map_for(params, unit, u_bar)}

  # The first symbol: the value at the first marked step (inputs 0 or 1 are A or B).
  is_mark_TxB = np.asarray(batch.inputs[..., 0] + batch.inputs[..., 1]) > 0
  p0 = np.argmax(is_mark_TxB, axis=0)
  v0 = np.asarray(batch.inputs[p0, np.arange(config.eval_batch), 1]).astype(int)
  x_after_first = np.asarray(xs_TxBxH)[p0, np.arange(config.eval_batch)]
  labels = np.asarray(batch.targets)
  x_last = np.asarray(xs_TxBxH)[-1]
  fixed = {}
  for name, f in maps.items():
    fps = attractors.fixed_points_of(f, starts, num_steps=config.fixed_point_steps)
    fixed[name] = fps
    att = fps.x_KxH[fps.stable_K]
    idx_first, d_first = attractors.assign_attractors(f, x_after_first, att, config.flow_steps)
    idx_last, _ = attractors.assign_attractors(f, x_last, att, config.flow_steps)
    summary[f"fixed_points_{name}"] = {
      "n_fixed": len(fps.x_KxH),
      "n_attractors": int(fps.stable_K.sum()),
      "radius": fps.radius_K,
      "max_residual": float(fps.residual_K.max(initial=0.0)),
      "first_symbol_purity": attractors.label_purity(idx_first, v0),
      "first_symbol_settled": float(np.mean(d_first < 1e-2)),
      "class_purity_from_last_state": attractors.label_purity(idx_last, labels),
      # Without a point attractor the symbol may still ride on a cycle or a slow transient.
      "first_symbol_centroid_acc_after_flow": attractors.centroid_accuracy(
        attractors.flow(f, x_after_first, config.flow_steps), v0
      ),
      "first_symbol_centroid_acc_after_20_steps": attractors.centroid_accuracy(
        attractors.flow(f, x_after_first, 20), v0
      ),
      "chance_first_symbol": float(max(np.mean(v0), 1 - np.mean(v0))),
    }
  return fixed, v0


def _figure(config, history: dict, arrays: dict, picture):
  """`dynamics.attractors_figure` of what `run` measured: the history on one step axis,
  the gradient spikes marked."""
  hist = {}
  if history:
    hist = dict(history, loss=history["loss_all"])
    hist["omega_mean"] = np.interp(history["step"], history["curv_step"], history["omega_mean"])
    hist["spectral_radius"] = np.interp(
      history["step"], history["curv_step"], history["spectral_radius"]
    )
  spikes = (
    curvature.spike_mask(history["grad_norm"], config.spike_factor, config.spike_window)
    if history
    else None
  )
  proj_states, proj_fixed = picture
  return dynamics.attractors_figure(
    hist,
    np.asarray(arrays["lag_start"]),
    np.asarray(arrays["lag_end"]),
    proj_states,
    arrays["first_symbol"],
    proj_fixed,
    arrays["stable_u_mean"],
    spikes=spikes,
  )


def summary_lines(summary: dict, flow_steps: int) -> list[str]:
  """`run`'s summary in a few lines: the error and ρ, the gradient spikes (when trained
  here) and, per map, its fixed points and how well they hold the first symbol."""
  s = summary
  lines = [f"eval error {s['eval_error']:.3f}, ρ = {s['spectral_radius']:.3f}"]
  if "curvature" in s:
    c = s["curvature"]
    lines.append(
      f"{c['n_spikes']} gradient spikes: alignment {c['alignment_spikes']:.3f} vs "
      f"{c['alignment_other']:.3f} elsewhere; |λ1| {c['top_eig_spikes']:.3g} vs "
      f"{c['top_eig_other']:.3g}; Spearman(‖g‖, |λ1|) = {c['spearman']:.3f}"
    )
  for name in ("u0", "u_mean"):
    f = s[f"fixed_points_{name}"]
    lines.append(
      f"map {name}: {f['n_fixed']} fixed points, {f['n_attractors']} attractors; first "
      f"symbol purity {f['first_symbol_purity']:.3f} (chance {f['chance_first_symbol']:.3f}), "
      f"readable after 20 / {flow_steps} steps of the map: "
      f"{f['first_symbol_centroid_acc_after_20_steps']:.3f} / "
      f"{f['first_symbol_centroid_acc_after_flow']:.3f}"
    )
  return lines
