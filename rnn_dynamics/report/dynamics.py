"""Figures of the analysis of §2 (`experiments/bifurcation.py`, `cliff.py`, `mechanics.py`,
`attractors.py`, `lyapunov.py`).

Each takes the plain arrays an experiment computed and saved (so notebooks can redraw
from a workdir; the numbers are `rnn_dynamics.analysis`'s) and returns a
`matplotlib.figure.Figure`, which the binaries write with `style.save_figure`:

* `bifurcation_figure`: Figure 3, fixed points of one unit against its bias;
* `cliff_figure`: Figure 6, the cliff with plain and clipped descent, and curvature;
* `mechanics_figure`: `‖∂x_t/∂x_k‖` by lag against the `(γρ)^{t−k}` bound (§2.1);
* `attractors_figure`: a trained network's training, gradient by lag, curvature, and its
  states and fixed points;
* `lyapunov_figure`: saved models' top-k Lyapunov exponents per length, and the local
  rate of the top direction on distractors and at marks;
* `lag_decay_figure`: `log ‖∂E/∂h_k‖` against the lag, with the `λ_1 · lag` prediction.

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, Figures 3 and 6, §2.1, §2.3, §4.1.1.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np

from rnn_dynamics.report import style

__all__ = [
  "attractors_figure",
  "bifurcation_figure",
  "cliff_figure",
  "lag_decay_figure",
  "lyapunov_figure",
  "mechanics_figure",
]


# --- Figure 3 --------------------------------------------------------------------------


def bifurcation_figure(
  bs_N, lower_N, upper_N, boundary_N, b1: float, b2: float, x1: float, x2: float,
  field_bs=None, field_xs=None, field_dx=None, sim_bs=None, sim_xs=None, w: float = 5.0,
):
  """Figure 3: attractors (solid), basin boundary (dashed), bifurcations (filled dots).

  `field_*` is the vector field `F(x) − x` on a coarse (b, x) grid (gray arrows);
  `sim_*` are states reached by simulation from many starts, a check on the solved
  branches.
  """
  fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
  if field_bs is not None:
    bb, xx = np.meshgrid(field_bs, field_xs)
    d = np.sign(field_dx) * np.minimum(np.abs(field_dx), 1.0)
    ax.quiver(bb, xx, np.zeros_like(d), d, color="0.7", width=0.003, scale=25, zorder=0)
  if sim_bs is not None:
    ax.plot(sim_bs, sim_xs, ".", color="tab:orange", ms=1.5, alpha=0.5,
            label="simulated $x_{200}$", zorder=1)
  ax.plot(bs_N, lower_N, "k-", lw=2.5, label="attractor (stable)")
  ax.plot(bs_N, upper_N, "k-", lw=2.5)
  ax.plot(bs_N, boundary_N, "k--", lw=1.5, label="basin boundary (unstable)")
  ax.plot([b1, b2], [x1, x2], "o", color="tab:red", ms=8, label="bifurcations $b_1, b_2$",
          zorder=3)
  ax.axvspan(b2, b1, color="tab:blue", alpha=0.08, lw=0)
  for b, x, name in ((b1, x1, "$b_1$"), (b2, x2, "$b_2$")):
    ax.annotate(f"{name} = {b:.4f}", (b, x), textcoords="offset points",
                xytext=(8, -14 if name == "$b_1$" else 6), fontsize=style.FONT_TITLE)
  ax.set_xlabel("bias $b$")
  ax.set_ylabel(r"$x_\infty$")
  ax.set_title(rf"$x_t = {w:g}\,\sigma(x_{{t-1}}) + b$: fixed points (solved)")
  ax.legend(loc="upper left", fontsize=style.FONT_MEDIUM)
  ax.set_xlim(np.min(bs_N), np.max(bs_N))
  return fig


# --- Figure 6 --------------------------------------------------------------------------


def cliff_figure(
  ws_W, bs_B, loss_BxW, wall_W, plain_NxSx2, clipped_NxSx2,
  grad_norm_P=None, top_eig_P=None, alignment_P=None, threshold=None,
):
  """Figure 6: the cliff, plain (solid) and clipped (dashed) gradient descent.

  With curvature data (`*_P`, one entry per point of the plain paths) a second panel
  plots `|λ₁|` against `‖∇E‖`, coloured by the alignment of the gradient with the
  leading eigenvector: the hypothesis of §2.3 is a rising, yellow diagonal.
  """
  extra = grad_norm_P is not None
  fig, axes = plt.subplots(1, 2 if extra else 1, figsize=(11.5, 4.6) if extra else (6.4, 5),
                           layout="constrained", squeeze=False)
  ax = axes[0, 0]
  cs = ax.contourf(ws_W, bs_B, loss_BxW, levels=24, cmap="viridis")
  fig.colorbar(cs, ax=ax, label=r"$E_{50}$")
  colors = plt.cm.autumn(np.linspace(0, 0.8, len(plain_NxSx2)))
  for i, (p, c) in enumerate(zip(plain_NxSx2, clipped_NxSx2)):
    ax.plot(p[:, 0], p[:, 1], "-", color=colors[i], lw=1.6, label="plain GD" if i == 0 else None)
    ax.plot(c[:, 0], c[:, 1], "--", color="w", lw=1.2,
            label=f"clipped GD (threshold {threshold:g})" if i == 0 and threshold else None)
    ax.plot(*p[0], "o", color=colors[i], mec="k", ms=6)
  ax.plot(ws_W, wall_W, ":", color="c", lw=1.2, label="wall: basin boundary through $x_0$")
  ax.set_xlim(ws_W[0], ws_W[-1])
  ax.set_ylim(bs_B[0], bs_B[-1])
  ax.set_xlabel("$w$")
  ax.set_ylabel("$b$")
  ax.set_title(r"$E_{50} = (\sigma(x_{50}) - 0.7)^2$, $x_0 = 0.5$")
  ax.legend(loc="lower left", fontsize=style.FONT_SMALL, facecolor="0.3", labelcolor="w")
  if extra:
    ax = axes[0, 1]
    g, lam, a = (np.ravel(v) for v in (grad_norm_P, top_eig_P, alignment_P))
    ok = np.isfinite(g) & np.isfinite(lam) & np.isfinite(a) & (g > 0) & (lam != 0)
    sc = ax.scatter(g[ok], np.abs(lam[ok]), c=a[ok], s=6, cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(sc, ax=ax, label=r"$|\cos\angle(\nabla E, v_1)|$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\|\nabla E\|$")
    ax.set_ylabel(r"$|\lambda_1|$ (Lanczos on Hessian-vector products)")
    ax.set_title("along plain GD: gradient and curvature explode together")
  return fig


# --- §2.1 ------------------------------------------------------------------------------


def mechanics_figure(curves: Mapping[str, Mapping[float, np.ndarray]],
                   rates: Mapping[str, tuple[np.ndarray, np.ndarray]],
                   gamma: Mapping[str, float]):
  """`‖∂x_t/∂x_k‖` by lag per unit type and radius, with the `(γρ)^{t−k}` bound dashed,
  and the fitted per-step rate against `ρ` with the threshold `ρ = 1/γ`.

  Args:
    curves: `{unit: {rho: norms_L (geometric mean over trajectories)}}`.
    rates: `{unit: (rhos, per-step rates)}`.
    gamma: `{unit: sup|σ'|}`.
  """
  names = list(curves)
  fig, axes = plt.subplots(1, len(names) + 1, figsize=(4.2 * (len(names) + 1), 3.8),
                           layout="constrained")
  for ax, name in zip(axes, names):
    rhos = sorted(curves[name])
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(rhos)))
    for rho, c in zip(rhos, colors):
      norms = np.asarray(curves[name][rho])
      lags = np.arange(len(norms))
      ax.semilogy(lags, norms, "-", color=c, lw=1.5, label=rf"$\rho$ = {rho:g}")
      ax.semilogy(lags, (gamma[name] * rho) ** lags.astype(float), "--", color=c, lw=0.8)
    ax.set_xlabel("lag $t - k$")
    ax.set_title(rf"{name} ($\gamma$ = {gamma[name]:g}); dashed: $(\gamma\rho)^{{t-k}}$")
    ax.set_ylim(1e-12, 1e6)
    ax.legend(fontsize=style.FONT_SMALL, loc="lower left")
  axes[0].set_ylabel(r"$\|\partial x_t / \partial x_k\|_2$")
  ax = axes[-1]
  for name, fmt in zip(names, ("-o", "-s", "-^", "-v")):
    rhos, r = rates[name]
    line, = ax.semilogy(rhos, r, fmt, ms=4, label=name)
    ax.axvline(1.0 / gamma[name], color=line.get_color(), ls=":", lw=1)
  ax.axhline(1.0, color="k", lw=0.8)
  ax.set_xlabel(r"spectral radius $\rho$ of $W_{rec}$")
  ax.set_ylabel("per-step growth (fit)")
  ax.set_title(r"vanishing for $\rho < 1/\gamma$ (dotted)")
  ax.legend(fontsize=style.FONT_MEDIUM)
  return fig


# --- trained networks --------------------------------------------------------------------


def attractors_figure(history: Mapping[str, np.ndarray], lag_start_L, lag_end_L, proj_states_NxTx2,
                 labels_N, proj_fixed_Kx2, stable_K, spikes=None):
  """Trained network: loss, ρ and Ω over training; gradient by lag at start and end;
  gradient norm vs curvature; the states and fixed points in the top-2 PCA plane.
  """
  fig, axes = plt.subplots(1, 4, figsize=(19, 4.2), layout="constrained")
  if not history:  # a loaded model: no training history to draw
    history = {k: np.full(1, np.nan) for k in ("step", "curv_step", "loss", "spectral_radius",
                                               "omega_mean", "grad_norm", "top_eigenvalue",
                                               "alignment")}
    for ax in (axes[0], axes[2]):
      ax.text(0.5, 0.5, "no training history\n(model loaded from file)", ha="center",
              transform=ax.transAxes)
  step = history["step"]
  ax = axes[0]
  ax.plot(step, history["loss"], color="k", label="loss")
  ax.plot(step, history["spectral_radius"], color="tab:blue", label=r"$\rho(W_{rec})$")
  ax.plot(step, history["omega_mean"], color="tab:green", label=r"$\Omega$ (mean per step)")
  ax.set_xlabel("update")
  ax.legend(fontsize=style.FONT_MEDIUM)
  ax.set_title("training")
  ax = axes[1]
  ax.semilogy(lag_start_L, label="start of training")
  ax.semilogy(lag_end_L, label="end of training")
  ax.set_xlabel("lag from the last step")
  ax.set_ylabel(r"$\|\partial E/\partial x_k\|$")
  ax.legend(fontsize=style.FONT_MEDIUM)
  ax.set_title("gradient reaching step $T - $lag")
  ax = axes[2]
  ax.semilogy(history["curv_step"], history["grad_norm"], label=r"$\|\nabla E\|$")
  ax.semilogy(history["curv_step"], np.abs(history["top_eigenvalue"]), label=r"$|\lambda_1|$")
  ax2 = ax.twinx()
  ax2.plot(history["curv_step"], history["alignment"], color="tab:gray", lw=0.8, alpha=0.7)
  ax2.set_ylabel(r"$|\cos\angle(\nabla E, v_1)|$ (gray)")
  ax2.set_ylim(0, 1)
  if spikes is not None and np.any(spikes):
    ax.semilogy(history["curv_step"][spikes], history["grad_norm"][spikes], "rv", ms=5,
                label="gradient spikes")
  ax.set_xlabel("update")
  ax.legend(fontsize=style.FONT_MEDIUM, loc="upper left")
  ax.set_title("gradient and curvature")
  ax = axes[3]
  for lab, color in zip(np.unique(labels_N), ("tab:blue", "tab:red", "tab:green", "tab:purple")):
    for traj in proj_states_NxTx2[labels_N == lab][:15]:
      ax.plot(traj[:, 0], traj[:, 1], "-", color=color, lw=0.5, alpha=0.5)
    ax.plot([], [], "-", color=color, label=f"first symbol {'AB'[int(lab)] if lab < 2 else lab}")
  if len(proj_fixed_Kx2):
    st = np.asarray(stable_K, bool)
    ax.plot(proj_fixed_Kx2[st, 0], proj_fixed_Kx2[st, 1], "ko", ms=7, label="attractor")
    ax.plot(proj_fixed_Kx2[~st, 0], proj_fixed_Kx2[~st, 1], "o", mfc="w", mec="k", ms=7,
            label="unstable fixed point")
  ax.set_xlabel("PC 1")
  ax.set_ylabel("PC 2")
  ax.legend(fontsize=style.FONT_SMALL)
  ax.set_title("states and fixed points of $F$")
  return fig


# --- Lyapunov exponents of trained networks ----------------------------------------------


def _lengths_models(rows):
  lengths = sorted({int(r["length"]) for r in rows})
  models = sorted({int(r["model"]) for r in rows})
  return lengths, models


def lyapunov_figure(rows):
  """Saved models' exponents: per length, `λ_i` against i (mean ± sd over sequences, one
  line per model); then the local rate of the top direction on distractor steps and at
  marks, per model and length.

  Args:
    rows: `exponents.csv`'s rows (`model`, `length`, `lambda_<i>`, `lambda_<i>_std`,
      `distractors_rate_1[_std]`, `marks_rate_1[_std]`).
  """
  lengths, models = _lengths_models(rows)
  fig, axes = plt.subplots(1, len(lengths) + 1, figsize=(4.4 * (len(lengths) + 1), 3.8),
                           layout="constrained")
  k = sum(1 for key in rows[0] if key.startswith("lambda_") and key[7:].isdigit())
  idx = np.arange(1, k + 1)
  for ax, length in zip(axes, lengths):
    for j, model in enumerate(models):
      (r,) = [r for r in rows if r["model"] == model and r["length"] == length]
      mean = [r[f"lambda_{i}"] for i in idx]
      sd = [r[f"lambda_{i}_std"] for i in idx]
      ax.errorbar(idx + 0.06 * (j - len(models) / 2), mean, yerr=sd, fmt="-o", ms=3, lw=1,
                  capsize=2, color=style.run_color(j), label=f"model {model}")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("exponent index $i$")
    ax.set_title(f"T = {length}: top {k} exponents, ± sd")
  axes[0].set_ylabel(r"$\lambda_i$ (natural log per step)")
  axes[0].legend(fontsize=style.FONT_SMALL)
  ax = axes[-1]
  for j, length in enumerate(lengths):
    for phase, marker, shift in (("distractors", "o", -0.15), ("marks", "s", 0.15)):
      rs = [next(r for r in rows if r["model"] == m and r["length"] == length) for m in models]
      ax.errorbar(np.arange(len(models)) + shift + 0.05 * j,
                  [r[f"{phase}_rate_1"] for r in rs], yerr=[r[f"{phase}_rate_1_std"] for r in rs],
                  fmt=marker, ms=4, capsize=2, color=style.run_color(j),
                  label=f"{phase}, T = {length}")
  ax.axhline(0.0, color="k", lw=0.8)
  ax.set_xticks(np.arange(len(models)), [f"model {m}" for m in models])
  ax.set_ylabel("local rate of the top direction")
  ax.set_title("by phase: distractor steps vs at marks")
  ax.legend(fontsize=style.FONT_SMALL)
  return fig


def lag_decay_figure(rows, arrays):
  """`log ‖∂E/∂h_{T−1−l}‖ / ‖∂E/∂h_{T−1}‖` against the lag l, per length: the mean over
  sequences per model (solid, with its 10–90 % band across sequences) and the prediction
  `λ_1 · l` of the model's top exponent (dashed).

  Args:
    rows: `exponents.csv`'s rows.
    arrays: `lag_decay.npz`'s arrays (`model<i>_T<T>/log_ratio_mean_L` and
      `/log_ratio_quantiles_QxL`, quantiles 0.1, 0.5, 0.9).
  """
  lengths, models = _lengths_models(rows)
  fig, axes = plt.subplots(1, len(lengths), figsize=(5.2 * len(lengths), 3.9),
                           layout="constrained", squeeze=False)
  for ax, length in zip(axes[0], lengths):
    for j, model in enumerate(models):
      (r,) = [r for r in rows if r["model"] == model and r["length"] == length]
      prefix = f"model{model}_T{length}/"
      mean = np.asarray(arrays[prefix + "log_ratio_mean_L"])
      q = np.asarray(arrays[prefix + "log_ratio_quantiles_QxL"])
      lags = np.arange(len(mean))
      color = style.run_color(j)
      ax.fill_between(lags, q[0], q[-1], color=color, alpha=0.12, lw=0)
      ax.plot(lags, mean, "-", color=color, lw=1.4,
              label=rf"model {model}: slope {r['lag_slope']:.3f}, $\lambda_1$ {r['lambda_1']:.3f}")
      ax.plot(lags, r["lambda_1"] * lags, "--", color=color, lw=0.9)
    ax.set_xlabel("lag $l = T - 1 - k$")
    ax.set_title(rf"T = {length}: measured (solid) vs $\lambda_1 l$ (dashed)")
    ax.legend(fontsize=style.FONT_SMALL, loc="lower left")
  axes[0, 0].set_ylabel(r"$\ln \|\partial E/\partial h_k\| / \|\partial E/\partial h_{T-1}\|$")
  return fig
