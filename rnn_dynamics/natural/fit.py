"""The natural tasks' trainer: epochs of truncated BPTT, evaluation, checkpoints.

`fit` runs epochs of shuffled songs / the text stream, evaluates every split after each
epoch, keeps each run's best-validation parameters, halves a run's learning rate when its
epoch error rose (docs/reference.md §4), checkpoints (at every epoch's end and every
`checkpoint_every_s` within one: resuming replays nothing and gives the same numbers) and
logs progress lines with an ETA. It is a stepper of the one host loop
(`rnn_dynamics.runs.loop.drive`, as the synthetic sweep's groups): a stop request (the
first Ctrl-C or SIGTERM) finishes the current segment batch, checkpoints and raises
`KeyboardInterrupt`.

What it builds on, a module each: the table's runs and their hyper-parameters per epoch
(`columns.RunTable`), the scores of every split (`scoring.SplitScores`) and the record of
the epochs that a checkpoint keeps beside the runs' state (`epochs.FitState`).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from rnn_dynamics import runs
from rnn_dynamics.algorithms import HParams
from rnn_dynamics.natural.columns import ALGORITHMS, Column, RunTable, columns
from rnn_dynamics.natural.epochs import (
  FitResult,
  FitState,
  fit_result,
  history_rows,
  monitored,
  next_lr,
)
from rnn_dynamics.natural.scoring import SPLITS, SplitScores, score
from rnn_dynamics.natural.segments import Segments, pad_segments, split_chunks
from rnn_dynamics.natural.task import NaturalTask
from rnn_dynamics.natural.trainer import Trainer, make_trainer
from rnn_dynamics.runs import checkpoint, loop
from rnn_dynamics.runs.progress import format_duration

if TYPE_CHECKING:
  from rnn_dynamics.workdir import Workdir

__all__ = [
  "ALGORITHMS",
  "Column",
  "FitResult",
  "FitState",
  "columns",
  "fit",
  "SPLITS",
  "fit_in_workdir",
  "score",
]


class _Programs:
  """The compiled training programs (the scores' is `SplitScores`')."""

  def __init__(self, trainer: Trainer):
    self.init = jax.jit(jax.vmap(trainer.init))
    self.chunk = jax.jit(jax.vmap(trainer.chunk, in_axes=(0, 0, None)), donate_argnums=0)


def fit(
  config: ml_collections.ConfigDict,
  task: NaturalTask,
  data: Mapping[str, Any],
  columns: Sequence[Column],
  *,
  checkpoint_dir: str | Path | None = None,
  on_epoch: Callable[[FitResult], None] | None = None,
  on_progress: Callable[[str], None] | None = None,
  events_dir: str | Path | None = None,
) -> FitResult:
  """Trains every (column, seed) run for `max_epochs`, evaluating every split per epoch.

  Args:
    config: `make_trainer`'s fields plus `segment_length`, `chunk_size` (segments per
      compiled call), `eval_batch_size` (lanes when evaluating), `max_epochs`,
      `alpha_schedule`, `lr_halving` ('train': halve when the epoch's running training
      error rose, the paper's rule; 'valid': when the validation error rose; 'none'),
      `min_lr` (stop once every run's lr fell below it; 0: never), `time_budget_s`
      (0: none; else no new epoch starts once the next would end past it),
      `train_eval_limit` (evaluate the training score on at most this many songs /
      symbols; 0: all), `seeds`, `seed`, `checkpoint_every_s`, `progress_every_s`.
    task: the task.
    data: `{"train", "valid", "test"}` → a list of rolls or a symbol stream.
    columns: the algorithms; runs are columns × seeds, seeds paired across columns
      (same initial weights, same data order).
    checkpoint_dir: Orbax checkpoints (resumed from when present); None: no resume.
    on_epoch: called with the results so far after every epoch (to write tables).
    on_progress: receives progress lines (default `absl.logging.info`).
    events_dir: where each run's epoch scores go as TensorBoard event files
      (`runs.events`; None: nowhere).

  Returns:
    A `FitResult`.

  Raises:
    KeyboardInterrupt: on a stop request (`runs.stop`), after a checkpoint.
  """
  fitting = _Fit(config, task, data, columns, checkpoint_dir, on_progress or logging.info)
  return fitting.run(on_epoch, events_dir)


def fit_in_workdir(
  workdir: Workdir,
  config: ml_collections.ConfigDict,
  task: NaturalTask,
  data: Mapping[str, Any],
  columns: Sequence[Column],
  write_outputs: Callable[[FitResult], str],
) -> tuple[FitResult, str]:
  """`fit` as a table's binary runs it: checkpointed in the workdir's `train` group (a
  rerun resumes), the table's files written by `write_outputs` after every epoch and once
  more when it returns.

  Returns:
    The `FitResult` and what the last `write_outputs` returned (the table's Markdown).
  """
  res = fit(
    config,
    task,
    data,
    columns,
    checkpoint_dir=workdir.checkpoint_dir("train"),
    on_epoch=write_outputs,
    events_dir=workdir.events_dir("train"),
  )
  return res, write_outputs(res)


@dataclasses.dataclass(frozen=True)
class _Epoch:
  """The fixed context of the epoch under way: its learning rates and hyper-parameters,
  its segment batches, and when it started (earlier sessions' time included)."""

  lr: np.ndarray
  hp: HParams
  chunks: list[Segments]
  t_start: float

  @classmethod
  def start(cls, config, task: NaturalTask, train: Any, table: RunTable, h: FitState) -> _Epoch:
    """The epoch `h` is at, from its start or where a resume left it: its songs shuffled
    by (seed, epoch) (text as it is), in segment batches of `chunk_size`."""
    lr = np.asarray(h.lr, np.float64)
    segs = _epoch_layout(config, task, train, h.epoch)
    return cls(
      lr=lr,
      hp=table.hparams(lr, h.epoch),
      chunks=list(split_chunks(segs, int(config.chunk_size))),
      t_start=time.time() - float(h.epoch_elapsed_s),
    )


class _Clock:
  """A fit's seconds over all its sessions (this one started now, after `spent_before`),
  against its time budget (`time_budget_s`; 0: none)."""

  def __init__(self, budget: float, spent_before: float):
    self.budget, self.wall0, self.t_session = budget, spent_before, time.time()

  def spent(self, now: float | None = None) -> float:
    return self.wall0 + ((time.time() if now is None else now) - self.t_session)

  def next_epoch_past_budget(self, h: FitState) -> bool:
    """Whether the epoch about to start (`h` at its chunk 0) would end past the budget,
    if it takes as long as the last one."""
    return bool(
      h.chunk == 0 and self.budget and h.epoch_wall_s and h.wall_s + h.epoch_wall_s > self.budget
    )

  def eta(self, eta: float, left_epoch: float, now: float) -> float:
    """The ETA `eta` with the budget's stop: at the first epoch end past it."""
    if self.budget:
      eta = min(eta, max(self.budget - self.spent(now), left_epoch))
    return eta


class _Fit:
  """One `fit`, a `runs.loop` stepper: the runs (`table`), their device state (`state`,
  `best`), the record of their epochs (`host`) and the epoch under way. One step is a
  segment batch, or an epoch's end (the evaluation of every split, the best parameters,
  the learning rates)."""

  def __init__(self, config, task, data, cols, checkpoint_dir, say):
    if config.lr_halving not in ("train", "valid", "none"):
      raise ValueError(f"lr_halving must be 'train', 'valid' or 'none', got {config.lr_halving!r}")
    self.config, self.task, self.data, self.say = config, task, data, say
    self.name = task.name
    self.epoch: _Epoch | None = None
    self.on_epoch = None
    self.table = RunTable(cols, config)
    trainer = make_trainer(config, task)
    self.programs = _Programs(trainer)
    self.max_epochs = int(config.max_epochs)
    self.scores = SplitScores(config, task, data, trainer, self.table.sharding)
    r = self.table
    self.state = jax.device_put(self.programs.init(r.keys, r.hparams(r.lr0, 1)), r.sharding)
    self.best = jax.tree.map(jnp.copy, self.state.params)  # the state is donated to chunks
    self.host = FitState.start(r.lr0)
    self.manager = None if checkpoint_dir is None else checkpoint.manager(checkpoint_dir)
    self.saves = 0
    if self.manager is not None:
      self._restore(checkpoint_dir)

  # --- checkpoints -----------------------------------------------------------------------

  def _restore(self, checkpoint_dir) -> None:
    restored = checkpoint.restore(self.manager, (self.state, self.best), self.table.sharding)
    self.saves = self.manager.latest_step() or 0
    if restored is None:
      return
    (self.state, self.best), self.host = restored.state, FitState.from_json(restored.host)
    h = self.host
    self.say(f"{self.task.name}: resumed at epoch {h.epoch}, chunk {h.chunk} ({checkpoint_dir})")

  def save(self) -> None:
    self.host.wall_s = self.clock.spent()
    if self.manager is None:
      return
    self.saves += 1
    checkpoint.save(
      self.manager, self.saves, state=(self.state, self.best), host=self.host.to_json()
    )

  # --- the stepper (`runs.loop.Stepper`) -------------------------------------------------

  def run(self, on_epoch, events_dir=None) -> FitResult:
    """Drives the epochs to the end (`runs.loop.drive`), then a last checkpoint."""
    self.on_epoch = on_epoch
    self.clock = _Clock(float(self.config.get("time_budget_s", 0) or 0), float(self.host.wall_s))
    events = None
    if events_dir is not None:
      # Epoch scores are logged at the epoch (x-axis); resumed after the epochs done.
      done = [self.host.epoch - 1] * self.table.n_real
      events = runs.events.EventLog.for_runs(events_dir, self.table.public_labels(), done)
    # `checkpoint_every_s` 0 saves after every segment batch, as for the sweep; every
    # epoch's end is saved anyway.
    loop.drive(
      self,
      checkpoint_every_s=float(self.config.checkpoint_every_s),
      progress_every_s=float(self.config.progress_every_s),
      say=self.say,
      events=events,
    )
    if not self.host.stopped:
      self.host.stopped = "max_epochs"
    self.save()
    return self.result()

  def done(self) -> bool:
    return self.host.epoch > self.max_epochs or bool(self.host.stopped)

  def step(self) -> loop.Step:
    """One segment batch of the epoch under way, or its end (evaluation) after the last."""
    h = self.host
    if self.epoch is None:
      if self.clock.next_epoch_past_budget(h):
        h.stopped = "time_budget"
        return loop.Step(units=0)
      self.epoch = _Epoch.start(self.config, self.task, self.data["train"], self.table, h)
    e = self.epoch
    if h.chunk < len(e.chunks):
      self.state, m = self.programs.chunk(self.state, e.hp, e.chunks[h.chunk])
      h.accumulate(m)
      h.chunk += 1
      h.epoch_elapsed_s = time.time() - e.t_start
      return loop.Step(units=1, report=h.chunk == len(e.chunks))
    rows = self._end_epoch(e)
    self.epoch = None
    if self.on_epoch is not None:
      self.on_epoch(self.result())
    at = np.asarray([r["epoch"] for r in rows])
    return loop.Step(units=0, save=True, new_phase=True, scalars=monitored(rows), at=at)

  def position(self) -> str:
    return f"epoch {self.host.epoch}, chunk {self.host.chunk}"

  def progress_line(self, progress: runs.Progress, now: float) -> str:
    h, name, epoch, n_real = self.host, self.task.name, self.host.epoch, self.table.n_real
    ci, n_chunks = h.chunk - 1, len(self.epoch.chunks)
    rate = progress.rate(now)
    run_loss = h.running(self.task.score_scale)
    left_epoch = progress.eta(n_chunks - ci - 1, now)
    per_epoch = h.epoch_wall_s or (n_chunks / max(rate, 1e-9) * 1.3)
    eta = self.clock.eta(left_epoch + (self.max_epochs - epoch) * per_epoch, left_epoch, now)
    c = self.config
    steps = rate * int(c.chunk_size) * int(c.segment_length) * int(c.batch_size) * n_real
    return (
      f"{name} epoch {epoch}/{self.max_epochs} chunk {ci + 1}/{n_chunks} | "
      f"{steps:,.0f} run-steps/s | train "
      + " ".join(f"{x:.3f}" for x in run_loss[:n_real])
      + f" | epoch ETA {format_duration(left_epoch)}, total ≤ {format_duration(eta)}"
    )

  # --- an epoch's end -------------------------------------------------------------------

  def _end_epoch(self, e: _Epoch) -> list[dict[str, Any]]:
    """Evaluates every split with the epoch's final parameters, keeps the best ones,
    halves learning rates, records the epoch and moves `host` on to the next; returns
    the epoch's history rows."""
    h, epoch = self.host, self.host.epoch
    running = h.running(self.task.score_scale)
    scores = self.scores(self.state.params, e.hp)
    new_lr = next_lr(self.config.lr_halving, h, e.lr, running, scores["valid"])
    improved = h.improve(scores["valid"])
    self.best = _keep_best(self.best, self.state.params, improved)
    epoch_wall = time.time() - e.t_start
    updates, alpha = runs.host(self.state.updates), runs.host(e.hp.alpha)
    rows = history_rows(self.table.labels, h, e.lr, alpha, running, scores, updates, epoch_wall)
    self.say(
      _epoch_line(self.name, epoch, epoch_wall, self.table.labels, scores["valid"], e.lr, new_lr)
    )
    h.close_epoch(rows, new_lr, epoch_wall)
    h.wall_s = self.clock.spent()
    min_lr = float(self.config.get("min_lr", 0) or 0)
    if min_lr and (new_lr < min_lr).all():
      h.stopped = "lr_floor"
    return rows

  def result(self) -> FitResult:
    best = {f: runs.host(v)[: self.table.n_real] for f, v in vars(self.best).items()}
    skipped = runs.host(self.state.skipped)
    return fit_result(self.table.labels, self.task.name, self.host, skipped, best)


def _epoch_layout(config, task: NaturalTask, train: Any, epoch: int) -> Segments:
  """The training layout of an epoch: songs shuffled by (seed, epoch); text as it is."""
  order = None
  if task.kind == "music":
    order = np.random.default_rng([int(config.seed), epoch]).permutation(len(train))
  lanes, seg_len = int(config.batch_size), int(config.segment_length)
  return pad_segments(task.segments(train, lanes, seg_len, order), int(config.chunk_size))


def _epoch_line(name: str, epoch: int, wall_s: float, labels, valid, lr, new_lr) -> str:
  """The line that says an epoch ended: its time, each run's validation score, and how
  many runs' learning rates it halved."""
  return (
    f"{name} epoch {epoch} done in {format_duration(wall_s)}: valid "
    + " ".join(f"{lab['algorithm']}/{lab['seed']}={valid[i]:.3f}" for i, lab in enumerate(labels))
    + (f" | lr halved for {int((new_lr < lr).sum())} run(s)" if (new_lr < lr).any() else "")
  )


def _keep_best(best: Any, params: Any, improved: np.ndarray) -> Any:
  """Each run's best parameters: `params` where the run `improved`, else `best`."""
  return jax.tree.map(
    lambda new, old: jnp.where(improved.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
    params,
    best,
  )
