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
# # How much does the clipping threshold matter? (§3.2 and its footnote)
#
# Pascanu, Mikolov & Bengio (2013), §3.2: *"training is not very sensitive to this
# hyper-parameter and the algorithm behaves well even for rather small thresholds"*, with
# the heuristic of half to ten times the average gradient norm; the ICML footnote: *"when
# using just the regularization term, without clipping, learning usually fails due to
# exploding gradients"*. This notebook only *reads* a workdir written by
#
#     python -m experiments.threshold_grid --workdir=runs/threshold_grid
#
# (any preset; set `RNN_DYNAMICS_THRESHOLD_GRID` to read another one; with neither, it
# opens the results committed in `docs/results/threshold_grid_cpu`). A grid still training
# shows its runs as of the last checkpoint (`progress/grid.json`).
#
# What is in the workdir: `config.json`; `results.json` (one row per run: init, threshold
# `clip` (None: no clipping), α, seed, solved, updates to solve, diverged);
# `groups/grid/traces.npz` (per-chunk summaries, `[runs, chunks]`, the fields of
# `rnn_dynamics.synthetic.sweep.TRACE_FIELDS`); `table.json` (one row per cell) and `summary.txt`.

# %%
import math
from collections import defaultdict

import matplotlib.pyplot as plt
import numpy as np

from rnn_dynamics.synthetic import threshold_grid
from rnn_dynamics.report import threshold_grid as heatmaps
from rnn_dynamics.workdir import Workdir, locate

# rnn_dynamics.report.style selects Agg for the binaries; bring inline figures back in Jupyter.
# %matplotlib inline


# RNN_DYNAMICS_THRESHOLD_GRID names the workdir; without it, the first of these that
# exists opens.
WORKDIR = locate("threshold_grid", "runs/threshold_grid", "docs/results/threshold_grid_cpu")
# Read-only: a notebook never writes into a workdir (a grid may be training in it).
workdir = Workdir.open(WORKDIR, of="experiments.threshold_grid")
config = workdir.config
spec = workdir.spec("grid")  # what the grid's group runs (its group.json)
print(
  f"{WORKDIR}: temporal order T = {spec.min_length}, {config['n_hidden']} hidden, "
  f"lr {config['lr']:g}, {config['seeds']} seeds per cell, ≤{spec.max_updates:,} updates"
)
if not workdir.is_done("grid"):
  running = workdir.in_progress().get("grid", [])
  solved = sum(r["solved"] for r in running)
  print(f"still training: {solved}/{len(running)} runs solved as of the last checkpoint")

# %% [markdown]
# ## 1. Success rate and updates to solve, threshold × α
#
# The dashed line is the measured average pre-clip gradient norm (on the unclipped α = 0
# runs), the shaded band the paper's heuristic range around it (half to ten times it).
# Each cell's text is the count solved and its 95 % interval.

# %%
if workdir.is_done("grid"):
  rows, traces = workdir.load_rows("grid"), workdir.load_traces("grid")
  table = threshold_grid.cell_table(rows)
  norm, source = threshold_grid.average_grad_norm(rows, traces)
  for value in ("success", "updates"):
    heatmaps.heatmap_figure(
      table, value=value, avg_norm=norm, norm_source=source,
      max_updates=spec.max_updates,
    )
    plt.show()
  print(threshold_grid.summary(table, norm, source))  # its first line: the average norm

# %% [markdown]
# ## 2. Why small thresholds fail: how often clipping acts
#
# The share of updates clipped, averaged over training, against the threshold (one line
# per α). A threshold far below the typical norm clips nearly every update: the step then
# has a fixed length, the threshold times the learning rate, and the run is a slower
# normalised-gradient descent, which the budget can cut short.

# %%
if workdir.is_done("grid"):
  clip_rate = np.asarray(traces["clip_rate"], np.float64)
  by_alpha = defaultdict(lambda: defaultdict(list))
  for i, r in enumerate(rows):
    t = threshold_grid.threshold(r)
    if math.isfinite(t) and np.isfinite(clip_rate[i]).any():
      by_alpha[float(r["alpha"])][t].append(np.nanmean(clip_rate[i]))
  fig, ax = plt.subplots(figsize=(6, 3.6))
  for alpha in sorted(by_alpha):
    ts = sorted(by_alpha[alpha])
    ax.semilogx(ts, [np.mean(by_alpha[alpha][t]) for t in ts], marker="o", label=f"α = {alpha:g}")
  ax.axvline(norm, color="k", ls="--", lw=0.8, label="average norm")
  ax.set(xlabel="clipping threshold", ylabel="share of updates clipped",
         title="clipping rate over training (mean over seeds)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  plt.show()

# %% [markdown]
# ## 3. Ω without clipping: what the gradients did
#
# The runs with no threshold (∞) and α > 0: the largest pre-clip gradient norm each met
# (the chunk maximum), and whether it solved, diverged (non-finite), or ran out of budget.

# %%
if workdir.is_done("grid"):
  g_max = np.asarray(traces["grad_norm_max"], np.float64)
  print("α     seed  largest ‖g‖   outcome")
  for i, r in enumerate(rows):
    if math.isinf(threshold_grid.threshold(r)) and float(r["alpha"]) > 0:
      peak = np.nanmax(g_max[i]) if np.isfinite(g_max[i]).any() else float("nan")
      outcome = ("solved at {:,}".format(r["updates_to_solve"]) if r["solved"]
                 else "diverged" if r["diverged"] else "not solved")
      print(f"{float(r['alpha']):<5g} {r['seed']:<5} {peak:<12.3g} {outcome}")
