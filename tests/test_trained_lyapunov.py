"""experiments/lyapunov.py end to end, and its pieces against facts known without it.

The binary runs on its `test` preset (two of the committed single models of
`docs/results/generalization_long`) and what it wrote is checked against
`lyapunov.rnn_lyapunov_exponents` called directly on the same sequences. The lag decay is
checked on a network whose exponents and gradient decay are known exactly: with no input
weights and no bias its state stays at 0, where tanh' = 1, so every one-step Jacobian is
`W_hhᵀ = ρQᵀ` (Q orthogonal): all exponents are log ρ and `‖∂E/∂h_{T−1−l}‖` is exactly
`ρ^l ‖∂E/∂h_{T−1}‖`.

References:
  docs/reference.md §6 (Lyapunov exponents, repeated QR).
"""

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments.configs import lyapunov as lyapunov_config
from rnn_dynamics import rnn
from rnn_dynamics.analysis import lyapunov, mechanics, trained_lyapunov
from rnn_dynamics.analysis.saved_model import load_params
from rnn_dynamics.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
FILES = ("exponents.csv", "exponents.json", "lag_decay.npz", "exponents.png", "lag_decay.png")


def test_test_preset_end_to_end_matches_the_library(tmp_path, x64):
  config = lyapunov_config.get_config("test")
  proc = subprocess.run(
    [sys.executable, "-m", "experiments.lyapunov",
     "--config=experiments/configs/lyapunov.py:test", f"--workdir={tmp_path}"],
    cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
  )  # fmt: skip
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "lag decay slope" in proc.stdout
  for name in FILES:
    assert (tmp_path / name).stat().st_size > 0, name
  saved = json.loads((tmp_path / "config.json").read_text())
  assert saved == json.loads(json.dumps(config.to_dict()))
  rows = json.loads((tmp_path / "exponents.json").read_text())
  assert [(r["model"], r["length"]) for r in rows] == [
    (m, t) for m in config.params_indices for t in config.lengths
  ]
  with np.load(tmp_path / "lag_decay.npz") as f:
    arrays = {k: f[k] for k in f.files}

  task = get_task(config.task)
  k = config.n_exponents
  for row in rows:
    params, unit, _ = load_params(config.params_file, row["model"])
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    length = row["length"]
    batch = trained_lyapunov.sequences(config, task, length)
    assert batch.inputs.dtype == jnp.float64
    warmup = trained_lyapunov.warmup_steps(config, length)
    assert row["warmup"] == warmup == int(0.1 * length)
    # The written means are the library's exponents on the same sequences.
    direct = lyapunov.rnn_lyapunov_exponents(params, unit, batch.inputs, k, warmup=warmup)
    written = [row[f"lambda_{i + 1}"] for i in range(k)]
    np.testing.assert_allclose(written, direct, rtol=1e-10, atol=1e-12)
    prefix = f"model{row['model']}_T{length}/"
    exps = arrays[prefix + "exponents_BxK"]
    assert exps.shape == (config.sequences, k) and np.all(np.diff(exps, axis=1) <= 0)
    np.testing.assert_allclose(row["lambda_1_std"], np.std(exps[:, 0], ddof=1), rtol=1e-5)
    # The lag curve is the adjoint of rnn.loss_and_grads, over the accumulated lags.
    _, _, forward = rnn.loss_and_grads(params, unit, batch, task.head)
    log_dh = np.log(np.linalg.norm(np.asarray(forward.adjoints.dh_TxBxH), axis=-1))
    ratio = (log_dh[::-1] - log_dh[-1]).T[:, : length - warmup]
    np.testing.assert_allclose(arrays[prefix + "log_ratio_mean_L"], ratio.mean(0), atol=1e-5)
    lags = np.arange(length - warmup)
    slope = np.polyfit(lags, ratio.mean(0), 1)[0]
    np.testing.assert_allclose(row["lag_slope"], slope, rtol=1e-8)
    np.testing.assert_allclose(row["lag_slope_over_lambda_1"], slope / written[0], rtol=1e-8)


def _contracting_linear_network(rho, n_hidden=12, n_out=4):
  """tanh network whose state stays at 0: Jacobians `ρQᵀ` exactly (Q orthogonal)."""
  w_hh = mechanics.scaled_orthogonal(jax.random.key(3), n_hidden, rho).astype(jnp.float64)
  return rnn.Params(
    w_in=jnp.zeros((6, n_hidden), jnp.float64),
    w_hh=w_hh,
    b=jnp.zeros((n_hidden,), jnp.float64),
    w_out=jax.random.normal(jax.random.key(4), (n_hidden, n_out), jnp.float64),
    b_out=jnp.asarray([0.3, -0.2, 0.1, 0.0], jnp.float64),
  )


def test_lag_decay_and_exponents_of_a_known_contraction(x64):
  rho = 0.9
  config = lyapunov_config.get_config("test")
  task = get_task(config.task)
  params = _contracting_linear_network(rho)
  row, arrays = trained_lyapunov.analyse(config, task, params, rnn.TANH, 40)
  log_rho = np.log(rho)
  # Every one-step Jacobian has all singular values ρ: every exponent, every step's
  # log R[i, i], and so every phase's rate is log ρ.
  np.testing.assert_allclose(arrays["exponents_BxK"], log_rho, atol=1e-6)
  for phase in ("marks", "distractors"):
    np.testing.assert_allclose(arrays[f"{phase}_rate_1_B"], log_rho, atol=1e-6)
    np.testing.assert_allclose(row[f"{phase}_rate_1"], log_rho, atol=1e-10)
    np.testing.assert_allclose(row[f"{phase}_volume_rate"], config.n_exponents * log_rho)
  # The adjoint shrinks by exactly ρ per step of lag: the curve is l·log ρ, slope log ρ
  # (the saved arrays are float32).
  lags = np.arange(40 - row["warmup"])
  np.testing.assert_allclose(arrays["log_ratio_mean_L"], lags * log_rho, atol=1e-5)
  np.testing.assert_allclose(arrays["log_ratio_quantiles_QxL"], [lags * log_rho] * 3, atol=1e-5)
  np.testing.assert_allclose(arrays["lag_slope_B"], log_rho, atol=1e-6)
  for key in ("lag_slope", "lag_rate_end_to_end"):
    np.testing.assert_allclose(row[key], log_rho, atol=1e-10)
  np.testing.assert_allclose(row["lag_slope_over_lambda_1"], 1.0, atol=1e-5)


def test_adjoint_log_norms_do_not_underflow(x64):
  # ρ = 0.2 over 1000 steps is e^{−1609}, below float64's range: the renormalised
  # backward pass keeps the log exact where the plain adjoint would be 0.
  params = _contracting_linear_network(0.2)
  task = get_task("temporal_order")
  batch = task.sample(jax.random.key(0), 3, 1000, 1000)
  logs = np.asarray(trained_lyapunov.adjoint_log_norms(params, rnn.TANH, batch, task.head))
  decay = logs[-1] - logs[::-1]
  expected = -np.arange(1000.0) * np.log(0.2)
  np.testing.assert_allclose(decay, np.broadcast_to(expected[:, None], decay.shape), rtol=1e-12)


def test_phase_rates_average_the_per_step_log_r():
  rng = np.random.default_rng(0)
  per_step = rng.normal(size=(3, 30, 2))
  running = np.cumsum(per_step, axis=1) / np.arange(1, 31)[None, :, None]
  phase = rng.random((3, 30)) < 0.3
  phase[2] = False  # a sequence without that phase: NaN, not 0
  rates = trained_lyapunov.phase_rates(running, phase)
  for b in range(2):
    np.testing.assert_allclose(rates[b], per_step[b][phase[b]].mean(0), rtol=1e-12)
  assert np.all(np.isnan(rates[2]))


def test_mark_steps_cover_each_mark_and_the_window_after_it():
  task = get_task("temporal_order")
  batch = task.sample(jax.random.key(1), 4, 50, 50)
  window = 3
  marks = trained_lyapunov.mark_steps(batch, window)
  marked = np.asarray(batch.inputs[..., :2].sum(-1)) > 0
  assert np.all(marked.sum(0) == 2)  # two marks per sequence
  for b in range(4):
    (positions,) = np.nonzero(marked[:, b])
    expected = np.zeros(50, bool)
    for p in positions:
      expected[p : p + window] = True
    np.testing.assert_array_equal(marks[:, b], expected)
