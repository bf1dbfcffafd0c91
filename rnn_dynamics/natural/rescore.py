"""A finished Table 1 / Table 2 workdir's best parameters, scored on a whole split.

The `cpu` preset of `experiments.char_lm` scores valid and test on their first 100,000
symbols each epoch (`max_eval_symbols`), which keeps an epoch's evaluation cheap; the
published number is the whole split's. `rescore` reads the workdir's `config.json` and
`best_params.npz` (each run's best-validation parameters), loads the data as the binary
did but untruncated, and scores every run with the trainer's own evaluation program
(`scoring.score`); `write` puts the rows beside the workdir's files without changing them.
A workdir that records its data by name and sha256 (`datasets.recorded`) needs
`data_path`, and the files there must have the recorded checksums.
`experiments/rescore.py` runs it.
"""

from __future__ import annotations

import time
from pathlib import Path

import ml_collections
from absl import logging

from rnn_dynamics import results
from rnn_dynamics.errors import ConfigError
from rnn_dynamics.natural.datasets import music_splits, recorded, text_splits
from rnn_dynamics.natural.scoring import SPLITS, score
from rnn_dynamics.natural.task import music_task, text_task
from rnn_dynamics.workdir import Workdir

__all__ = ["rescore", "task_and_split", "write"]


def task_and_split(config: ml_collections.ConfigDict, split: str):
  """The workdir's task and the whole `split`, loaded as the binary that trained it did.

  A char_lm config is the one with `target_offset` (every text config has it; no music
  config does)."""
  if "target_offset" in config:
    config.max_train_symbols = config.max_eval_symbols = 0
    data = text_splits(config)
    task = text_task(config.dataset, len(data["vocab"]), int(config.target_offset))
  else:
    data = music_splits(config)
    task = music_task(config.dataset)
  return task, data[split]


def _check_data(path: Path, config: ml_collections.ConfigDict, given: bool) -> None:
  """The data `config` now points at is the data the run recorded (`recorded`)."""
  saved = list(config.data_sha256)
  if not given:
    raise ConfigError(
      f"{path} records its data as {config.data_path!r} ({'; '.join(saved)}): pass where "
      f"it is now with --data_path=/path/to/{config.data_path}"
    )
  now = list(recorded(config).data_sha256)
  if now != saved:
    raise ConfigError(
      f"--data_path={config.data_path} holds other data than the run was trained on "
      f"(sha256 {'; '.join(now)}; the run recorded {'; '.join(saved)})"
    )


def rescore(path: str | Path, split: str = "test", data_path: str = "") -> list[dict]:
  """One row per run: its score on the whole split beside the one its table reports."""
  if split not in SPLITS:
    raise ConfigError(f"--split={split!r}: choose one of {', '.join(SPLITS)}")
  workdir = Workdir.open(path, of="experiments.char_lm or experiments.polyphonic")
  if not workdir.exists("best_params.npz"):
    raise ConfigError(
      f"{workdir.path} has no best_params.npz: pass the workdir of a Table 1 or Table 2 "
      "run that finished at least one epoch"
    )
  config = ml_collections.ConfigDict(workdir.config)
  if data_path:
    config.data_path = data_path
  if "data_sha256" in config:  # the data recorded by name and checksum, not by path
    _check_data(workdir.path, config, bool(data_path))
  task, data = task_and_split(config, split)
  params = workdir.read_npz("best_params.npz")
  t0 = time.time()
  scores, steps = score(config, task, params, data)
  logging.info("scored %d runs on %s in %.0f s", len(scores), split, time.time() - t0)
  table = workdir.table("runs")
  return [
    {
      "algorithm": run["algorithm"],
      "seed": run["seed"],
      "best_epoch": run["best_epoch"],
      "split": split,
      "scored_steps": steps,
      "whole_split": float(s),
      "as_trained": run[split],
    }
    for run, s in zip(table, scores, strict=True)
  ]


def write(path: str | Path, rows: list[dict], score_name: str) -> str:
  """`rescored_<split>.{json,csv,md}` in the workdir; returns the Markdown."""
  split = rows[0]["split"]
  md = [
    f"{split} {score_name} at each run's best-validation epoch, on the whole split "
    f"({rows[0]['scored_steps']:,} steps) and as the table scored it during training:",
    "",
    "| algorithm | seed | best epoch | whole split | as trained |",
    "|---|---|---|---|---|",
  ]
  md += [
    f"| {r['algorithm']} | {r['seed']} | {r['best_epoch']} | {r['whole_split']:.3f} | "
    f"{r['as_trained']:.3f} |"
    for r in rows
  ]
  text = "\n".join(md) + "\n"
  results.write_results(Path(path) / f"rescored_{split}", rows)
  results.atomic_write_text(Path(path) / f"rescored_{split}.md", text)
  return text
