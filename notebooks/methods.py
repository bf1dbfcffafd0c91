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
# # The fixes since 2013, on the paper's tasks, under one protocol
#
# Gated cells, the identity-initialised ReLU RNN, orthogonal recurrences, Adam with
# clipping and linear recurrent units beside the paper's own SGD-C and SGD-CR, on
# Figure 7's temporal-order task and the paper's addition task, each method with its
# published learning rate or the one its grid picked, many seeds, the same success test
# (docs/methods.md). This notebook only *reads* a workdir written by
#
#     python -m experiments.methods --workdir=runs/methods
#
# (any preset; set `RNN_DYNAMICS_METHODS` to read another one; without it the first of
# `runs/methods`, `runs/methods_long` and the committed `docs/results/methods_*` that exists
# opens). A run still in progress is fine: only the finished groups are shown, and the
# groups still training are listed.

# %%
from collections import defaultdict

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from rnn_dynamics import methods, stats
from rnn_dynamics.report import methods as report
from rnn_dynamics.workdir import Workdir, locate

# rnn_dynamics.report.style selects Agg for the binaries; bring inline figures back in Jupyter.
# %matplotlib inline

# RNN_DYNAMICS_METHODS names the workdir; without it, the first of these that exists opens.
WORKDIR = locate(
  "methods", "runs/methods", "runs/methods_long", "docs/results/methods_long", "docs/results/methods_cpu"
)
# Read-only: a notebook never writes into a workdir (a run may be going on in it).
workdir = Workdir.open(WORKDIR, of="experiments.methods")
config = workdir.config

rows, grid_rows = [], []
for name in workdir.groups():  # finished groups only
  # (`group`: a method, task and length may have its seeds in several groups)
  (grid_rows if name.startswith("grid_") else rows).extend(
    dict(r, group=name) for r in workdir.load_rows(name))
print(f"{WORKDIR}: preset {config['preset']!r}, {len(rows)} finished runs of the comparison, "
      f"{len(grid_rows)} of the grid")
size = ("hidden units in every cell" if config.get("match", "state") == "state"
        else "hidden units of the paper's RNN, every other cell sized to its parameters")
print(f"{config['n_hidden']} {size}, batch {config['batch_size']}, "
      f"{config['seeds']} seeds, ≤{config['max_updates']:,} updates per run; success: error < "
      f"{config['success_error']:.0%} on {config['eval_size']:,} fresh sequences")
for group, progress in workdir.in_progress().items():
  done = [r["updates_done"] for r in progress]
  print(f"  {group} still training: {sum(r['solved'] for r in progress)}/{len(progress)} "
        f"solved, {min(done):,}–{max(done):,} updates")

# %% [markdown]
# ## 1. The methods and their budget
#
# What each method is, where its learning rate comes from (published for that task, or
# the grid's pick), its parameters (cell and readout, at the same state size), and what
# one update costs: FLOPs as XLA counts one update of one run
# (`rnn_dynamics/synthetic/flops.py`). A run's budget is `max_updates` updates of
# `batch_size` sequences each; the table in section 2 gives it in sequences and FLOPs.

# %%
saved = {(r["method"], r["task"], int(r["length"])): r for r in workdir.table("table", default=[])}
flops = {k: r["flops_per_update"] for k, r in saved.items()}
params = {(k[0], k[1]): r["params"] for k, r in saved.items()}
table = report.comparison_table(
  rows, methods=config["methods"], flops=flops, params=params, batch_size=config["batch_size"]
)
lines = ["| method | what | lr from |", "|---|---|---|"]
for name in config["methods"]:
  m = methods.METHODS.get(name)
  if m is None:
    continue
  source = "; ".join(f"{t}: {p.source}" for t, p in m.published.items() if t in config["tasks"])
  lines.append(f"| {name} | {m.summary} | {source or 'grid ' + ', '.join(map(str, m.lr_grid))} |")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## 2. Success rate against length
#
# Runs solved out of the seeds, with the 95 % Clopper–Pearson interval
# (`rnn_dynamics.stats`): with 10 seeds 10/10 is compatible with 69–100 % and 0/10 with
# 0–31 %, so only points whose bars do not overlap are told apart. Colour: the cell; line
# style: the algorithm.

# %%
if table:
  fig = report.success_rate_figure(table, title=f"{WORKDIR.name}")
  display(Markdown(report.markdown(table, report.COMPARISON_COLUMNS)))

# %% [markdown]
# ## 3. How fast: the share of runs solved within u updates
#
# A curve still rising at the budget (dotted) says more updates would solve more runs of
# that method; a flat one says the budget does not limit it.

# %%
if rows:
  fig = report.updates_to_solve_figure(rows)

# %% [markdown]
# ## 4. Which differences the intervals support
#
# Per task and length, every method against the paper's SGD-CR (`rnn_sgd_cr`): "higher" or
# "lower" only where the two 95 % intervals do not overlap (`stats.intervals_separate`, a
# conservative test), else "not told apart".

# %%
by_point = {(r["method"], r["task"], r["length"]): r for r in table}
reference = "rnn_sgd_cr"
lines = ["| task | T | method | solved | vs rnn_sgd_cr |", "|---|---|---|---|---|"]
for (method, task, length), r in by_point.items():
  ref = by_point.get((reference, task, length))
  verdict = "–"
  if ref is not None and method != reference:
    a = stats.success_interval(r["solved"], r["seeds"])
    b = stats.success_interval(ref["solved"], ref["seeds"])
    verdict = ("higher" if a.rate > b.rate else "lower") if stats.intervals_separate(a, b) else "not told apart"
  lines.append(f"| {task} | {length} | {method} | {r['success']} | {verdict} |")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## 5. The learning-rate grid
#
# Each method with no learning rate published for a task tried its grid at
# T = `grid_length` on its own seeds; the pick (✓): most runs solved, ties → fewest
# median updates to solve, then the lowest median final error, then the smaller rate
# (`methods.pick_lr`). Every length of that task then used the pick.

# %%
if grid_rows:
  by_pair = defaultdict(list)
  for r in grid_rows:
    by_pair[(r["method"], r["task"])].append(r)
  picks = {k: methods.pick_lr(v) for k, v in by_pair.items()}
  grid = report.grid_table(grid_rows, picks, methods.grid_summary, methods=config["methods"])
  display(Markdown(report.markdown(
    grid, ("method", "task", "length", "lr", "success", "median_updates", "median_error", "picked"))))
  tasks = list(dict.fromkeys(r["task"] for r in grid))
  fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.2), squeeze=False)
  for ax, task in zip(axes[0], tasks):
    for method in dict.fromkeys(r["method"] for r in grid if r["task"] == task):
      pts = [r for r in grid if r["task"] == task and r["method"] == method]
      ax.plot([r["lr"] for r in pts], [r["solved"] / r["runs"] for r in pts], marker="o",
              label=method)
      best = [r for r in pts if r["picked"]]
      ax.scatter([r["lr"] for r in best], [r["solved"] / r["runs"] for r in best], s=90,
                 facecolors="none", edgecolors="k")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_title(f"grid, {task.replace('_', ' ')}, T = {config['grid_length']}")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
  axes[0][0].set_ylabel("share of grid runs solved")
  axes[0][-1].legend(fontsize=7)
  fig.tight_layout()
else:
  print("no grid: every method here has a published learning rate for its tasks")

# %% [markdown]
# ## 6. Wall time
#
# Seconds each group took on the machine that ran it (resumed groups count every
# session), beside its runs' updates: throughput differs by cell, and runs that solve
# early leave their program (compaction), so wall time follows both the cost of an
# update and how soon the method solves.

# %%
if table:
  lines = ["| method | task | T | wall (s) | updates done (all runs) | FLOPs/update |",
           "|---|---|---|---|---|---|"]
  done = defaultdict(int)
  for r in rows:
    done[(r["method"], r["task"], int(r["length"]))] += int(r["updates_done"])
  for r in table:
    f = r["flops_per_update"]
    lines.append(f"| {r['method']} | {r['task']} | {r['length']} | {r['wall_s'] or 0:,.0f} | "
                 f"{done[(r['method'], r['task'], r['length'])]:,} | "
                 f"{'–' if f is None else f'{f:.3g}'} |")
  display(Markdown("\n".join(lines)))
print(f"total: {sum(np.nan_to_num(r['wall_s'] or 0) for r in table):,.0f} s over {len(table)} groups")
