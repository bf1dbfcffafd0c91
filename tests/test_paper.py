"""Tests for rnn_dynamics/paper.py: the quoted numbers are the ones docs/reference.md §4
gives, and the task names resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rnn_dynamics import paper, tasks

REFERENCE = (Path(__file__).resolve().parents[1] / "docs" / "reference.md").read_text()


def _section(title: str) -> str:
  """From a bold title to the next one, with line breaks as spaces."""
  start = REFERENCE.index(title)
  return " ".join(REFERENCE[start : REFERENCE.index("\n\n**", start)].split())


def _table_rows(title: str) -> list[list[str]]:
  text = REFERENCE[REFERENCE.index(title) :]
  rows = [line for line in text.splitlines() if line.startswith("|")]
  end = next(i for i in range(1, len(rows)) if not rows[i].startswith("| ") or "task |" in rows[i])
  return [[c.strip() for c in r.strip("|").split("|")] for r in rows[:end] if "---" not in r]


def test_table1_is_the_reference_table():
  rows = _table_rows("**Table 1: polyphonic music")
  names = {"Piano-midi.de": "piano-midi", "Nottingham": "nottingham", "MuseData": "musedata"}
  data = None
  for row in rows[1:]:
    data = names.get(row[0], data)
    got = paper.TABLE1[data][row[1]]
    # arXiv v2 numbers; a bold ICML value may follow in parentheses.
    quoted = [float(re.match(r"[\d.]+", c).group()) for c in row[2:5]]
    assert [got["sgd"], got["sgd_c"], got["sgd_cr"]] == quoted


def test_table2_is_the_reference_table():
  rows = _table_rows("| task | fold | SGD | SGD+C | SGD+CR |")
  offsets = {"next character": 1, "5th character ahead": 5}
  offset = None
  for row in rows[1:]:
    offset = offsets.get(row[0], offset)
    got = paper.TABLE2[offset][row[1]]
    quoted = [None if c == "N/A" else float(c) for c in row[2:5]]
    assert [got["sgd"], got["sgd_c"], got["sgd_cr"]] == quoted


def test_figure7_and_one_model_setups_are_quoted():
  text = _section("**Figure 7")
  f = paper.FIGURE7
  assert f"{f.n_hidden} hidden units" in text and f"learning rate {f.lr}" in text
  assert f"threshold {f.clip}" in text and f"α = {f.alpha:g}" in text
  assert f"minibatches of {f.batch_size}" in text and f"{f.seeds} seeds" in text
  one = _section("**One model for many lengths")
  assert ", ".join(map(str, paper.ONE_MODEL.eval_lengths[:-1])) in one
  assert f"{paper.ONE_MODEL.eval_sequences:,} sequences" in one


@pytest.mark.parametrize("task", paper.PATHOLOGICAL_TASKS)
def test_pathological_tasks_name_registry_tasks(task):
  for variant in paper.variants(task):
    assert variant in tasks.TASKS
    assert paper.pathological_setup(variant) == paper.PATHOLOGICAL[task]
  with pytest.raises(ValueError, match="unknown pathological task"):
    paper.variants("adding")
