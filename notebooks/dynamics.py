# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Why RNN gradients explode: the argument of §2, piece by piece
#
# Pascanu, Mikolov & Bengio (2013), *On the difficulty of training recurrent neural
# networks*, §2. Each step below uses `rnn_dynamics.analysis` on the model's own step
# function. Set `RNN_DYNAMICS_SMOKE=1` to run everything in seconds (CI).

# %%
import functools
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from rnn_dynamics import rnn
from rnn_dynamics.analysis import (
  attractors,
  bifurcation,
  curvature,
  mechanics,
  surface,
)
from rnn_dynamics.report import dynamics

# rnn_dynamics.report.style selects Agg for the binaries; bring inline figures back in Jupyter.
# %matplotlib inline

SMOKE = os.environ.get("RNN_DYNAMICS_SMOKE") == "1"
H, T, N_TRAJ = (12, 20, 2) if SMOKE else (50, 60, 8)

# %% [markdown]
# ## 1. The mechanics (§2.1)
#
# `∂x_t/∂x_k` is a product of `t − k` Jacobians `W_recᵀ diag(σ'(x_{i−1}))` (eq. 5). For a
# linear network and a normal `W_rec = ρQ`, its norm is exactly `ρ^{t−k}`.

# %%
def lag_curve(kind, rho, key=jax.random.key(0)):
  k_w, k_x, k_u = jax.random.split(key, 3)
  params = rnn.Params(w_in=jnp.eye(H), w_hh=mechanics.scaled_orthogonal(k_w, H, rho),
                      b=jnp.zeros((H,)), w_out=jnp.zeros((H, 1)), b_out=jnp.zeros((1,)))
  step = (mechanics.linear_step(params) if kind == "linear"
          else functools.partial(rnn.step, params, {"tanh": rnn.TANH, "sigmoid": rnn.SIGMOID}[kind]))
  x0s = jax.random.normal(k_x, (N_TRAJ, H))
  us = jax.random.normal(k_u, (N_TRAJ, T, H))
  norms = jax.vmap(lambda x0, u: mechanics.jacobian_norms_by_lag(step, x0, u))(x0s, us)
  return np.exp(np.log(np.asarray(norms)).mean(0))


lin = lag_curve("linear", 1.1)
print("linear, ρ = 1.1: max |‖∂x_t/∂x_k‖ / ρ^(t−k) − 1| =",
      np.max(np.abs(lin / 1.1 ** np.arange(T + 1) - 1)))

# %% [markdown]
# With `|σ'| ≤ γ` the bound becomes `(γρ)^{t−k}`: `ρ < 1/γ` is sufficient for the
# gradient to vanish and `ρ > 1/γ` necessary for it to explode (γ = 1 for tanh, ¼ for
# the sigmoid). The fitted per-step growth rate crosses 1 only beyond `1/γ`.

# %%
curves = {kind: {rho: lag_curve(kind, rho) for rho in rhos} for kind, rhos in
          {"linear": (0.9, 1.0, 1.1), "tanh": (0.8, 1.5, 3.0), "sigmoid": (2.0, 4.0, 8.0)}.items()}
rates = {}
for kind in curves:
  rhos = np.linspace(0.25, 3 / mechanics.GAMMA[kind], 4 if SMOKE else 10)
  rates[kind] = (rhos, np.array([mechanics.decay_rate(lag_curve(kind, r)) for r in rhos]))
dynamics.mechanics_figure(curves, rates, mechanics.GAMMA);

# %% [markdown]
# ## 2. The dynamical-systems view (§2.2, Figure 3)
#
# One unit, `x_t = 5 σ(x_{t−1}) + b`. Its fixed points are *solved* (float64 bisection on
# brackets where `wσ(x) + b − x` is monotone). Between the two saddle-node bifurcations
# `b2 < b < b1` there are two attractors separated by a repelling fixed point: the basin
# boundary.

# %%
bif = bifurcation.bifurcation_points(5.0)
print({k: round(v, 6) for k, v in bif.items()})
bs = np.linspace(-4, -1, 301 if SMOKE else 3001)
br = bifurcation.branches(5.0, bs)
dynamics.bifurcation_figure(bs, br["lower"], br["upper"], br["boundary"], bif["b1"], bif["b2"],
                          bif["x1"], bif["x2"]);

# %% [markdown]
# Crossing the basin boundary is a *local* event that makes `x_∞` jump: starting just
# below or just above it ends in different attractors, however close the starts are.

# %%
boundary = float(bifurcation.basin_boundary(5.0, -2.45)[0])
print("boundary", boundary, "→",
      np.asarray(bifurcation.iterate(5.0, -2.45, rnn.SIGMOID,
                                     np.array([boundary - 1e-4, boundary + 1e-4]), 300)))

# %% [markdown]
# ## 3. The geometry (§2.3, Figure 6)
#
# `E_50 = (σ(x_50) − 0.7)²` with `x_0 = 0.5` over `(w, b)` has a wall where the basin
# boundary passes through `x_0`. Plain gradient descent that reaches it takes a huge step
# and lands on the far plateau; norm clipping (threshold 1) keeps it by the wall.

# %%
n = 41 if SMOKE else 161
ws, bs = np.linspace(2, 8, n), np.linspace(-5.5, 1, n)
loss, gnorm = surface.loss_surface(ws, bs)
starts = np.array([[4.9, -4.0], [5.2, -4.6], [4.3, -4.4], [5.6, -4.8]])
steps = 60 if SMOKE else 150
plain = surface.descend(starts, 1.0, steps)
clipped = surface.descend(starts, 1.0, steps, clip_threshold=1.0)
print("largest step: plain", float(jnp.linalg.norm(plain.step_NxSx2, axis=-1).max()),
      "clipped", float(jnp.linalg.norm(clipped.step_NxSx2, axis=-1).max()))

# %% [markdown]
# The hypothesis: where the gradient explodes, so does the curvature, along the same
# direction. Lanczos on Hessian-vector products gives the leading eigenpair at every
# point of the plain paths.

# %%
thetas = plain.theta_NxSx2.reshape(-1, 2)
keys = jax.random.split(jax.random.key(0), thetas.shape[0])
diag = jax.vmap(lambda t, k: curvature.curvature_diagnostics(surface.cliff_loss, t, k, 2))(thetas, keys)
print(curvature.spike_statistics(diag.grad_norm, diag.top_eigenvalue, diag.alignment))
dynamics.cliff_figure(ws, bs, loss, surface.wall_bias(ws), np.asarray(plain.theta_NxSx2),
                    np.asarray(clipped.theta_NxSx2), grad_norm_P=diag.grad_norm,
                    top_eig_P=diag.top_eigenvalue, alignment_P=diag.alignment, threshold=1.0);

# %% [markdown]
# ## 4. Attractors of a network (§4.1.1)
#
# The fixed-point finder minimises `½‖F(x) − x‖²` from many starts at once and reads
# stability off the Jacobian's eigenvalues. On two uncoupled bistable units it finds all
# 3 × 3 fixed points, 4 of them attractors. For trained models run
# `python -m experiments.attractors --workdir=...` (optionally with
# `--config.params_file=` a saved model), which also tracks ρ, Ω and curvature over
# training and asks whether the first symbol of temporal order is held by an attractor.

# %%
params = rnn.Params(w_in=jnp.zeros((1, 2)), w_hh=5.0 * jnp.eye(2), b=jnp.full((2,), -2.45),
                    w_out=jnp.zeros((2, 1)), b_out=jnp.zeros((1,)))
grid = jnp.stack(jnp.meshgrid(jnp.linspace(-5, 5, 9), jnp.linspace(-5, 5, 9)), -1).reshape(-1, 2)
fps = attractors.fixed_points_of(attractors.map_for(params, rnn.SIGMOID), grid,
                                 num_steps=200 if SMOKE else 600)
print(len(fps.x_KxH), "fixed points,", int(fps.stable_K.sum()), "attractors")
plt.close("all")
