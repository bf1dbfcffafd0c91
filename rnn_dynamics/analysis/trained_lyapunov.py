"""Lyapunov exponents of saved models, and how their gradient decays with the lag.

For each model of a file (one saved model, or a group's models stacked `[runs, ...]`) and
each sequence length T, `run` drives the network with the same fresh sequences of the
task and measures, per sequence:

* the top-k Lyapunov exponents by repeated QR after a warm-up (`lyapunov.rnn_spectrum`);
* the local growth rate of each column of the QR basis by phase: on the steps at and
  just after a marked symbol, and on the distractor steps (the per-step `log R[i, i]`,
  averaged over the steps of that phase);
* `log ‖∂E/∂h_k‖` for every step k, the BPTT error signal reaching step k from the loss
  at the end (`adjoint_log_norms`), whose decay with the lag `T − 1 − k` the top exponent
  predicts: `‖∂E/∂h_k‖ ≈ C e^{λ_1 (T − 1 − k)}` (docs/reference.md §6).

It writes `exponents.{csv,json}` (one row per model and length), `lag_decay.npz` (the
mean and quantiles of the lag curves, and per sequence its exponents, lag slope and the
top direction's rate in each phase, in float32) and the figures
`exponents.{png,svg}` and `lag_decay.{png,svg}`, the files of `experiments/lyapunov.py`.

References:
  docs/reference.md §6 (Lyapunov exponents, repeated QR); Pascanu, Mikolov & Bengio
  (2013), §2.1 (the gradient as a product of Jacobians) and §4.1.1 (temporal order).
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from rnn_dynamics import results, rnn
from rnn_dynamics.analysis import lyapunov
from rnn_dynamics.analysis.saved_model import load_params
from rnn_dynamics.errors import ConfigError
from rnn_dynamics.report import dynamics, style
from rnn_dynamics.tasks import get_task
from rnn_dynamics.tasks.base import Batch, float_dtype
from rnn_dynamics.workdir import Workdir

__all__ = [
  "adjoint_log_norms",
  "analyse",
  "lag_slope",
  "mark_steps",
  "model_indices",
  "phase_rates",
  "run",
  "sequences",
  "summary_lines",
  "warmup_steps",
]

QUANTILES = (0.1, 0.5, 0.9)
"""Quantiles of the lag curves across sequences saved beside their mean."""


def warmup_steps(config, length: int) -> int:
  """Steps before the QR accumulates: `⌊warmup_fraction · T⌋`, at most T − 1."""
  return min(int(config.warmup_fraction * length), length - 1)


def sequences(config, task, length: int) -> Batch:
  """The fresh sequences of length T: the same for every model (a paired comparison),
  drawn from `config.seed` and T alone, in the current float dtype."""
  key = jax.random.fold_in(jax.random.key(config.seed), length)
  return task.sample(key, config.sequences, length, task.buffer_length(length))


def model_indices(config) -> list[int]:
  """The models of `config.params_file` to analyse: `config.params_indices`, or all.

  Raises:
    ConfigError: an index names no model of the file, or `n_exponents` exceeds its
      hidden units (checked before anything is written).
    UserError: the file is damaged.
  """
  path = config.params_file
  shape = results.read_npz(Path(path).expanduser(), "pass a model saved whole")["w_hh"].shape
  runs = shape[0] if len(shape) == 3 else 1
  indices = [int(i) for i in config.params_indices] or list(range(runs))
  if any(i >= runs for i in indices):
    raise ConfigError(
      f"--config.params_indices={','.join(map(str, indices))}: {path} holds {runs} "
      f"model{'s' if runs > 1 else ''}, so use 0 to {runs - 1}"
    )
  if config.n_exponents > shape[-1]:
    raise ConfigError(
      f"--config.n_exponents={config.n_exponents}: must be ≤ the {shape[-1]} hidden units"
    )
  return indices


@functools.partial(jax.jit, static_argnames=("head",))
def adjoint_log_norms(params: rnn.Params, unit: rnn.Unit, batch: Batch, head: str) -> jax.Array:
  """`[T, B]`: `log ‖∂E/∂h_t‖` per step and sequence, for a head read at the last step.

  The error signal at the last state comes from `rnn.loss_and_grads` (its BPTT adjoint
  `dh` at the last step); it is carried back with the same one-step Jacobians,
  `∂E/∂h_{t−1} = (∂E/∂h_t ⊙ σ'(a_t)) W_hhᵀ`, renormalised at every step with the log of
  the norm accumulated, so that a decay of e^{−1000} neither underflows nor loses
  precision. Equal to `log ‖adjoints.dh‖` of `rnn.loss_and_grads` wherever that does not
  underflow (a test checks it). All steps must be valid (fixed-length sequences).
  """
  if not head.startswith("last"):
    raise ValueError(f"the lag decay needs a head read at the last step, got {head!r}")
  _, _, forward = rnn.loss_and_grads(params, unit, batch, head)
  dh_last = forward.adjoints.dh_TxBxH[-1]
  norm = jnp.linalg.norm(dh_last, axis=-1)
  w_hh_t = params.w_hh.T

  def back(carry, dsigma_BxH):
    v, log_norm = carry
    w = (v * dsigma_BxH) @ w_hh_t  # ∂E/∂h_{t−1}, up to the carried scale
    n = jnp.linalg.norm(w, axis=-1)
    v = w / jnp.maximum(n, jnp.finfo(n.dtype).tiny)[:, None]
    log_norm = log_norm + jnp.log(jnp.maximum(n, jnp.finfo(n.dtype).tiny))
    return (v, log_norm), log_norm

  v0 = dh_last / jnp.maximum(norm, jnp.finfo(norm.dtype).tiny)[:, None]
  # Step t's Jacobian carries ∂E/∂h_t to ∂E/∂h_{t−1}: steps T−1 … 1, in reverse.
  dsigma = forward.unroll.dsigma_TxBxH[1:]
  _, logs = jax.lax.scan(back, (v0, jnp.log(norm)), dsigma, reverse=True)
  return jnp.concatenate([logs, jnp.log(norm)[None]], axis=0)


def mark_steps(batch: Batch, window: int) -> np.ndarray:
  """`[T, B]` bool: the steps of each marked symbol (A or B, inputs 0 and 1) and the
  `window − 1` steps after it."""
  marked = np.asarray(batch.inputs[..., 0] + batch.inputs[..., 1]) > 0
  out = marked.copy()
  for shift in range(1, window):
    out[shift:] |= marked[:-shift]
  return out


def phase_rates(running_BxTxK: np.ndarray, phase_BxT: np.ndarray) -> np.ndarray:
  """`[B, K]`: each basis column's mean `log R[i, i]` over the accumulated steps of one
  phase (NaN where a sequence has none), from the running means of `rnn_spectrum`.

  The running mean after t + 1 steps times t + 1 is the sum so far; its differences are
  the per-step `log R[i, i]`. Columns are in the basis's order: after the warm-up the
  first is the direction of the top exponent.
  """
  steps = np.arange(1, running_BxTxK.shape[1] + 1, dtype=np.float64)
  sums = running_BxTxK.astype(np.float64) * steps[None, :, None]
  per_step = np.diff(sums, axis=1, prepend=0.0)
  count = phase_BxT.sum(axis=1)
  total = np.einsum("btk,bt->bk", per_step, phase_BxT.astype(np.float64))
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(count[:, None] > 0, total / count[:, None], np.nan)


def lag_slope(log_ratio_BxL: np.ndarray) -> np.ndarray:
  """`[B]`: the least-squares slope of `log ‖∂E/∂h_{T−1−l}‖ / ‖∂E/∂h_{T−1}‖` against
  the lag l, per sequence (an intercept absorbs how far the error signal starts from the
  slowest-decaying direction)."""
  lags = np.arange(log_ratio_BxL.shape[1], dtype=np.float64)
  centred = lags - lags.mean()
  return (log_ratio_BxL - log_ratio_BxL.mean(axis=1, keepdims=True)) @ centred / (centred @ centred)


def analyse(config, task, params: rnn.Params, unit: rnn.Unit, length: int):
  """One model at one length: `(row, arrays)`, the numbers of `exponents.csv` and the
  arrays of `lag_decay.npz` (without their key prefix)."""
  batch = sequences(config, task, length)
  warmup = warmup_steps(config, length)
  spectrum = lyapunov.rnn_spectrum(
    params, unit, batch.inputs, int(config.n_exponents), warmup=warmup, mask_TxB=batch.mask
  )
  exps = np.asarray(spectrum.exponents_K, np.float64)  # [B, K], each row sorted
  running = np.asarray(spectrum.running_TxK)  # [B, T − warmup, K]
  marks = mark_steps(batch, int(config.mark_window)).T[:, warmup:]  # [B, T − warmup]
  rates = {"marks": phase_rates(running, marks), "distractors": phase_rates(running, ~marks)}

  log_norm_TxB = np.asarray(adjoint_log_norms(params, unit, batch, task.head), np.float64)
  # Lag l = T − 1 − k; the curve is kept over the lags the exponents were accumulated on.
  log_ratio_BxL = (log_norm_TxB[::-1] - log_norm_TxB[-1]).T[:, : length - warmup]
  slopes = lag_slope(log_ratio_BxL)
  mean_curve = log_ratio_BxL.mean(axis=0)
  row = {
    "length": length,
    "warmup": warmup,
    "sequences": int(exps.shape[0]),
  }
  for i in range(exps.shape[1]):
    row[f"lambda_{i + 1}"] = float(exps[:, i].mean())
    row[f"lambda_{i + 1}_std"] = float(exps[:, i].std(ddof=1)) if len(exps) > 1 else 0.0
  row["lambda_1_q10"], row["lambda_1_q90"] = (float(q) for q in np.quantile(exps[:, 0], [0.1, 0.9]))
  for phase, r in rates.items():
    row[f"{phase}_rate_1"] = float(np.nanmean(r[:, 0]))
    row[f"{phase}_rate_1_std"] = float(np.nanstd(r[:, 0], ddof=1)) if len(r) > 1 else 0.0
    row[f"{phase}_volume_rate"] = float(np.nanmean(r.sum(axis=1)))  # Σ_i of k columns
  row["lag_slope"] = float(lag_slope(mean_curve[None])[0])  # of the mean curve
  row["lag_slope_mean"] = float(slopes.mean())
  row["lag_slope_std"] = float(slopes.std(ddof=1)) if len(slopes) > 1 else 0.0
  row["lag_rate_end_to_end"] = float(mean_curve[-1] / max(len(mean_curve) - 1, 1))
  row["lag_slope_over_lambda_1"] = row["lag_slope"] / row["lambda_1"]
  # float32 and the top direction's phase rates only: the published folder stays small.
  arrays = {
    "exponents_BxK": exps.astype(np.float32),
    "log_ratio_mean_L": mean_curve.astype(np.float32),
    "log_ratio_quantiles_QxL": np.quantile(log_ratio_BxL, QUANTILES, axis=0).astype(np.float32),
    "lag_slope_B": slopes.astype(np.float32),
    "marks_rate_1_B": rates["marks"][:, 0].astype(np.float32),
    "distractors_rate_1_B": rates["distractors"][:, 0].astype(np.float32),
  }
  return row, arrays


def run(config, workdir: Workdir) -> list[dict]:
  """Analyses every model at every length; writes the files into `workdir`; returns the
  rows of `exponents.csv`."""
  task = get_task(config.task)
  rows, arrays = [], {"quantiles": np.asarray(QUANTILES)}
  for index in model_indices(config):
    params, unit, init = load_params(config.params_file, index)
    params = jax.tree.map(lambda a: jnp.asarray(a, float_dtype()), params)
    for length in config.lengths:
      row, found = analyse(config, task, params, unit, int(length))
      rows.append({"model": index, "init": init, **row})
      arrays.update({f"model{index}_T{length}/{k}": v for k, v in found.items()})
  results.write_results(workdir.output("exponents"), rows)
  results.write_npz(workdir.output("lag_decay.npz"), arrays)
  style.save_figure(dynamics.lyapunov_figure(rows), workdir.output("exponents"))
  style.save_figure(dynamics.lag_decay_figure(rows, arrays), workdir.output("lag_decay"))
  return rows


def summary_lines(rows: list[dict]) -> list[str]:
  """One line per model and length: λ₁ (mean ± sd over sequences), λ₂, the phase rates
  of the top direction, and the lag decay's slope against λ₁."""
  return [
    f"model {r['model']} T = {r['length']}: λ1 = {r['lambda_1']:.4f} ± {r['lambda_1_std']:.4f}"
    + (f", λ2 = {r['lambda_2']:.4f}" if "lambda_2" in r else "")
    + f"; top direction on distractors {r['distractors_rate_1']:.4f}, at marks "
    f"{r['marks_rate_1']:.4f}; lag decay slope {r['lag_slope']:.4f} "
    f"({r['lag_slope_over_lambda_1']:.2f} λ1)"
    for r in rows
  ]
