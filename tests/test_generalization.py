"""experiments/generalization.py end to end on its `test` preset, and its resumption."""

import math
import subprocess
import sys
from pathlib import Path

from experiments import generalization
from experiments.configs.generalization import get_config
from rnn_dynamics import results

REPO = Path(__file__).resolve().parents[1]


def test_eval_block_divides_and_fits():
  for length in (50, 250, 3000, 5000):
    block = generalization.eval_block(length, 10_000, 1000, 200_000)
    assert 10_000 % block == 0 and block <= 1000 and block * length <= 200_000
  assert generalization.eval_block(10**6, 7, 1000, 10) == 1  # never below one sequence


def test_test_preset_end_to_end(tmp_path):
  workdir = tmp_path / "gen"
  proc = subprocess.run(
    [sys.executable, "-m", "experiments.generalization",
     "--config=experiments/configs/generalization.py:test", f"--workdir={workdir}"],
    cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "errors at" in proc.stdout

  config = get_config("test")
  rows = results.read_results(workdir / "generalization")
  pairs = sorted((r["seed"], r["eval_length"]) for r in rows)
  assert pairs == sorted((s, t) for s in range(config.seeds) for t in config.eval_lengths)
  for r in rows:
    assert math.isfinite(r["error"]) and 0.0 <= r["error"] <= 1.0
    assert r["n_sequences"] == config.eval_sequences
    assert r["errors"] == round(r["error"] * config.eval_sequences)
    assert r["in_training_range"] == (config.min_length <= r["eval_length"] < config.max_length)
  header = (workdir / "generalization.csv").read_text().splitlines()[0].split(",")
  assert {"seed", "eval_length", "error", "errors", "solved"} <= set(header)
  assert len((workdir / "generalization.csv").read_text().splitlines()) == len(rows) + 1
  for ext in ("png", "svg"):
    assert (workdir / f"generalization.{ext}").stat().st_size > 0
  assert len(results.read_results(workdir / "results")) == config.seeds  # training rows

  # Re-running on the finished workdir trains and evaluates nothing and changes nothing.
  train_rows, again = generalization.run(config, str(workdir))
  assert len(train_rows) == config.seeds
  assert again == rows
