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
# # The pathological tasks: what Ω buys, and how far the models generalize
#
# Pascanu, Mikolov & Bengio (2013), §4.1.2 and the supplementary material. Each task was
# run by `experiments/pathological.py` into its own workdir, e.g.
#
#     python -m experiments.pathological --config.task=addition --workdir=runs/pathological/addition
#
# This notebook only reads those workdirs. By default it opens every
# `runs/pathological/*`, or, when there is none, the runs published under
# `docs/results/pathological_*` (the long ones at the paper's lengths, partial while they
# still train); set `RNN_DYNAMICS_PATHOLOGICAL` to a comma-separated list of workdirs (or
# glob patterns) to open others.

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from rnn_dynamics.report import pathological, style
from rnn_dynamics.workdir import locate_all

# RNN_DYNAMICS_PATHOLOGICAL names the workdirs; without it, your own runs under
# runs/pathological/ if there are any, else the published ones.
paths = locate_all("pathological", "runs/pathological/*", "docs/results/pathological_*")
workdirs = [pathological.load_workdir(p) for p in paths]
print(
  f"{len(workdirs)} workdir(s):",
  *[
    f"\n  {w['path']} ({w['config']['task']}, "
    f"{w['config']['preset']} preset, {len(w['rows'])} runs)"
    for w in workdirs
  ],
)
if not workdirs:
  print("Nothing to show yet: run experiments/pathological.py first (see above).")
# Groups still training: each run as of its last checkpoint (screen error on fresh
# sequences of training lengths; the success test comes when a screen passes).
for w in workdirs:
  for group, runs in w["in_progress"].items():
    spec = w["specs"][group]  # what the group runs (its group.json)
    print(f"\n{w['path']}: {group} still training ({spec.task}, lengths "
          f"[{spec.min_length}, {spec.max_length}), up to {spec.max_updates:,} updates per run)")
    if w["partial"] and group in w["partial"]["groups"]:
      note = w["partial"]
      print(f"  a partial state published {note['published']}; code: {note['code']}")
    for r in runs:
      state = f"solved at {r['updates_to_solve']:,}" if r["solved"] else (
        f"screen error {r['screen_error']:.1%} (best {r['best_screen_error']:.1%})"
        if r["screen_error"] is not None else "no screen yet")
      print(f"  {r['algorithm']} seed {r['seed']}: {r['updates_done']:,} updates, {state}")

# %% [markdown]
# ## 1. The tasks side by side
#
# Seeds solved (error < 1% on fresh sequences) by SGD-CR and by its two ablations —
# SGD-C (the same norm clipping without Ω) and element-wise clipping — next to what the
# paper reports (docs/reference.md §4). The `cpu` and `test` presets train on much shorter sequences
# with much smaller budgets than the paper, so only the `paper` preset is comparable
# number for number.

# %%
ALGS = pathological.ALGORITHMS
summary, algs = pathological.summary_table(workdirs, ALGS)
if summary:
  display(Markdown(pathological.markdown(summary, pathological.summary_columns(algs))))

# %% [markdown]
# ## 2. Per task: success rate, updates to solve, test error

# %%
for w in workdirs:
  display(
    Markdown(
      f"### {w['config']['task']}\n\n"
      + pathological.markdown(pathological.task_table(w["rows"], ALGS))
    )
  )

# %% [markdown]
# ## 3. Training: the screen error and the gradient, per run
#
# After every chunk of updates each run is screened on fresh sequences; the curves stop
# where a run is solved (or diverged). Beside them, the mean pre-clip gradient norm and Ω
# (measured for every run, applied only by SGD-CR): Ω keeps the error signal from
# vanishing, which shows as a larger gradient norm early on.

# %%
for w in workdirs:
  for name, group in w["groups"].items():
    chunk = w["specs"][name].chunk_size
    tr = group["traces"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    for i, row in enumerate(group["rows"]):
      steps = chunk * np.arange(1, tr["screen_error"].shape[1] + 1)
      color = style.color(row["algorithm"])
      label = style.label(row["algorithm"]) if row["seed"] == 0 else None
      for ax, field in zip(axes, ("screen_error", "grad_norm", "omega")):
        ax.plot(steps, tr[field][i], color=color, alpha=0.7, lw=1, label=label)
    for ax, title in zip(axes, ("screen error", "gradient norm (pre-clip, mean)", "Ω (mean)")):
      ax.set_title(f"{name}: {title}", fontsize=9)
      ax.set_xlabel("updates")
      ax.grid(alpha=0.3)
    axes[0].axhline(float(w["config"]["success_error"]), color="k", ls="--", lw=0.8)
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## 4. Generalization to longer sequences
#
# Every solved model (every model in the `test` preset) on fresh sequences at fixed
# lengths — the trained ones and longer (for memorization: other gap lengths). The
# paper: addition and temporal order under 1% error up to about 400 steps, and a
# temporal-order model with 0 errors up to 5000.

# %%
for w in workdirs:
  gen = w["generalization"]
  if not gen:
    print(f"{w['config']['task']}: no model evaluated yet")
    continue
  fig = pathological.generalization_figure(gen, ALGS, float(w["config"]["success_error"]))
  plt.show()
  reach = pathological.generalization_reach(gen, float(w["config"]["success_error"]))
  print(
    w["config"]["task"],
    "— longest length with error < 1% from the training lengths up:",
    {f"{k[3]} seed {k[4]} (T {k[1]})": v for k, v in sorted(reach.items(), key=str)},
  )
plt.close("all")
