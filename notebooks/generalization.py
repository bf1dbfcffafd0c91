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
# # One model for many lengths, and what holds its memory
#
# Pascanu, Mikolov & Bengio (2013), §4.1.1: *"we can train a single model to deal with any
# sequence of length 50 up to 200"*, and it makes no mistake on 10,000 sequences of up to
# 5000 steps (`basic_tanh`). This notebook only *reads* a workdir written by
#
#     python -m experiments.generalization --workdir=runs/generalization
#     python -m experiments.attractors --workdir=runs/generalization/attractors/seed0_T100 ...
#
# (any preset; set `RNN_DYNAMICS_GENERALIZATION` to read another one; with neither,
# it opens the results committed in `docs/results/generalization_long`). A run still
# training shows its runs as of the last checkpoint (`progress/train.json`).
#
# What is in the workdir: `config.json`; `results.json` (one row per seed: solved, updates
# to solve, mistakes in the final test, worst length); `groups/train/traces.npz` (per-chunk
# summaries, `[seeds, chunks]`, the fields of `rnn_dynamics.synthetic.sweep.TRACE_FIELDS`) and
# `params.npz`; `generalization.json` (one row per seed and evaluation length); and, where
# `experiments.attractors` was run on the trained models, `attractors/<seed>_T<length>/`.

# %%
import json

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from rnn_dynamics import stats
from rnn_dynamics.report import generalization as report
from rnn_dynamics.workdir import Workdir, locate

# rnn_dynamics.report.style selects Agg for the binaries; bring inline figures back in Jupyter.
# %matplotlib inline


# RNN_DYNAMICS_GENERALIZATION names the workdir; without it, the first of these that
# exists opens.
WORKDIR = locate("generalization", "runs/generalization", "docs/results/generalization_long")
# Read-only: a notebook never writes into a workdir (a run may be going on in it).
workdir = Workdir.open(WORKDIR, of="experiments.generalization")
config = workdir.config
spec = workdir.spec("train")  # what the training group runs (its group.json)
print(
  f"{WORKDIR}: {spec.task}, {config['n_hidden']} hidden {config['init']}, "
  f"{config['algorithm']}, lengths [{spec.min_length}, {spec.max_length}), "
  f"{config['seeds']} seeds, ≤{spec.max_updates:,} updates"
)

# %% [markdown]
# ## 1. Training: did every seed pass the test?
#
# The success test is the paper's (`success_error` on `eval_size` fresh sequences of
# training lengths); with `zero_mistake_stop` a run is solved only at zero mistakes, the
# original code's rule. The worst length is the nominal length with the highest error in
# that test: an average over uniformly drawn lengths can hide one the model cannot do.

# %%
train_rows = workdir.table(default=[])
running = workdir.in_progress().get("train", [])
if train_rows:
  solved = sum(r["solved"] for r in train_rows)
  print(f"solved {stats.format_rate(solved, len(train_rows))}")
  lines = ["| seed | solved | updates to solve | final mistakes | worst length (error) |",
           "|---|---|---|---|---|"]
  for r in train_rows:
    worst = ("—" if r.get("worst_length") is None
             else f"{r['worst_length']} ({r['worst_length_error']:.2%})")
    updates = "—" if r["updates_to_solve"] is None else f"{r['updates_to_solve']:,}"
    lines.append(f"| {r['seed']} | {'yes' if r['solved'] else 'no'} | {updates} | "
                 f"{r['final_mistakes']} of {config['eval_size']:,} | {worst} |")
  display(Markdown("\n".join(lines)))
elif running:
  print("still training; as of the last checkpoint:")
  for r in running:
    print(f"  seed {r['seed']}: {r['updates_done']:,} updates, screen error "
          f"{r['screen_error']:.1%} (best {r['best_screen_error']:.1%})")
else:
  print("nothing trained yet")

# %% [markdown]
# ## 2. The training traces
#
# Per chunk of updates: the screen error (fresh sequences), the mean pre-clip gradient
# norm (with the clipping threshold), and the spectral radius of `W_hh` (for tanh units,
# a radius above 1 is necessary for gradients to explode, §2.1). The paper's reference
# log sits at chance for a long time before it learns.

# %%
if workdir.is_done("train"):
  traces = workdir.load_traces("train")
  fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
  for i, row in enumerate(train_rows):
    step = traces["step"][i]
    keep = np.isfinite(step)
    axes[0].plot(step[keep], traces["screen_error"][i][keep], label=f"seed {row['seed']}")
    axes[1].semilogy(step[keep], traces["grad_norm"][i][keep])
    axes[2].plot(step[keep], traces["spectral_radius"][i][keep])
  axes[0].axhline(float(config["success_error"]), color="k", lw=0.8, ls=":")
  axes[0].set(xlabel="updates", ylabel="screen error", title="error on fresh sequences")
  axes[0].legend(fontsize=8)
  axes[1].axhline(float(config["clip"]), color="k", lw=0.8, ls=":", label="threshold")
  axes[1].set(xlabel="updates", ylabel="‖g‖ (pre-clip, chunk mean)", title="gradient norm")
  axes[1].legend(fontsize=8)
  axes[2].axhline(1.0, color="k", lw=0.8, ls=":")
  axes[2].set(xlabel="updates", ylabel="ρ(W_hh)", title="spectral radius")
  fig.tight_layout()
  plt.show()

# %% [markdown]
# ## 3. Error against length, far beyond training
#
# Every trained model on the same fresh sequences at each evaluation length; the shaded
# band is the training range. The paper's claim is zero mistakes at every length up to
# 5000.

# %%
gen_rows = workdir.table("generalization", default=[])
if gen_rows:
  print(report.summary(train_rows, gen_rows))
  fig = report.seed_curves_figure(
    gen_rows,
    train_range=(spec.min_length, spec.max_length),
    success_error=float(config["success_error"]),
    chance_error=report.CHANCE_ERROR.get(spec.task),
    title=f"{spec.task}: one {config['n_hidden']}-unit {config['init']} model per seed",
  )
  plt.show()
else:
  print("no generalization table yet (it is written after training)")

# %% [markdown]
# ## 4. Attractors of the trained models (§4.1.1: *"the model might use attractors"*)
#
# `experiments.attractors` finds the fixed points of each trained map under the distractor
# input (its mean `u_mean`, and none, `u0`), their stability, and whether the first
# symbol is held: the purity of the attractor each sequence's state falls into, against
# the chance level of guessing the most frequent first symbol.

# %%
att_root = WORKDIR / "attractors"
folders = sorted(p for p in att_root.glob("*") if (p / "attractors.json").exists())
if folders:
  lines = ["| model | input | fixed points | attractors | first-symbol purity | chance |",
           "|---|---|---|---|---|---|"]
  for folder in folders:
    a = json.loads((folder / "attractors.json").read_text())
    for key in ("fixed_points_u_mean", "fixed_points_u0"):
      fp = a.get(key)
      if fp:
        lines.append(f"| {folder.name} | {key.removeprefix('fixed_points_')} | "
                     f"{fp['n_fixed']} | {fp['n_attractors']} | "
                     f"{fp['first_symbol_purity']:.2f} | {fp['chance_first_symbol']:.2f} |")
  display(Markdown("\n".join(lines)))
else:
  print(f"no attractor analyses in {att_root}")
