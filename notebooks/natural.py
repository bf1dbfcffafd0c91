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
# # Tables 1 and 2: polyphonic music and character-level language modelling
#
# Pascanu, Mikolov & Bengio (2013), §4.2. This notebook only *reads* the workdirs written by
#
#     python -m experiments.polyphonic --workdir=runs/music      # Table 1 (built-in Bach default)
#     python -m experiments.char_lm --workdir=runs/chars         # Table 2 (built-in Shakespeare)
#
# (any preset or data set; set `RNN_DYNAMICS_NATURAL` to a comma-separated list of workdirs
# to read others; with neither, it opens the committed Nottingham and PTB runs). A run still in progress is fine: the files are rewritten after every epoch.
#
# What a workdir holds: `table.md` / `table.csv` (each column's score at its best-validation
# epoch, beside the paper's numbers), `history.json` (one row per run and epoch: learning
# rate, α, the running training error, train/valid/test scores, mean gradient norm, clipping
# rate, Ω), `runs.json` (one row per run), `best_params.npz` (best-validation weights,
# `[runs, ...]`), and `predictions.npz` (music: predicted piano rolls of a few test songs)
# or `samples.json` (text: samples from each column's best model).

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from rnn_dynamics.report import natural, style
from rnn_dynamics.workdir import Workdir, locate, named_workdirs

# %matplotlib inline

COLORS = style.COLORS
LABELS = style.TABLE_LABELS  # Tables 1–2 write SGD+C, SGD+CR (docs/reference.md §4)


def opened(path) -> Workdir | None:
  """The workdir at `path`, read-only; None if there is none, or it has no finished epoch."""
  if not (path / "config.json").exists():
    return None
  workdir = Workdir.open(path)
  return workdir if workdir.exists("history.json") else None


def is_text(workdir: Workdir) -> bool:
  # Only char_lm's configs have a target offset (predict the n-th next character).
  return "target_offset" in workdir.config


# RNN_DYNAMICS_NATURAL names the workdirs, music and text in any order; without it, your
# own runs under runs/music and runs/chars, else the committed Nottingham and PTB runs.
named = named_workdirs("natural")
paths = named if named is not None else [
  locate("natural", "runs/music", "docs/results/nottingham_cpu"),
  locate("natural", "runs/chars", "docs/results/ptb5_cpu"),
]
found = [w for w in map(opened, paths) if w is not None]
MUSIC = next((w for w in found if not is_text(w)), None)
TEXTS = [w for w in found if is_text(w)]
TEXT = TEXTS[0] if TEXTS else None
if MUSIC is None and TEXT is None:
  raise FileNotFoundError(
    "No natural-task workdir found. Make one with `python -m experiments.polyphonic "
    "--workdir=runs/music` or `python -m experiments.char_lm --workdir=runs/chars`, or point "
    "RNN_DYNAMICS_NATURAL at yours (comma-separated)."
  )


def load(workdir: Workdir) -> dict:
  return dict(
    config=workdir.config, summary=workdir.read_json("summary.json"),
    history=workdir.table("history"), runs=workdir.table("runs"),
    table=workdir.read_text("table.md"),
  )


def learning_curves(run: dict, title: str):
  """Train (scored and running), valid and test per epoch, one panel per column."""
  hist = run["history"]
  algs = list(dict.fromkeys(r["algorithm"] for r in hist))
  fig, axes = plt.subplots(1, len(algs), figsize=(4.2 * len(algs), 3.4), sharey=True,
                           squeeze=False)
  for ax, alg in zip(axes[0], algs):
    for seed in sorted({r["seed"] for r in hist if r["algorithm"] == alg}):
      rows = [r for r in hist if r["algorithm"] == alg and r["seed"] == seed]
      ep = [r["epoch"] for r in rows]
      get = lambda k: [np.nan if r[k] is None else r[k] for r in rows]
      alpha = 1.0 if seed == 0 else 0.35
      ax.plot(ep, get("train"), "-", color="0.4", alpha=alpha, label="train" if not seed else None)
      ax.plot(ep, get("train_running"), ":", color="0.4", alpha=alpha,
              label="train (running)" if not seed else None)
      ax.plot(ep, get("valid"), "-", color=COLORS[alg], alpha=alpha,
              label="valid" if not seed else None)
      ax.plot(ep, get("test"), "--", color=COLORS[alg], alpha=alpha,
              label="test" if not seed else None)
      best = [r for r in run["runs"] if r["algorithm"] == alg and r["seed"] == seed][0]
      if best["best_epoch"] is not None:
        ax.axvline(best["best_epoch"], color=COLORS[alg], lw=0.6, alpha=0.5)
    paper = (run["summary"].get("paper") or {}).get("test", {}).get(alg)
    if paper is not None:
      ax.axhline(paper, color="k", lw=0.8, ls="-.", label="paper (test)")
    ax.set_title(LABELS.get(alg, alg))
    ax.set_xlabel("epoch")
  axes[0, 0].set_ylabel(run["summary"]["score"])
  axes[0, 0].legend(fontsize=8)
  fig.suptitle(title)
  fig.tight_layout()
  return fig


def optimisation_traces(run: dict):
  """Per epoch: learning rate (halvings), α, mean pre-clip gradient norm, clip rate, Ω."""
  hist = run["history"]
  fields = [("lr", "learning rate", True), ("alpha", "α (Ω weight)", False),
            ("grad_norm", "mean pre-clip ‖g‖", True), ("clip_rate", "fraction clipped", False),
            ("omega", "Ω (mean)", False)]
  fig, axes = plt.subplots(1, len(fields), figsize=(3.3 * len(fields), 2.9))
  for ax, (key, name, log) in zip(axes, fields):
    for i, r0 in enumerate(run["runs"]):  # history's `run` indexes runs.json's rows
      rows = [r for r in hist if r["run"] == i]
      ax.plot([r["epoch"] for r in rows], [np.nan if r[key] is None else r[key] for r in rows],
              color=COLORS[r0["algorithm"]], alpha=1.0 if r0["seed"] == 0 else 0.35,
              label=f"{LABELS[r0['algorithm']]}" if r0["seed"] == 0 else None)
    ax.set_title(name, fontsize=10)
    ax.set_xlabel("epoch")
    if log:
      ax.set_yscale("log")
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  return fig


def show_table(workdir: Workdir) -> None:
  """A table's Markdown, then its learning curves and optimisation traces."""
  run = load(workdir)
  display(Markdown(run["table"]))
  learning_curves(run, f"{run['summary']['name']}: learning curves (vertical: best valid)")
  plt.show()
  optimisation_traces(run)
  plt.show()


# %% [markdown]
# ## Table 1 — polyphonic music (NLL per time step, lower is better)
#
# The model predicts each frame of a song from the frames before it, one Bernoulli per key;
# the score is the negative log-likelihood per frame summed over the 88 keys. The paper's
# numbers (docs/reference.md §4) are quoted beside ours; the frequency baseline is what one gets from
# each key's training frequency alone.

# %%
if MUSIC is not None:
  show_table(MUSIC)
else:
  print("no music workdir: run `python -m experiments.polyphonic --workdir=runs/music`")

# %% [markdown]
# ### A predicted piano roll beside the real one
#
# For the first test songs: the real roll (keys × time) and, for each column's best model
# (seed 0), the predicted probability that each key sounds at each step *given the previous
# steps only*. Good models light up where the notes are and anticipate chord changes late.

# %%
if MUSIC is not None and MUSIC.exists("predictions.npz"):
  pred = MUSIC.read_npz("predictions.npz")
  songs = sorted({k.split("/")[1] for k in pred}, key=int)
  algs = [a for a in ("sgd", "sgd_c", "sgd_cr") if f"{a}/0" in pred]
  for j in songs[:2]:
    real = pred[f"real/{j}"].astype(float)
    keys = np.flatnonzero(real.any(axis=0))  # show the song's range of keys, plus a margin
    keys = keys if keys.size else np.arange(real.shape[1])
    lo, hi = max(keys.min() - 6, 0), min(keys.max() + 7, real.shape[1])
    steps = min(real.shape[0], 160)
    fig, axes = plt.subplots(1, 1 + len(algs), figsize=(4 * (1 + len(algs)), 3.2), sharey=True)
    axes[0].imshow(real[:steps, lo:hi].T, origin="lower", aspect="auto", cmap="Greys",
                   extent=(0, steps, lo + 21, hi + 21))
    axes[0].set_title(f"test song {j}: real")
    axes[0].set_ylabel("MIDI note")
    for ax, a in zip(axes[1:], algs):
      p = pred[f"{a}/{j}"]
      nll = -np.mean(np.sum(real * np.log(p) + (1 - real) * np.log1p(-p), axis=1))
      ax.imshow(p[:steps, lo:hi].T, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1,
                extent=(0, steps, lo + 21, hi + 21))
      ax.set_title(f"{LABELS[a]} (NLL {nll:.2f}/step)")
    for ax in axes:
      ax.set_xlabel("time step")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## Table 2 — character-level language modelling (bits per character)
#
# The model reads the text one symbol at a time, its state carried across the 200-step
# segments of truncated BPTT, and predicts the next symbol (or the fifth one ahead, the
# paper's task where long-range information matters more).

# %%
if TEXT is not None:
  show_table(TEXT)
  if TEXT.exists("samples.json"):
    samples = TEXT.read_json("samples.json")
    print("prime:", samples.pop("prime")[-100:].replace("\n", " / "))
    for alg, s in samples.items():
      print(f"\n{LABELS.get(alg, alg)}:", s[:300].replace("\n", " / "))
else:
  print("no text workdir: run `python -m experiments.char_lm --workdir=runs/chars`")

# %% [markdown]
# ### Two text runs side by side: model size, epochs, the scored subset
#
# Name more text workdirs in `RNN_DYNAMICS_NATURAL` to draw every column of each beside
# the first, per epoch, with the paper's test number. Where a
# workdir was rescored on whole splits (`python -m experiments.rescore`), the table below
# gives each run's best-validation model on the whole split beside its score during
# training (the `cpu` preset scores the first 100,000 symbols of each split).

# %%
compare = TEXTS
if len(compare) > 1:
  curves, reference = [], {}
  for w in compare:
    hist, cfg = w.table("history"), w.config
    for i, r0 in enumerate(w.table("runs")):
      label = f"{w.path.name}: {cfg['n_hidden']} units, {LABELS.get(r0['algorithm'])}"
      curves.append((label, [r for r in hist if r["run"] == i]))
    for alg, value in ((w.read_json("summary.json").get("paper") or {}).get("test") or {}).items():
      if value is not None:
        reference[f"paper test, {LABELS.get(alg, alg)}: {value:.2f}"] = value
  natural.epoch_curves_figure(curves, ylabel=compare[0].read_json("summary.json")["score"],
                            reference=reference, title="per epoch, as scored during training")
  plt.show()
lines = []
for w in compare:
  for split in ("train", "valid", "test"):
    if w.exists(f"rescored_{split}.json"):
      for r in w.read_json(f"rescored_{split}.json"):
        lines.append(f"| {w.path.name} | {w.config['n_hidden']} | {LABELS.get(r['algorithm'])} "
                     f"| {split} | {r['best_epoch']} | {r['as_trained']:.3f} | "
                     f"{r['whole_split']:.3f} |")
if lines:
  display(Markdown("| workdir | units | column | split | best epoch | as trained | whole split |\n"
                   "|---|---|---|---|---|---|---|\n" + "\n".join(lines)))

# %% [markdown]
# ## Reading the results
#
# * The paper's claim for these tasks is modest: clipping (SGD+C) improves training *and*
#   test error — it fixes an optimisation problem, it is not a regulariser — and Ω (SGD+CR)
#   gives a further small test improvement, larger on the fifth-character task.
# * The clip-rate panel shows how often the threshold (8 on the per-step mean for music, 45
#   on the summed cost for text) was hit; the learning-rate panel shows the halvings.
# * CPU presets are smaller and shorter than the paper's set-up (the notes under each table
#   say how), so compare the ordering of the columns more than the absolute numbers.
