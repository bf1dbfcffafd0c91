r"""Table 2 of Pascanu et al. (2013): character-level language modelling, bits per character.

A sigmoid RNN (no biases) with a softmax over the symbols reads the text stream by
truncated BPTT over segments of 200 steps, the hidden state carried across segments, and
predicts the next character (`--config.target_offset=1`) or the fifth one ahead (`=5`).
SGD, SGD+C and SGD+CR run in one vmapped program; every split is scored after each epoch
and each run's best-validation epoch gives its row of the table. Re-running with the
same --workdir resumes.

  python -m experiments.char_lm --workdir=runs/chars                     # cpu, built-in
  python -m experiments.char_lm --config=experiments/configs/char_lm.py:paper \
      --config.data_path=/path/to/ptb --workdir=runs/ptb_next
  python -m experiments.char_lm --config=experiments/configs/char_lm.py:paper \
      --config.data_path=/path/to/ptb --config.target_offset=5 --workdir=runs/ptb_fifth

Writes to --workdir: table.md / table.csv (ours beside the paper's Table 2), runs.csv,
history.csv, best_params.npz, samples.json (text sampled from each column's best model,
next-character task only), summary.json.
"""

from __future__ import annotations

import time

import jax
import numpy as np
from absl import logging

from experiments import cli, validation
from experiments.configs import char_lm as char_lm_config
from rnn_dynamics import natural, paper, results
from rnn_dynamics.workdir import Workdir


def columns(config) -> list[natural.Column]:
  """The table's columns as hyper-parameters of one program."""
  return natural.columns(config.algorithms, lambda a: config[f"lr_{a}"], config.clip, config.alpha0)


def write_outputs(workdir: Workdir, config, res: natural.FitResult, baseline: float) -> str:
  """Tables, history and best parameters; returns the Markdown table."""
  offset = int(config.target_offset)
  published = paper.TABLE2.get(offset) if config.dataset == "ptb" else None
  task = "next character" if offset == 1 else f"{offset} steps ahead"
  lrs = ", ".join(f"{a} {config[f'lr_{a}']}" for a in config.algorithms)
  truncated = []
  if config.max_train_symbols or config.max_eval_symbols or config.train_eval_limit:
    truncated.append(
      f"Truncated: train on {config.max_train_symbols or 'all'} symbols, valid/test scored "
      f"on {config.max_eval_symbols or 'all'}, train scored on "
      f"{config.train_eval_limit or 'all'}."
    )
  notes = natural.table_notes(
    config,
    res,
    published,
    score="Bits per character",
    baseline=f"Unigram baseline (training symbol frequencies), test: {baseline:.2f}.",
    setup=f"{config.n_hidden} sigmoid units{'' if config.biases else ' without biases'}, "
    f"lr {lrs} halved on rising {config.lr_halving} error, clip {config.clip} on the summed "
    f"cost, α {config.alpha0} ({config.alpha_schedule}), segments of "
    f"{config.segment_length} steps, {config.batch_size} lane(s).",
    extra=truncated,
    missing="The paper reports no numbers for this data set / task.",
  )
  return natural.write_fit_outputs(
    workdir.path,
    res,
    algorithms=config.algorithms,
    paper=published,
    notes=notes,
    title=f"Table 2 — {natural.TEXT_NAMES[config.dataset]}, {task}, bits per character "
    "(lower is better)",
    summary=dict(
      dataset=config.dataset,
      name=natural.TEXT_NAMES[config.dataset],
      score="bits per character",
      target_offset=offset,
      unigram_baseline_test=baseline,
      init=config.init,
    ),
  )


def write_samples(workdir: Workdir, config, res: natural.FitResult, data) -> None:
  """Text sampled from seed 0 of every column (next-character models only)."""
  if int(config.target_offset) != 1 or not config.n_samples:
    return
  vocab = data["vocab"]
  decode = lambda ids: "".join(" " if vocab[i] == "_" else vocab[i] for i in ids)
  prime = np.asarray(data["test"][:100])
  key = jax.random.PRNGKey(int(config.seed))
  out = {"prime": decode(prime)}
  for algorithm, params in res.seed_models(0).items():
    ids = natural.sample_text(params, config.init, prime, int(config.n_samples), key, len(vocab))
    out[algorithm] = decode(ids)
  results.write_json(workdir.path / "samples.json", out)


def run(config, workdir_path: str) -> tuple[natural.FitResult, str]:
  """Trains (or resumes) every column and writes the outputs; returns them and the table."""
  config = char_lm_config.resolve(config)
  t0 = time.time()
  # Before the workdir records the config: a data path that cannot be read is refused
  # with nothing written, so the corrected command is not "a different config". The
  # workdir records the data by file name and sha256, not by path: the same files
  # elsewhere resume it.
  data = natural.text_splits(config)
  workdir = Workdir(workdir_path, natural.recorded(config))
  logging.info(
    "%s: %d / %d / %d symbols, vocabulary %d (loaded in %.0f s)",
    config.dataset,
    data["train"].size,
    data["valid"].size,
    data["test"].size,
    len(data["vocab"]),
    time.time() - t0,
  )
  vocab_size = len(data["vocab"])
  baseline = natural.unigram_baseline(data["train"], data["test"], vocab_size)
  task = natural.text_task(config.dataset, vocab_size, int(config.target_offset))
  res, md = natural.fit_in_workdir(
    workdir,
    config,
    task,
    data,
    columns(config),
    lambda r: write_outputs(workdir, config, r, baseline),
  )
  write_samples(workdir, config, res, data)
  return res, md


def main(argv):
  workdir = cli.require_workdir(argv, _WORKDIR, "runs/chars")
  _, md = run(validation.validate(_CONFIG.value, "char_lm"), workdir)
  print(md)
  print(f"results: {workdir}/table.md, history: {workdir}/history.csv")


if __name__ == "__main__":
  # Flags live here, not at import, so tests can import several binaries into one process.
  _CONFIG = cli.define_config("experiments/configs/char_lm.py:cpu")
  _WORKDIR = cli.define_workdir("results, checkpoints and tables")
  cli.run(main)
