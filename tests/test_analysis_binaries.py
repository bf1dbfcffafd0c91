"""experiments/{cliff,mechanics,attractors}.py end to end on their `test` presets.

Each binary runs as a subprocess from the repository root, as a user would run it, into a
fresh workdir; the test then reads back what it promises (`<name>.{npz,json,png,svg}`,
`config.json` and `provenance.json`) and checks the content against facts known without the binary: the step
bound of clipping, `‖W^l‖ = ρ^l` for a scaled orthogonal matrix, the `(γρ)^l` bound, and
that saved fixed points are fixed points of the saved parameters.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from experiments.configs import attractors as attractors_config
from experiments.configs import cliff as cliff_config
from experiments.configs import mechanics as mechanics_config

REPO = Path(__file__).resolve().parents[1]


def _run_binary(name, workdir, *extra):
  proc = subprocess.run(
    [sys.executable, "-m", f"experiments.{name}",
     f"--config=experiments/configs/{name}.py:test", f"--workdir={workdir}", *extra],
    cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
  )  # fmt: skip
  assert proc.returncode == 0, proc.stderr[-3000:]
  for ext in ("npz", "json", "png", "svg"):
    assert (workdir / f"{name}.{ext}").stat().st_size > 0, ext
  summary = json.loads((workdir / f"{name}.json").read_text())
  with np.load(workdir / f"{name}.npz") as f:
    arrays = {k: f[k] for k in f.files}
  return proc.stdout, summary, arrays


def _assert_config_saved(workdir, config):
  # Through `Workdir`, as every binary: the config, checked on a rerun, and the code.
  saved = json.loads((workdir / "config.json").read_text())
  expected = json.loads(json.dumps(config.to_dict()))  # tuples become lists, as saved
  assert saved == expected
  (entry,) = json.loads((workdir / "provenance.json").read_text())
  assert entry["devices"] >= 1 and "commit" in entry


def test_cliff_test_preset_end_to_end(tmp_path):
  config = cliff_config.get_config("test")
  stdout, s, a = _run_binary("cliff", tmp_path)
  _assert_config_saved(tmp_path, config)
  assert "largest step plain" in stdout and "random starts below the wall" in stdout

  n_starts, n_points = len(config.starts), config.updates + 1
  assert a["loss_BxW"].shape == a["grad_norm_BxW"].shape == (config.grid, config.grid)
  np.testing.assert_allclose(a["ws"], np.linspace(config.w_min, config.w_max, config.grid))
  # E = (σ(x_T) − target)² with σ in (0, 1): bounded by max(target, 1 − target)².
  assert np.all(np.isfinite(a["loss_BxW"])) and np.all(a["loss_BxW"] >= 0)
  assert a["loss_BxW"].max() <= max(config.target, 1 - config.target) ** 2
  for kind in ("plain", "clipped"):
    assert a[f"{kind}_theta"].shape == (n_starts, n_points, 2)
    np.testing.assert_allclose(a[f"{kind}_theta"][:, 0], np.asarray(config.starts), rtol=1e-6)
  # Each saved step is lr × the (clipped) gradient: plain steps are lr‖g‖, clipped ones
  # lr·min(‖g‖, threshold) — Algorithm 1 — so no clipped step exceeds lr·threshold.
  step = lambda th: np.linalg.norm(np.diff(th, axis=1), axis=-1)
  lr, c = config.learning_rate, config.clip_threshold
  np.testing.assert_allclose(
    step(a["plain_theta"]), lr * a["plain_grad_norm"][:, :-1], rtol=1e-4, atol=1e-6
  )
  np.testing.assert_allclose(
    step(a["clipped_theta"]),
    lr * np.minimum(a["clipped_grad_norm"][:, :-1], c),
    rtol=1e-4,
    atol=1e-6,
  )
  assert max(s["largest_clipped_step"]) <= lr * c * (1 + 1e-5)
  # The preset's first start walks into the wall: plain descent is thrown off (a step over
  # twice the threshold) and ends higher than clipped descent, which stays by the wall.
  assert s["largest_plain_step"][0] > 2 * lr * c and s["thrown_off_plain"] >= 1
  assert s["final_loss_clipped"][0] < s["final_loss_plain"][0]
  curv = s["curvature"]
  assert curv["n_spikes"] + curv["n_other"] == n_starts * n_points
  assert 0.0 <= curv["alignment_other"] <= 1.0 and -1.0 <= curv["spearman"] <= 1.0
  assert np.all((a["plain_alignment"] >= 0) & (a["plain_alignment"] <= 1 + 1e-5))
  r = s["random_starts"]
  assert 0 < r["n"] <= config.num_random_starts
  assert 0.0 <= r["solved_plain"] <= 1.0 and 0.0 <= r["solved_clipped"] <= 1.0


def test_mechanics_test_preset_end_to_end(tmp_path):
  config = mechanics_config.get_config("test")
  stdout, s, a = _run_binary("mechanics", tmp_path)
  _assert_config_saved(tmp_path, config)
  assert "max per-step rate" in stdout

  lags = np.arange(config.length + 1)
  gammas = {"linear": 1.0, "tanh": 1.0, "sigmoid": 0.25}
  for kind, gamma in gammas.items():
    assert s[kind]["gamma"] == gamma and s[kind]["threshold_rho"] == 1 / gamma
    for rho in config.curve_rhos[kind]:
      curve = a[f"{kind}/rho={rho:g}"]
      assert curve.shape == lags.shape and curve[0] == 1.0
      if kind == "linear" and config.matrix == "orthogonal":
        # ∂x_T/∂x_{T−l} = W^l with W = ρQ, Q orthogonal: its 2-norm is exactly ρ^l.
        np.testing.assert_allclose(curve, float(rho) ** lags, rtol=1e-4)
      else:
        # ‖Π W diag(σ')‖ ≤ (γ‖W‖)^l, and ‖W‖ = ρ for the scaled orthogonal matrix.
        assert np.all(curve <= (gamma * rho) ** lags * (1 + 1e-4))
    rhos, rates = a[f"{kind}/rate_rhos"], a[f"{kind}/rates"]
    np.testing.assert_allclose(rhos, np.linspace(0.25, 3 / gamma, config.rate_num_rhos))
    # Below ρ = 1/γ the gradient must vanish (the paper's sufficient condition).
    below = rhos < 1 / gamma
    assert below.any() and np.all(rates[below] < 1)
    assert s[kind]["max_rate_below_threshold"] < 1
  # Linear and orthogonal: the per-step rate is ρ itself, on both sides of 1.
  np.testing.assert_allclose(a["linear/rates"], a["linear/rate_rhos"], rtol=1e-4)
  assert s["linear"]["max_rate_above_threshold"] > 1


def _tanh_map(params, x):
  return np.tanh(x) @ params["w_hh"] + params["b"]


def test_attractors_test_preset_end_to_end(tmp_path):
  config = attractors_config.get_config("test")
  workdir = tmp_path / "trained"
  stdout, s, a = _run_binary("attractors", workdir)
  _assert_config_saved(workdir, config)
  assert "map u0:" in stdout and "map u_mean:" in stdout

  # Training history: every update, curvature measured every `curvature_every`.
  np.testing.assert_array_equal(a["history/step"], np.arange(config.updates))
  np.testing.assert_array_equal(
    a["history/curv_step"], np.arange(0, config.updates, config.curvature_every)
  )
  assert np.all(np.isfinite(a["history/loss_all"])) and np.all(a["history/grad_norm_all"] > 0)
  assert np.all(np.isfinite(a["history/omega"])) and np.all(a["history/omega"] >= 0)
  assert s["init"] == config.init == "basic_tanh" and 0.0 <= s["eval_error"] <= 1.0

  params = {k[len("params/") :]: a[k].astype(np.float64) for k in a if k.startswith("params/")}
  assert params["w_hh"].shape == (config.n_hidden, config.n_hidden)
  rho = np.abs(np.linalg.eigvals(params["w_hh"])).max()
  np.testing.assert_allclose(s["spectral_radius"], rho, rtol=1e-5)

  # The saved fixed points of the input-free map are fixed points of the saved parameters,
  # and their stability is that of the Jacobian `W_hhᵀ diag(1 − tanh²(x))`, recomputed here.
  fixed, stable = a["fixed_u0"], a["stable_u0"]
  fp = s["fixed_points_u0"]
  assert fixed.shape == (fp["n_fixed"], config.n_hidden) and fp["n_fixed"] >= 1
  assert int(stable.sum()) == fp["n_attractors"]
  for x, st, radius in zip(fixed, stable, fp["radius"]):
    np.testing.assert_allclose(_tanh_map(params, x), x, atol=1e-4)
    jac = params["w_hh"].T * (1 - np.tanh(x) ** 2)[None, :]
    r = np.abs(np.linalg.eigvals(jac)).max()
    np.testing.assert_allclose(radius, r, rtol=1e-4)
    assert bool(st) == (r < 1)
  fm = s["fixed_points_u_mean"]
  assert a["fixed_u_mean"].shape == (fm["n_fixed"], config.n_hidden)
  np.testing.assert_array_equal(a["stable_u_mean"], np.abs(a["eig_u_mean"]).max(axis=1) < 1)
  for f in (fp, fm):
    assert f["max_residual"] < 1e-4
    for key in ("first_symbol_purity", "class_purity_from_last_state", "first_symbol_settled"):
      assert 0.0 <= f[key] <= 1.0, key
    # Majority vote can never do worse than always naming the most common symbol.
    assert f["first_symbol_purity"] >= f["chance_first_symbol"] - 1e-9
  assert set(np.unique(a["first_symbol"])) <= {0, 1}
  assert len(a["first_symbol"]) == config.eval_batch
  assert a["lag_end"].shape == a["lag_start"].shape == (config.length,)
  assert np.all(a["lag_end"] > 0)

  # The saved model, given back through --config.params_file, is analysed without
  # training and, on the same evaluation batch, scores exactly the same.
  model = tmp_path / "model.npz"
  np.savez(model, init=np.asarray(config.init), **{k: a[f"params/{k}"] for k in params})
  loaded = tmp_path / "loaded"
  _, s2, a2 = _run_binary("attractors", loaded, f"--config.params_file={model}")
  assert s2["params_file"] == str(model) and "curvature" not in s2
  assert not any(k.startswith("history/") for k in a2)
  np.testing.assert_allclose(s2["eval_loss"], s["eval_loss"], rtol=1e-6)
  assert s2["eval_error"] == s["eval_error"]
  assert np.all(np.isnan(a2["lag_start"]))  # no untrained model to compare with
  for k in params:
    np.testing.assert_array_equal(a2[f"params/{k}"], a[f"params/{k}"])


PUBLISHED_GROUP = REPO / "docs" / "results" / "generalization_long" / "groups" / "train"


def test_attractors_reads_one_run_of_a_stacked_group(tmp_path):
  # A workdir's params.npz holds the group's models stacked [runs, ...]; params_index
  # picks one, and its init comes from that workdir's config.json.
  from rnn_dynamics.analysis import saved_model
  from rnn_dynamics.errors import ConfigError

  with np.load(PUBLISHED_GROUP / "params.npz") as f:
    stacked = {k: f[k] for k in f.files}
  runs = stacked["w_hh"].shape[0]
  params, _, init = saved_model.load_params(str(PUBLISHED_GROUP / "params.npz"), runs - 1)
  np.testing.assert_array_equal(np.asarray(params.w_hh), stacked["w_hh"][runs - 1])
  assert init == json.loads((PUBLISHED_GROUP.parents[1] / "config.json").read_text())["init"]
  for bad in (runs, runs + 3):
    try:
      saved_model.load_params(str(PUBLISHED_GROUP / "params.npz"), bad)
    except ConfigError as e:
      assert f"holds {runs} models" in str(e)
    else:
      raise AssertionError(f"index {bad} of {runs} models was accepted")

  _, s, a = _run_binary(
    "attractors",
    tmp_path / "one",
    f"--config.params_file={PUBLISHED_GROUP / 'params.npz'}",
    "--config.params_index=1",
  )
  np.testing.assert_array_equal(a["params/w_hh"], stacked["w_hh"][1])
  assert s["init"] == init and "curvature" not in s
  proc = subprocess.run(
    [sys.executable, "-m", "experiments.attractors",
     "--config=experiments/configs/attractors.py:test",
     f"--workdir={tmp_path / 'bad'}", f"--config.params_file={PUBLISHED_GROUP / 'params.npz'}",
     f"--config.params_index={runs}"],
    cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
  )  # fmt: skip
  assert proc.returncode == 2 and f"holds {runs} models" in proc.stderr, proc.stderr[-2000:]
  assert not (tmp_path / "bad").exists()  # refused before anything is written
