"""Tests for rnn_dynamics/paper.py: the quoted numbers are the ones docs/reference.md §4
gives, the task names resolve, and every config preset named `paper` is paper.py's set-up."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from experiments import validation
from rnn_dynamics import paper, tasks

REPO = Path(__file__).resolve().parents[1]
REFERENCE = (REPO / "docs" / "reference.md").read_text()


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
  assert len(f.inits) == 3 and "the three initialisations of §1" in text
  assert f.algorithms == ("sgd", "sgd_c", "sgd_cr")
  assert "three algorithms: SGD, SGD-C, SGD-CR" in text
  assert f.momentum == 0 and f"learning rate {f.lr} without momentum" in text
  one = _section("**One model for many lengths")
  assert f"{paper.ONE_MODEL.n_hidden} tanh units, `{paper.ONE_MODEL.init}`, SGD-CR" in one
  assert paper.ONE_MODEL.algorithm == "sgd_cr"
  assert ", ".join(map(str, paper.ONE_MODEL.eval_lengths[:-1])) in one
  assert f"{paper.ONE_MODEL.eval_sequences:,} sequences" in one


def test_pathological_runs_are_quoted():
  text = _section("**The other pathological tasks")
  runs = paper.PATHOLOGICAL_RUNS
  assert runs.algorithm == "sgd_cr" and f"SGD-CR, {runs.seeds} seeds each" in text
  assert "lengths {}–{} for the first four tasks".format(*runs.train_lengths) in text
  assert f"one model per length ({', '.join(map(str, runs.memorization_lengths))})" in text


def test_table1_setups_are_quoted():
  text = _section("**Table 1: polyphonic music")
  setups = paper.TABLE1_SETUPS
  assert set(setups) == set(paper.TABLE1)
  for name, key in (("Piano-midi.de", "piano-midi"), ("MuseData", "musedata")):
    s = setups[key]
    assert f"{name}: {s.n_hidden} hidden units, learning rate {s.lr}" in text
    assert f"α_0 = {s.alpha0} with" in text
  assert "Nottingham: the same." in text and setups["nottingham"] == setups["piano-midi"]
  for s in setups.values():
    assert f"sigmoid RNN trained on sequences of {s.segment_length} steps" in text
    assert s.init == "sigmoid" and s.cost == "mean" and s.alpha_schedule == "inverse"
    assert f"threshold {s.clip:g} on the gradient of the cost averaged" in text
    assert s.lr_halving == "train" and "halved each time an epoch's error rises" in text


def test_table2_setups_are_quoted():
  text = _section("**Table 2: character-level Penn Treebank")
  setups = paper.TABLE2_SETUPS
  assert set(setups) == set(paper.TABLE2)
  one, five = setups[1], setups[5]
  assert (
    f"Next character: learning rate {one.lr_sgd_c} with clipping, {one.lr_sgd_cr} with "
    f"clipping and Ω, {one.lr_sgd} without clipping; α = {one.alpha0}, constant" in text
  )
  assert one.alpha_schedule == "constant" and one.algorithms == ("sgd", "sgd_c", "sgd_cr")
  assert (
    f"Fifth character ahead: learning rate {five.lr_sgd_cr} with Ω, {five.lr_sgd_c} without; "
    f"α_0 = {five.alpha0} with a 1/t schedule" in text
  )
  # No SGD column ("N/A"); lr_sgd is the project's, said in the note.
  assert five.alpha_schedule == "inverse" and five.algorithms == ("sgd_c", "sgd_cr")
  assert paper.TABLE2[5]["test"]["sgd"] is None and "lr_sgd" in five.note
  for s in setups.values():
    assert s.dataset == "ptb" and s.init == "sigmoid" and not s.biases
    assert f"{s.n_hidden} sigmoid units without biases" in text
    assert f"segments of {s.segment_length} steps" in text
    assert s.cost == "sum" and f"threshold {s.clip:g} on the gradient of the cost summed" in text


@pytest.mark.parametrize("task", paper.PATHOLOGICAL_TASKS)
def test_pathological_tasks_name_registry_tasks(task):
  for variant in paper.variants(task):
    assert variant in tasks.TASKS
    assert paper.pathological_setup(variant) == paper.PATHOLOGICAL[task]
  with pytest.raises(ValueError, match="unknown pathological task"):
    paper.variants("adding")


# --- every config preset named `paper` is paper.py's set-up ---

CONFIGS = REPO / "experiments" / "configs"
PAPER_PRESET_CONFIGS = sorted(
  f.stem for f in CONFIGS.glob("*.py") if 'preset == "paper"' in f.read_text()
)
"""Config modules with a preset named `paper` (found in their source, so a new one is
checked or fails `test_every_paper_preset_is_checked`)."""


def _record(record, *names: str, skip: tuple[str, ...] = ()) -> dict:
  """`names` of a paper.py record (all but `note` and `skip` when none are named)."""
  names = names or tuple(f for f in record._fields if f not in ("note", *skip))
  return {name: getattr(record, name) for name in names}


def _mismatches(where: str, cfg, published: dict) -> list[str]:
  """Fields of the resolved config `cfg` that differ from their published value."""
  out = []
  for field, value in published.items():
    got = cfg[field] if field in cfg else "<missing>"
    got = tuple(got) if isinstance(got, list) else got
    if got != value:
      out.append(f"{where}{field}: config {got!r}, rnn_dynamics.paper {value!r}")
  return out


def _contains(where: str, cfg, field: str, value) -> list[str]:
  if value in cfg[field]:
    return []
  return [f"{where}{field}: config {cfg[field]!r} lacks rnn_dynamics.paper's {value!r}"]


# Figure 7's training and success test (docs/reference.md §3's test, quoted by FIGURE7).
_FIGURE7_TRAINING = ("lr", "momentum", "batch_size", "clip", "alpha", "max_updates")
_SUCCESS_TEST = ("success_error", "eval_size")


def _success_rate(load) -> list[str]:
  return _mismatches("", load(), _record(paper.FIGURE7))


def _generalization(load) -> list[str]:
  # The paper states only the model, algorithm, lengths and tests; the rest is Figure 7's.
  published = {
    **_record(paper.ONE_MODEL, skip=("reported_errors",)),
    **_record(paper.FIGURE7, *_FIGURE7_TRAINING, *_SUCCESS_TEST),
  }
  return _mismatches("", load(), published)


def _threshold_grid(load) -> list[str]:
  # Figure 7's set-up at one length; the grid of thresholds × α holds Figure 7's point.
  cfg, f7 = load(), paper.FIGURE7
  fixed = ("n_hidden", "lr", "momentum", "batch_size", "max_updates", "seeds", *_SUCCESS_TEST)
  out = _mismatches("", cfg, _record(f7, *fixed))
  out += _contains("", cfg, "thresholds", f7.clip) + _contains("", cfg, "alphas", f7.alpha)
  return out + [f"inits: {i!r} is not Figure 7's" for i in cfg.inits if i not in f7.inits]


def _pathological(load) -> list[str]:
  runs, out = paper.PATHOLOGICAL_RUNS, []
  for task in paper.PATHOLOGICAL_TASKS:
    for name in dict.fromkeys((task, *paper.variants(task))):
      where, cfg = f"task={name}: ", load(task=name)
      published = _record(paper.pathological_setup(name), skip=("reported",))
      out += _mismatches(where, cfg, {**published, **_record(runs, skip=("algorithm",))})
      out += _contains(where, cfg, "algorithms", runs.algorithm)
  return out


def _polyphonic(load) -> list[str]:
  out = []
  for dataset, setup in paper.TABLE1_SETUPS.items():
    out += _mismatches(f"dataset={dataset}: ", load(dataset=dataset), _record(setup))
  return out


def _char_lm(load) -> list[str]:
  out = []
  for offset, setup in paper.TABLE2_SETUPS.items():
    out += _mismatches(f"target_offset={offset}: ", load(target_offset=offset), _record(setup))
  return out


PAPER_CHECKS = {
  "success_rate": _success_rate,
  "generalization": _generalization,
  "threshold_grid": _threshold_grid,
  "pathological": _pathological,
  "polyphonic": _polyphonic,
  "char_lm": _char_lm,
}
"""Per config module: its `paper` preset, resolved per task or data set, against paper.py."""


def _loader(name: str):
  """`load(**fields)`: the module's `paper` preset with `fields` set, validated and resolved
  as its binary does (`experiments.validation.validate`, then the module's `resolve` where
  it has one): what `<workdir>/config.json` records."""
  module = importlib.import_module(f"experiments.configs.{name}")

  def load(**fields):
    config = module.get_config("paper")
    if "data_path" in config:  # validation wants a data set's folder to exist; any will do
      config.data_path = str(REPO)
    config.update(fields)
    config = validation.validate(config, name)
    return module.resolve(config) if hasattr(module, "resolve") else config

  return load


def test_every_paper_preset_is_checked():
  assert PAPER_PRESET_CONFIGS, "no config with a paper preset found"
  assert set(PAPER_PRESET_CONFIGS) == set(PAPER_CHECKS), (
    "a config with a preset named 'paper' needs its published set-up in rnn_dynamics/paper.py "
    "and an entry in PAPER_CHECKS (and an entry there needs the preset)"
  )


@pytest.mark.parametrize("name", PAPER_PRESET_CONFIGS)
def test_paper_preset_is_the_published_setup(name):
  assert name in PAPER_CHECKS, f"experiments/configs/{name}.py: no check in PAPER_CHECKS"
  assert PAPER_CHECKS[name](_loader(name)) == []


def test_a_drifted_paper_preset_is_caught():
  load = _loader("polyphonic")

  def drifted(**fields):
    cfg = load(**fields)
    if cfg.dataset == "musedata":
      cfg.lr = 0.25
    return cfg

  assert _polyphonic(load) == []
  assert _polyphonic(drifted) == ["dataset=musedata: lr: config 0.25, rnn_dynamics.paper 0.5"]
