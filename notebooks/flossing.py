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
# # Gradient flossing beside Ω: who solves temporal order, and what the exponents did
#
# Beyond the paper (docs/reference.md §6, "Later methods: gradient flossing"; the page is
# docs/flossing.md). Figure 7's protocol with two regularizers on top of norm clipping:
# SGD-CR (Ω, the paper's) and SGD-CF (gradient flossing: `w · Σ λ_i²` of the top Lyapunov
# exponents on the updates of its phases). This notebook only *reads* a workdir written by
#
#     python -m experiments.success_rate \
#         --config=experiments/configs/success_rate.py:flossing_cpu --workdir=runs/flossing
#
# (any success_rate workdir with SGD-CF runs; set `RNN_DYNAMICS_FLOSSING` to read another
# one). With neither, it opens `docs/results/flossing_cpu`, the committed copy of that run
# once it is published. A sweep still in progress is fine: only the lengths already
# finished are shown.
#
# Every run's traces hold, after each chunk of updates, the top exponents λ₁, λ₂ measured
# on fresh sequences at its current weights (`lyapunov_k` of them), ρ(W_rec) and the chunk's
# mean Ω, for SGD-CR and SGD-CF alike: the figures and tables below are read from those
# (`rnn_dynamics.report.flossing`).

# %%
from IPython.display import Markdown, display

from rnn_dynamics.report import flossing as report
from rnn_dynamics.report import success_rate
from rnn_dynamics.workdir import Workdir, locate

# rnn_dynamics.report.style selects Agg for the binaries; bring inline figures back in Jupyter.
# %matplotlib inline

# RNN_DYNAMICS_FLOSSING names the workdir; without it, the first of these that exists opens.
WORKDIR = locate("flossing", "runs/flossing", "docs/results/flossing_cpu")
if not (WORKDIR / "config.json").is_file():
  raise FileNotFoundError(
    f"{WORKDIR}: no workdir here. Run the flossing_cpu preset (the command above) or set "
    "RNN_DYNAMICS_FLOSSING to a success_rate workdir with SGD-CF runs; docs/results/flossing_cpu "
    "is committed once that run is published."
  )
# Read-only: a notebook never writes into a workdir (a sweep may be running in it).
workdir = Workdir.open(WORKDIR, of="experiments.success_rate")
config = workdir.config

runs = report.load_runs(workdir)
if not any(r["algorithm"] == "sgd_cf" for r in runs):
  raise RuntimeError(
    f"{WORKDIR}: no finished SGD-CF run (yet); this notebook compares SGD-CF with SGD-CR "
    "(notebooks/success_rate.py reads any Figure 7 workdir)."
  )
rows = [{k: v for k, v in r.items() if k != "traces"} for r in runs]
inits = [i for i in config["inits"] if any(r["init"] == i for r in runs)]
lengths = sorted({int(r["length"]) for r in runs})
algorithms = [a for a in report.ALGORITHMS if any(r["algorithm"] == a for r in runs)]
phases = (config["floss_every"], config["floss_for"], config["floss_phases"])
print(
  f"{WORKDIR}: preset {config.get('preset')!r}, {len(runs)} finished runs, lengths {lengths}, "
  f"inits {inits}"
)
print(
  f"≤{config['max_updates']:,} updates/run, {config['seeds']} seeds, lr {config['lr']}, "
  f"clip {config['clip']}, α {config['alpha']} (SGD-CR); flossing weight "
  f"{config['floss_weight']} on the top {config['floss_k']} exponents, {config['floss_phases']} "
  f"phases of {config['floss_for']} updates every {config['floss_every']} (SGD-CF); "
  f"{config['lyapunov_k']} exponents traced per chunk of {config['chunk_size']} updates"
)
for group, progress in workdir.in_progress().items():
  done = min(r["updates_done"] for r in progress)
  print(f"{group} still training ({len(progress)} runs, at least {done:,} updates each): not shown")

# %% [markdown]
# ## 1. Seeds solved and updates to solve, SGD-CR beside SGD-CF
#
# Per initialisation and length: the seeds solved (error < 1 % on fresh sequences, the
# paper's test) with the 95 % Clopper–Pearson interval of the rate (`rnn_dynamics.stats`),
# the runs that diverged, and the median (range) of the updates the solved runs needed.
# "intervals separate" is the one test by which this project calls one rate higher than
# another; with a handful of seeds per point it rarely says yes, and a "no" is not a tie.
#
# What to look for: whether flossing solves where Ω does not (the `sigmoid` rows, where
# SGD-CR's Ω is the suspect) or costs success where Ω works (`smart_tanh`); where both
# solve, whether SGD-CF needs fewer or more updates.

# %%
display(Markdown(report.comparison_markdown(report.comparison_table(rows, inits=inits))))

# %% [markdown]
# The same rates against length, a panel per initialisation, with their intervals as
# error bars (Figure 7's figure, for the two regularizers).

# %%
fig = success_rate.success_rate_figure(
  rows, inits=inits, algorithms=algorithms,
  title=f"{WORKDIR.name}: ≤{config['max_updates']:,} updates, {config['seeds']} seeds",
)

# %% [markdown]
# ## 2. The exponents over training
#
# One figure per (initialisation, length), a column per algorithm; every run of that
# point is a line, blue if it solved, orange if it ran out of budget, black (with × at
# its last finite value) if it diverged. Top: λ₁ (solid) and λ₂ (dashed), natural log per
# step; middle: ρ(W_rec) with the dotted 1/γ (1 for tanh, 4 for the sigmoid: below it long-term
# gradient components must vanish); bottom: Ω, the chunk's mean. The shaded stretches in
# SGD-CF's column are its flossing updates (at chunk resolution: a chunk's point is
# measured at its end).
#
# What to look for: during the shaded phases SGD-CF's λ₁ should move towards 0 (what
# flossing minimises), and whether it stays there once flossing stops; whether SGD-CR's
# Ω pushes ρ and λ₁ up the same way; whether the runs that solve share a λ₁ close to 0
# before they solve while the failed ones stay far below it (vanishing gradients), or
# climb above it (exploding ones).

# %%
if not config["lyapunov_k"]:
  print("this workdir traced no exponents (lyapunov_k = 0): only ρ and Ω are drawn")
for init in inits:
  for length in lengths:
    if any(r["init"] == init and int(r["length"]) == length for r in runs):
      fig = report.exponents_figure(
        runs, init=init, length=length, k=min(2, max(config["lyapunov_k"], 1)), phases=phases
      )

# %% [markdown]
# ## 3. Did flossing avoid Ω's run-away under `sigmoid`?
#
# Under the `sigmoid` initialisation SGD-CR's Ω can run away: ρ(W_rec) climbs far past
# 1/γ while Ω goes to 1 and the loss stays at chance (the issue that asked for this
# comparison; docs/fig7.md has SGD-CR failing under `sigmoid` in Figure 7's runs). Each
# run's line below says where it ended: its outcome, its final error on fresh sequences
# (chance: 3 of 4 answers wrong), the final and the peak ρ(W_rec), the final Ω and the
# final λ₁, λ₂ ("final": the last finite chunk; for a diverged run the one before its
# weights blew up).
#
# What to look for: a run-away reads as a failed SGD-CR run with a large peak ρ, a final
# Ω near 1 and its error at chance. If flossing avoids it, the SGD-CF runs of the same
# seeds (paired: same initial weights and data) end with a smaller peak ρ, λ₁ nearer 0
# and an error below chance; if it does not, they show the same pattern or diverge.

# %%
display(Markdown(report.run_summary_markdown(report.run_summary(runs, inits=inits))))
