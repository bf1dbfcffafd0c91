"""The methods `experiments/methods.py` compares on the paper's tasks: the one table.

A method is a cell (`rnn_dynamics.cells`), an algorithm (`rnn_dynamics.algorithms`) and
its hyper-parameters; its name is `<cell>_<algorithm>` (`rnn_sgd_cr`: the paper's RNN
with SGD-CR). Every run of a method on a task gets the same protocol (docs/methods.md):
the task's clipping threshold and Ω weight as the paper publishes them for that task
(`task_setting`), the paper RNN's initialisation for that task (`rnn_init`; other cells
have their own), and a learning rate that is either published for that task
(`Method.published`) or picked from the method's `lr_grid` at T = 50 on separate seeds
by `pick_lr` (the grid stage).

Only the paper's own RNN has values published for these tasks (Figure 7 for temporal
order, the supplementary's table for addition; `rnn_dynamics.paper`): every later
method's paper uses other task variants, budgets and batch sizes (docs/reference.md §6),
so every other method gets the grid.

Adding a method: one `Method(...)` line in `_TABLE`, its cell registered in
`rnn_dynamics.cells` (or listed in `PENDING_CELLS` until it is), its source cited in
docs/reference.md §6. The binary, its presets (`runnable()`), the table, the figures and
the notebook pick it up by name.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from rnn_dynamics import algorithms, cells, paper
from rnn_dynamics.tasks import get_task

__all__ = [
  "ADAM_GRID",
  "GATED_SGD_GRID",
  "MATCHES",
  "METHODS",
  "Method",
  "PENDING_CELLS",
  "Published",
  "SGD_GRID",
  "TASKS",
  "closest_size",
  "get",
  "hidden_units",
  "hparams",
  "parameter_count",
  "pick_lr",
  "rnn_init",
  "runnable",
  "task_setting",
]

PENDING_CELLS: tuple[str, ...] = ()
"""Cells the table names that this build's registry (`cells.CELLS`) does not have yet
(a cell being written): their methods are listed, and refused by the binary with one line
until the cell is registered. Every cell the table names is registered today."""

TASKS = ("temporal_order", "addition", "multiplication")
"""Tasks with a published threshold and Ω weight (`task_setting`): the protocol's two
(temporal order, addition) and multiplication, which shares addition's set-up."""

# Learning-rate grids: five values, half a decade apart, around each optimizer's usual
# range; the gated cells' SGD range is shifted up a decade (their gates saturate the
# gradient: SGD-trained LSTMs are usually run at 0.1–1).
SGD_GRID = (0.001, 0.003, 0.01, 0.03, 0.1)
GATED_SGD_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
ADAM_GRID = (0.0001, 0.0003, 0.001, 0.003, 0.01)


@dataclasses.dataclass(frozen=True)
class Published:
  """A learning rate a method's paper gives for a task, and where."""

  lr: float
  source: str


def _paper_rnn(ablation: str = "") -> dict[str, Published]:
  """The paper's learning rates for its RNN (SGD-CR; `ablation` names a variant that
  keeps SGD-CR's values, e.g. SGD-C, Ω off)."""
  note = f"; {ablation}" if ablation else ""
  out = {"temporal_order": Published(paper.FIGURE7.lr, f"Figure 7 (ICML §4.1.1){note}")}
  for task in ("addition", "multiplication"):
    out[task] = Published(
      paper.PATHOLOGICAL[task].lr, f"supplementary, pathological tasks (ICML §4.1.2){note}"
    )
  return out


@dataclasses.dataclass(frozen=True)
class Method:
  """One row of the table.

  Attributes:
    cell: a name in `cells.CELLS` or `PENDING_CELLS`.
    algorithm: a name in `algorithms.ALGORITHMS`.
    summary: what it is, in a few words (the docs' and the notebook's table).
    lr_grid: the learning rates the grid stage tries where none is published.
    published: task → the learning rate its paper gives for that task.
  """

  cell: str
  algorithm: str
  summary: str
  lr_grid: tuple[float, ...] = ()
  published: Mapping[str, Published] = dataclasses.field(default_factory=dict)

  @property
  def name(self) -> str:
    return f"{self.cell}_{self.algorithm}"

  @property
  def optimizer(self) -> str:
    return algorithms.get(self.algorithm).optimizer

  @property
  def uses_omega(self) -> bool:
    return algorithms.get(self.algorithm).uses_omega

  @property
  def available(self) -> bool:
    """Whether this build's registry has the method's cell."""
    return self.cell in cells.CELLS

  def published_for(self, task: str) -> Published | None:
    return self.published.get(task)

  def needs_grid(self, task: str) -> bool:
    return self.published_for(task) is None


_TABLE = (
  Method("rnn", "sgd_cr", "the paper's RNN, SGD-CR (clipping + Ω)", published=_paper_rnn()),
  Method("rnn", "sgd_c", "the paper's RNN, SGD-C (clipping alone)",
         published=_paper_rnn("SGD-CR's values without Ω")),
  Method("rnn", "adam_c", "the paper's RNN, Adam with norm clipping", ADAM_GRID),
  Method("irnn", "sgd_c", "ReLU RNN, identity init (Le et al. 2015), SGD-C", SGD_GRID),
  Method("orthogonal", "sgd_c", "tanh RNN, orthogonal init (Henaff et al. 2016), SGD-C",
         SGD_GRID),
  Method("lstm", "sgd_c", "LSTM (Hochreiter & Schmidhuber 1997), SGD-C", GATED_SGD_GRID),
  Method("lstm", "sgd_cr", "LSTM, SGD-CR (Ω from the transition's VJP)", GATED_SGD_GRID),
  Method("lstm", "adam_c", "LSTM, Adam with norm clipping", ADAM_GRID),
  Method("gru", "sgd_c", "GRU (Cho et al. 2014), SGD-C", GATED_SGD_GRID),
  Method("gru", "sgd_cr", "GRU, SGD-CR (Ω from the transition's VJP)", GATED_SGD_GRID),
  Method("exprnn", "adam", "expRNN, W = expm(A − Aᵀ) (Lezcano-Casado & Martínez-Rubio "
         "2019), Adam", ADAM_GRID),
  Method("lru", "adam_c", "linear recurrent unit (Orvieto et al. 2023), Adam with norm "
         "clipping", ADAM_GRID),
)  # fmt: skip

METHODS: dict[str, Method] = {m.name: m for m in _TABLE}
"""Every method, by name, in the table's order (the order of tables and figures)."""


def get(name: str) -> Method:
  if name not in METHODS:
    raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
  return METHODS[name]


def runnable() -> tuple[str, ...]:
  """The methods whose cell this build has, in the table's order (the `cpu` and `long`
  presets run these: all of them once every cell is registered)."""
  return tuple(name for name, m in METHODS.items() if m.available)


def task_setting(task: str) -> tuple[float, float]:
  """`(clip, alpha)` every method runs with on `task`: the paper's threshold and Ω weight
  for it (Figure 7's for temporal order at a fixed length; the supplementary's table for
  the arithmetic tasks). Methods without clipping or Ω ignore them (`algorithms`)."""
  if task == "temporal_order":
    return float(paper.FIGURE7.clip), float(paper.FIGURE7.alpha)
  if task not in TASKS:
    raise ValueError(f"task {task!r} has no protocol set-up; choose one of {TASKS}")
  setup = paper.PATHOLOGICAL[task]
  return float(setup.clip), float(setup.alpha)


def rnn_init(task: str) -> str:
  """The paper RNN's initialisation on `task` (other cells have their own and ignore it).

  Addition and multiplication: `basic_tanh`, as the supplementary publishes. Temporal
  order: Figure 7 publishes all three; `smart_tanh` is the one under which SGD-CR solved
  every length to 200 in `docs/results/fig7_long` (basic_tanh: 0/5 at T = 200), chosen on
  those earlier runs, not on this binary's.
  """
  return "smart_tanh" if task == "temporal_order" else paper.PATHOLOGICAL[task].init


def hparams(method: Method, task: str, lr: float) -> algorithms.HParams:
  """One run's hyper-parameters: the method's algorithm at `lr`, with the task's
  threshold, Ω weight and RNN initialisation."""
  clip, alpha = task_setting(task)
  return algorithms.hparams(method.algorithm, lr=lr, clip=clip, alpha=alpha, init=rnn_init(task))


# --- size: state size or parameters ------------------------------------------------------

MATCHES = ("state", "parameters")
"""How methods are sized against each other: `state`, every cell with the same hidden
units (the default; docs/methods.md says why), or `parameters`, each cell with the hidden
units that bring its parameter count closest to the paper RNN's at that size."""


def parameter_count(method: Method, task: str, n_hidden: int) -> int:
  """Trainable parameters of the method's network on `task` (its cell and the linear
  readout) at `n_hidden` units."""
  t, model = get_task(task), cells.get_model(method.cell)
  hp = hparams(method, task, 0.01)
  shapes = jax.eval_shape(
    lambda key: model.init(key, t.n_in, int(n_hidden), t.n_out, hp), jax.random.PRNGKey(0)
  )
  return int(sum(x.size for x in jax.tree.leaves(shapes)))


def closest_size(count, target: int, largest: int) -> int:
  """The size `n` in `[1, largest]` whose `count(n)` is closest to `target` (ties → the
  smaller), for a `count` that grows with `n`."""
  best, best_gap = 1, math.inf
  for n in range(1, int(largest) + 1):
    gap = abs(count(n) - target)
    if gap < best_gap:
      best, best_gap = n, gap
    elif count(n) > target:
      break
  return best


def hidden_units(method: Method, task: str, n_hidden: int, match: str = "state") -> int:
  """The hidden units `method` runs with on `task`: `n_hidden` when matched by state
  size; matched by parameters, the size whose count is closest to the paper RNN's at
  `n_hidden` (searched up to 4 × `n_hidden`)."""
  if match == "state":
    return int(n_hidden)
  if match != "parameters":
    raise ValueError(f"match must be one of {MATCHES}, not {match!r}")
  return _matched_units(method.name, task, int(n_hidden))


@functools.lru_cache(maxsize=None)
def _matched_units(name: str, task: str, n_hidden: int) -> int:
  target = parameter_count(METHODS["rnn_sgd_cr"], task, n_hidden)
  return closest_size(lambda n: parameter_count(METHODS[name], task, n), target, 4 * n_hidden)


# --- the grid's rule ---------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
  return float(np.median(values)) if len(values) else math.inf


def grid_summary(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
  """Per learning rate of one (method, task) grid: `lr`, `runs`, `solved`, the median
  updates to solve over its solved runs (inf if none) and the median final error (the
  10,000-sequence test every run ends with), sorted by lr."""
  by_lr: dict[float, list[Mapping[str, Any]]] = {}
  for r in rows:
    by_lr.setdefault(float(r["lr"]), []).append(r)
  out = []
  for lr in sorted(by_lr):
    rs = by_lr[lr]
    solved = [int(r["updates_to_solve"]) for r in rs if r["solved"]]
    errors = [float(r["final_error"]) for r in rs if r.get("final_error") is not None]
    out.append(
      dict(
        lr=lr,
        runs=len(rs),
        solved=len(solved),
        median_updates=_median(solved),
        median_error=_median(errors),
      )
    )
  return out


def _rank(s: Mapping[str, Any]) -> tuple:
  return (-s["solved"], s["median_updates"], s["median_error"], s["lr"])


def pick_lr(rows: Iterable[Mapping[str, Any]]) -> float:
  """The learning rate a grid picks (docs/methods.md): the most runs solved; ties →
  the fewest median updates to solve; ties (e.g. none solved) → the lowest median
  final error; ties → the smaller learning rate.

  Args:
    rows: the grid's result rows (`lr`, `solved`, `updates_to_solve`, `final_error`).
  """
  summary = grid_summary(rows)
  if not summary:
    raise ValueError("an empty grid picks nothing")
  return min(summary, key=_rank)["lr"]
