"""Every published set-up and number the suite compares against, quoted, never recomputed.

All of it is in docs/reference.md §4 ("Published set-ups and results"), in the project's
words, with where each number comes from (ICML text, arXiv v2, supplementary material):

* `FIGURE7`: the set-up of Figure 7 (temporal order, success rate against length);
* `ONE_MODEL`: the one-model-for-many-lengths experiment and the lengths it was tested at;
* `PATHOLOGICAL`: per pathological task, the hyper-parameters and the reported outcome
  (with `PATHOLOGICAL_TASKS`, `variants` and `pathological_setup` for the task names),
  and `PATHOLOGICAL_RUNS`, what their runs share;
* `TABLE1_SETUPS`, `TABLE2_SETUPS`: the natural tasks' set-ups, per data set and per
  target offset;
* `TABLE1`, `TABLE2`: the natural tasks' scores (NLL per time step; bits per character).

Every config with a preset named `paper` matches these records (tests/test_paper.py).
Records name their fields as the configs do.

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, ICML, §4 and the supplementary material; arXiv:1211.5063v2.
"""

from __future__ import annotations

from typing import NamedTuple

from rnn_dynamics import tasks

__all__ = [
  "FIGURE7",
  "ONE_MODEL",
  "PATHOLOGICAL",
  "PATHOLOGICAL_RUNS",
  "PATHOLOGICAL_TASKS",
  "TABLE1",
  "TABLE1_SETUPS",
  "TABLE2",
  "TABLE2_SETUPS",
  "Figure7Setup",
  "MusicSetup",
  "OneModelSetup",
  "PaperSetup",
  "PathologicalRuns",
  "TextSetup",
  "experiment_task",
  "pathological_setup",
  "variants",
]


class Figure7Setup(NamedTuple):
  """Figure 7's set-up (docs/reference.md §4, "Figure 7"); stated in the ICML text only.

  The sequence lengths are not listed (the figure plots them on a log axis): the config
  picks them.
  """

  n_hidden: int = 50
  lr: float = 0.01
  batch_size: int = 20
  clip: float = 1.0
  alpha: float = 4.0  # the original code's example configuration has 2
  max_updates: int = 5_000_000
  seeds: int = 5
  success_error: float = 0.01  # < 1 % of ...
  eval_size: int = 10_000  # ... fresh sequences (docs/reference.md §3)
  inits: tuple[str, ...] = ("sigmoid", "basic_tanh", "smart_tanh")  # docs/reference.md §1
  algorithms: tuple[str, ...] = ("sgd", "sgd_c", "sgd_cr")
  momentum: float = 0.0  # "constant learning rate ... without momentum"


FIGURE7 = Figure7Setup()


class OneModelSetup(NamedTuple):
  """One model for many lengths (docs/reference.md §4): SGD-CR on lengths drawn from
  [50, 200], 5 seeds all solved with 0 errors, then 0 errors out of 10,000 sequences at
  each of `eval_lengths` (ICML)."""

  n_hidden: int = 50
  init: str = "basic_tanh"
  algorithm: str = "sgd_cr"
  min_length: int = 50
  max_length: int = 200
  seeds: int = 5
  eval_sequences: int = 10_000
  eval_lengths: tuple[int, ...] = (50, 100, 150, 200, 250, 500, 1000, 2000, 3000, 5000)
  reported_errors: int = 0


ONE_MODEL = OneModelSetup()
"""The paper states no learning rate, threshold, α or budget for it:
experiments/configs/generalization.py takes Figure 7's (`FIGURE7`)."""


class PaperSetup(NamedTuple):
  """A pathological task's published hyper-parameters and outcome (docs/reference.md §4,
  "The other pathological tasks").

  Attributes:
    n_hidden: hidden units.
    init: initialisation (`rnn.INITS`); `basic_tanh` is tanh with N(0, 0.1²) weights.
    lr: learning rate.
    alpha: Ω weight of SGD-CR.
    clip: norm-clipping threshold.
    reported: the paper's result, quoted from docs/reference.md §4.
    note: where a value is not the paper's own.
  """

  n_hidden: int
  init: str
  lr: float
  alpha: float
  clip: float
  reported: str
  note: str = ""


_FROM_TEXT = (
  "init not stated for this task; basic_tanh as in the paper's temporal-order "
  "one-model-for-many-lengths set-up"
)
PATHOLOGICAL: dict[str, PaperSetup] = {
  "addition": PaperSetup(50, "basic_tanh", 0.01, 0.5, 6.0, "100%; generalizes to 400–500 steps"),
  "multiplication": PaperSetup(50, "basic_tanh", 0.01, 0.5, 6.0, "100%, similar"),
  "temporal_order": PaperSetup(
    50, "basic_tanh", 0.001, 2.0, 6.0, "100%, generalizes to 400", _FROM_TEXT
  ),
  "temporal_order_3bit": PaperSetup(100, "basic_tanh", 0.001, 2.0, 6.0, "100%", _FROM_TEXT),
  "permutation": PaperSetup(
    100, "basic_tanh", 0.001, 1.0, 6.0, "1 of 8 (ICML text: 2 of 5)", _FROM_TEXT
  ),
  "memorization": PaperSetup(
    50,
    "smart_tanh",
    0.01,
    2.0,
    1.0,
    "100% per length",
    "not stated in the paper: the original code's defaults",
  ),
}
"""Published set-ups by experiment task name (both memorization variants share one)."""

PATHOLOGICAL_TASKS: tuple[str, ...] = tuple(PATHOLOGICAL)
"""Task names with a published set-up (plus the two memorization variants)."""


class PathologicalRuns(NamedTuple):
  """What every pathological task's runs share (docs/reference.md §4, "The other
  pathological tasks"; ICML §4.1.2): SGD-CR, 5 seeds, one model trained on lengths
  50–200 for every task but memorization, one model per gap length for memorization."""

  algorithm: str = "sgd_cr"
  seeds: int = 5
  train_lengths: tuple[int, int] = (50, 200)
  memorization_lengths: tuple[int, ...] = (50, 100, 150, 200)


PATHOLOGICAL_RUNS = PathologicalRuns()

_VARIANTS = {"memorization": ("memorization_5bit", "memorization_20bit")}


def variants(task: str) -> tuple[str, ...]:
  """Registry task names (`rnn_dynamics.tasks.TASKS`) a pathological task stands for.

  `memorization` runs both published variants; `memorization_5bit` or
  `memorization_20bit` runs one; any other registered task stands for itself, whether
  the paper has it or not (`pathological_setup` tells).

  Raises:
    ValueError: `task` is none of them.
  """
  if task in _VARIANTS:
    return _VARIANTS[task]
  if task in PATHOLOGICAL or task in tasks.TASKS:
    return (task,)
  valid = ", ".join(dict.fromkeys(PATHOLOGICAL_TASKS + _VARIANTS["memorization"] + tasks.TASKS))
  raise ValueError(f"unknown pathological task {task!r}; choose one of {valid}")


def experiment_task(task: str) -> str:
  """The experiment task name a task or variant belongs to (`memorization` for both
  variants): its key in `PATHOLOGICAL` and in the pathological config's `budgets`."""
  return "memorization" if task.startswith("memorization") else task


def pathological_setup(task: str) -> PaperSetup | None:
  """The published set-up of a pathological task or of one of its variants; None for a
  registered task the paper does not have (its set-up then comes from the config)."""
  variants(task)  # validates
  return PATHOLOGICAL.get(experiment_task(task))


class MusicSetup(NamedTuple):
  """Table 1's set-up for one data set (docs/reference.md §4, "Table 1"; supplementary
  "Natural tasks"; chosen by the authors' grid search on the validation set).

  Only α and the clipping threshold change between the columns (SGD has neither).

  Attributes:
    n_hidden: hidden units.
    lr: initial learning rate, every column.
    alpha0: α_0 of SGD-CR's schedule.
    note: where a value is our reading of the paper's words.
    init: sigmoid units (`rnn.INITS`; weights N(0, 0.01²), docs/reference.md §1).
    segment_length: steps per training sequence.
    clip, cost: norm-clipping threshold on the gradient of the cost averaged over the
      sequence (the same threshold for every data set).
    lr_halving: the lr is halved every time an epoch's (training) error rises.
    alpha_schedule: `inverse`, α_t = α_0 / t with t the epoch.
    algorithms: the table's columns.
  """

  n_hidden: int
  lr: float
  alpha0: float
  note: str = ""
  init: str = "sigmoid"
  segment_length: int = 200
  clip: float = 8.0
  cost: str = "mean"
  lr_halving: str = "train"
  alpha_schedule: str = "inverse"
  algorithms: tuple[str, ...] = ("sgd", "sgd_c", "sgd_cr")


TABLE1_SETUPS: dict[str, MusicSetup] = {
  "piano-midi": MusicSetup(300, 1.0, 0.5),  # "α_t = 1/(2t)"
  "nottingham": MusicSetup(300, 1.0, 0.5),  # "the exact same setup"
  "musedata": MusicSetup(
    400, 0.5, 0.1, "the paper writes α_0 = 0.1 and α_t = 1/t; read as α_t = α_0 / t"
  ),
}
"""Table 1's set-ups by data set (the keys of `TABLE1`)."""


class TextSetup(NamedTuple):
  """Table 2's set-up for one target offset (docs/reference.md §4, "Table 2";
  supplementary "Language modelling").

  Attributes:
    lr_sgd, lr_sgd_c, lr_sgd_cr: learning rate per column (SGD, SGD+C, SGD+CR).
    alpha0: α of SGD+CR (α_0 of the schedule).
    alpha_schedule: `constant`, or `inverse` (α_t = α_0 / t, t the epoch).
    algorithms: the table's columns (the fifth-character task has no SGD column, "N/A").
    note: where a value is not the paper's own.
    dataset: Mikolov's character-level Penn Treebank.
    n_hidden, init, biases: 500 sigmoid units without biases (after Mikolov et al. 2012).
    segment_length: truncated BPTT over segments of this many steps, the state carried.
    clip, cost: norm-clipping threshold on the gradient of the cost summed over the
      segment.
  """

  lr_sgd: float
  lr_sgd_c: float
  lr_sgd_cr: float
  alpha0: float
  alpha_schedule: str
  algorithms: tuple[str, ...]
  note: str = ""
  dataset: str = "ptb"
  n_hidden: int = 500
  init: str = "sigmoid"
  biases: bool = False
  segment_length: int = 200
  clip: float = 45.0
  cost: str = "sum"


TABLE2_SETUPS: dict[int, TextSetup] = {
  1: TextSetup(0.001, 0.01, 0.05, 0.01, "constant", ("sgd", "sgd_c", "sgd_cr")),
  5: TextSetup(
    0.001,
    0.1,
    0.05,
    0.05,
    "inverse",
    ("sgd_c", "sgd_cr"),
    "lr_sgd is not in the paper (no SGD column): the next-character task's, used only "
    "if SGD is asked for",
  ),
}
"""Table 2's set-ups by target offset (1: next character, 5: fifth ahead; the keys of
`TABLE2`)."""


TABLE1: dict[str, dict[str, dict[str, float]]] = {
  "piano-midi": {
    "train": dict(sgd=6.87, sgd_c=6.81, sgd_cr=7.01),
    "test": dict(sgd=7.56, sgd_c=7.53, sgd_cr=7.46),
  },
  "nottingham": {
    "train": dict(sgd=3.67, sgd_c=3.21, sgd_cr=3.24),
    "test": dict(sgd=3.80, sgd_c=3.48, sgd_cr=3.46),
  },
  "musedata": {
    "train": dict(sgd=8.25, sgd_c=6.54, sgd_cr=6.51),
    "test": dict(sgd=7.11, sgd_c=7.00, sgd_cr=6.99),
  },
}
"""Table 1, polyphonic music, NLL per time step by data set, fold and column (arXiv v2;
the ICML cells that differ are in docs/reference.md §4)."""

TABLE2: dict[int, dict[str, dict[str, float | None]]] = {
  1: {
    "train": dict(sgd=1.46, sgd_c=1.34, sgd_cr=1.36),
    "test": dict(sgd=1.50, sgd_c=1.42, sgd_cr=1.41),
  },
  5: {
    "train": dict(sgd=None, sgd_c=3.76, sgd_cr=3.70),
    "test": dict(sgd=None, sgd_c=3.89, sgd_cr=3.74),
  },
}
"""Table 2, character-level Penn Treebank, bits per character by target offset (1: next
character, 5: fifth ahead), fold and column; None is the paper's "N/A"."""
