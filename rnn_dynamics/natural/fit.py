"""The natural tasks' trainer: epochs of truncated BPTT, evaluation, checkpoints.

`fit` runs epochs of shuffled songs / the text stream, evaluates every split after each
epoch, keeps each run's best-validation parameters, halves a run's learning rate when its
epoch error rose (docs/reference.md §4), checkpoints (at every epoch's end and every
`checkpoint_every_s` within one: resuming replays nothing and gives the same numbers) and
logs progress lines with an ETA. It is a stepper of the one host loop
(`rnn_dynamics.runs.loop.drive`, as the synthetic sweep's groups): a stop request (the
first Ctrl-C or SIGTERM) finishes the current segment batch, checkpoints and raises
`KeyboardInterrupt`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from rnn_dynamics import algorithms, rnn, runs
from rnn_dynamics.algorithms import HParams
from rnn_dynamics.natural.schedules import alpha_at, halve_lr
from rnn_dynamics.natural.segments import Segments, pad_segments, split_chunks
from rnn_dynamics.natural.task import NaturalTask
from rnn_dynamics.natural.trainer import SegmentMetrics, Trainer, make_trainer
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

# The algorithms of the natural-task tables (no element-wise clipping there, §4.2).
ALGORITHMS = ("sgd", "sgd_c", "sgd_cr")
SPLITS = ("train", "valid", "test")


@dataclasses.dataclass(frozen=True)
class Column:
  """One algorithm of a table: SGD (clip = ∞, α = 0), SGD-C (α = 0) or SGD-CR."""

  algorithm: str
  lr: float
  clip: float
  alpha0: float

  @property
  def clipping(self) -> algorithms.RunClipping:
    """Its runs' clipping kind, threshold and guard, as the algorithm table says."""
    return algorithms.clipping_of(self.algorithm, self.clip)


def columns(
  names: Sequence[str], lr: Callable[[str], float], clip: float, alpha0: float
) -> list[Column]:
  """SGD / SGD+C / SGD+CR as hyper-parameters of one program (a table's columns), as the
  algorithm table (`rnn_dynamics.algorithms`) says.

  Args:
    names: names among `ALGORITHMS`.
    lr: the learning rate of an algorithm (Table 1 shares one, Table 2 has one each).
    clip: the clipping threshold of SGD+C and SGD+CR (SGD: none).
    alpha0: Ω's weight (or its 1/t schedule's start) for SGD+CR.
  """
  for name in names:
    algorithms.get(name, allowed=ALGORITHMS)
  return [
    Column(
      name,
      lr=float(lr(name)),
      clip=algorithms.threshold_of(name, clip),
      alpha0=algorithms.alpha_of(name, alpha0),
    )
    for name in names
  ]


@dataclasses.dataclass
class FitResult:
  """What `fit` hands back (everything is also in the workdir).

  Attributes:
    runs: one dict per run: column, seed, best epoch and its train/valid/test scores.
    history: one dict per (run, epoch).
    best_params: stacked best-validation parameters, `[runs, ...]` numpy arrays.
    wall_s: seconds of training and evaluation over all sessions (resumes included).
    stopped: why training ended ("max_epochs", "time_budget" or "lr_floor").
  """

  runs: list[dict[str, Any]]
  history: list[dict[str, Any]]
  best_params: dict[str, np.ndarray]
  wall_s: float
  stopped: str

  def seed_models(self, seed: int = 0) -> dict[str, rnn.Params]:
    """Column (algorithm) → the best-validation parameters of its run with `seed`."""
    return {
      run["algorithm"]: rnn.Params(**{k: v[i] for k, v in self.best_params.items()})
      for i, run in enumerate(self.runs)
      if run["seed"] == seed
    }


_SUMS = ("nll", "steps", "grad_norm", "updates", "clipped", "omega", "fallback")


def _zero_sums(n_runs: int) -> dict[str, list[float]]:
  return {name: [0.0] * n_runs for name in _SUMS}


@dataclasses.dataclass
class FitState:
  """The host loop's bookkeeping, checkpointed as the JSON item `host`.

  Attributes:
    epoch: the epoch under way (1-based).
    chunk: segment batches of it done.
    lr: `[runs]` learning rates of this epoch.
    sums: `_SUMS` → `[runs]` running sums of this epoch's segment metrics.
    history: the rows of the epochs done (`FitResult.history`).
    wall_s: seconds spent over all sessions.
    best_valid, best_epoch: `[runs]` each run's best validation score and its epoch.
    stopped: why training ended ("" while it goes on).
    epoch_wall_s: the last finished epoch's seconds (None before one).
    epoch_elapsed_s: seconds spent in the epoch under way (carried over a resume).
  """

  epoch: int
  chunk: int
  lr: list[float]
  sums: dict[str, list[float]]
  history: list[dict[str, Any]]
  wall_s: float
  best_valid: list[float | None]
  best_epoch: list[int | None]
  stopped: str = ""
  epoch_wall_s: float | None = None
  epoch_elapsed_s: float = 0.0

  @classmethod
  def start(cls, lr0: np.ndarray) -> FitState:
    n = len(lr0)
    return cls(1, 0, lr0.tolist(), _zero_sums(n), [], 0.0, [None] * n, [None] * n)

  @classmethod
  def from_json(cls, d: Mapping[str, Any]) -> FitState:
    return cls(**d)

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


class _Programs:
  def __init__(self, trainer: Trainer):
    self.init = jax.jit(jax.vmap(trainer.init))
    self.chunk = jax.jit(jax.vmap(trainer.chunk, in_axes=(0, 0, None)), donate_argnums=0)
    self.evaluate = jax.jit(jax.vmap(trainer.evaluate, in_axes=(0, 0, 0, None)))


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


def score(
  config: ml_collections.ConfigDict,
  task: NaturalTask,
  params: Mapping[str, np.ndarray],
  split: Any,
) -> tuple[np.ndarray, int]:
  """`[runs]` score of stacked parameters on one whole split, as `fit` scores an epoch,
  and the number of scored steps (frames, or symbols with a target).

  The split is laid out in `config.eval_batch_size` lanes of `segment_length` steps, each
  lane from the zero state, and scored by the trainer's own `evaluate` program; `params`
  are `FitResult.best_params` (or a workdir's `best_params.npz`). This is how a table
  trained with a truncated evaluation split (`max_eval_symbols`) is scored in full.
  """
  n_real = len(next(iter(params.values())))
  n_runs, sharding = runs.pad_to(n_real), runs.runs_sharding()
  stacked = rnn.Params(**{k: jnp.asarray(v) for k, v in params.items()})
  stacked = runs.to_devices(runs.pad_runs(stacked, n_runs), sharding)
  evaluate = _Programs(make_trainer(config, task)).evaluate
  hp = runs.to_devices(np.zeros(n_runs, np.float32), sharding)  # evaluate ignores it
  segs, k = _eval_layout(config, task, split), int(config.chunk_size)
  scores, steps = _score_segments(
    evaluate, stacked, hp, segs, k, task, int(config.n_hidden), sharding
  )
  return scores[:n_real], steps


def _eval_layout(config, task: NaturalTask, split: Any) -> Segments:
  """A split as it is scored: `eval_batch_size` lanes, padded to whole chunks."""
  lanes, seg_len = int(config.eval_batch_size), int(config.segment_length)
  return pad_segments(task.segments(split, lanes, seg_len), int(config.chunk_size))


def _score_segments(evaluate, params, hp, segments: Segments, k, task, n_hidden, sharding):
  """`[runs]` score of the chained segments, chunk by chunk (the metric's unit), and the
  scored steps."""
  n_runs, lanes = len(jax.tree.leaves(params)[0]), segments.mask.shape[2]
  h = runs.to_devices(np.zeros((n_runs, lanes, n_hidden), np.float32), sharding)
  total, count = np.zeros(n_runs), np.zeros(n_runs)
  for seg in split_chunks(segments, k):
    h, nll, n = evaluate(params, h, hp, seg)
    total += runs.host(nll).astype(np.float64)
    count += runs.host(n).astype(np.float64)
  return total / np.maximum(count, 1) * task.score_scale, int(count[0])


@dataclasses.dataclass(frozen=True)
class _Epoch:
  """The fixed context of the epoch under way: its learning rates and hyper-parameters,
  its segment batches, and when it started (earlier sessions' time included)."""

  lr: np.ndarray
  hp: HParams
  chunks: list[Segments]
  t_start: float


class _Fit:
  """One `fit`, a `runs.loop` stepper: the fixed context, the device state (`state`,
  `best`), `host` and the epoch under way. One step is a segment batch, or an epoch's end
  (the evaluation of every split, the best parameters, the learning rates)."""

  def __init__(self, config, task, data, cols, checkpoint_dir, say):
    alpha_at(1.0, 1, config.alpha_schedule)  # validates the name early
    if config.lr_halving not in ("train", "valid", "none"):
      raise ValueError(f"lr_halving must be 'train', 'valid' or 'none', got {config.lr_halving!r}")
    self.config, self.task, self.data, self.say = config, task, data, say
    self.name = task.name
    self.epoch: _Epoch | None = None
    self.on_epoch = None
    grid = runs.grid(
      enumerate(cols),
      int(config.seeds),
      seed=int(config.seed),
      label=lambda col, s: dict(algorithm=col[1].algorithm, seed=s, col=col[0]),
    )
    self.labels, self.n_real = grid.labels, len(grid)
    # The runs axis is sharded over every device; it is padded with copies of the last
    # run, dropped from the results.
    self.n_runs = runs.pad_to(self.n_real)
    col_of = [cols[lab["col"]] for lab in self.labels]
    col_of += [col_of[-1]] * (self.n_runs - self.n_real)
    clip_of = [c.clipping for c in col_of]
    self.clip = np.asarray([c.clip for c in clip_of], np.float32)
    self.elementwise = np.asarray([c.elementwise for c in clip_of], np.bool_)
    self.guarded = np.asarray([c.guarded for c in clip_of], np.bool_)
    self.alpha0 = np.asarray([c.alpha0 for c in col_of], np.float32)
    self.sharding = runs.runs_sharding()
    self.programs = _Programs(make_trainer(config, task))
    self.seg_len, self.k = int(config.segment_length), int(config.chunk_size)
    self.max_epochs = int(config.max_epochs)
    self.budget = float(config.get("time_budget_s", 0) or 0)
    self.eval_segs = _eval_splits(config, task, data)

    lr0 = np.asarray([c.lr for c in col_of], np.float64)
    keys = runs.pad_runs(grid.keys, self.n_runs)
    self.state = jax.device_put(self.programs.init(keys, self.hparams(lr0, 1)), self.sharding)
    self.best = jax.tree.map(jnp.copy, self.state.params)  # the state is donated to chunks
    self.host = FitState.start(lr0)
    self.manager = None if checkpoint_dir is None else checkpoint.manager(checkpoint_dir)
    self.saves = 0
    if self.manager is not None:
      self._restore(checkpoint_dir)

  # --- set-up ----------------------------------------------------------------------------

  def hparams(self, lr: np.ndarray, epoch: int) -> HParams:
    """This epoch's per-run hyper-parameters (lr and α change per epoch, never recompile)."""
    hp = HParams(
      lr=jnp.asarray(lr, jnp.float32),
      clip=jnp.asarray(self.clip),
      alpha=jnp.asarray(alpha_at(self.alpha0, epoch, self.config.alpha_schedule), jnp.float32),
      init=jnp.full((self.n_runs,), rnn.init_id(self.config.init), jnp.int32),
      elementwise=jnp.asarray(self.elementwise),
      guarded=jnp.asarray(self.guarded),
    )
    return runs.to_devices(hp, self.sharding)

  # --- checkpoints -----------------------------------------------------------------------

  def _restore(self, checkpoint_dir) -> None:
    restored = checkpoint.restore(self.manager, (self.state, self.best), self.sharding)
    self.saves = self.manager.latest_step() or 0
    if restored is None:
      return
    (self.state, self.best), self.host = restored.state, FitState.from_json(restored.host)
    h = self.host
    self.say(f"{self.task.name}: resumed at epoch {h.epoch}, chunk {h.chunk} ({checkpoint_dir})")

  def save(self) -> None:
    self._clock()
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
    self.t_session, self.wall0 = time.time(), float(self.host.wall_s)
    events = None
    if events_dir is not None:
      # Epoch scores are logged at the epoch (x-axis); resumed after the epochs done.
      done = [self.host.epoch - 1] * len(self.labels)
      events = runs.events.EventLog.for_runs(events_dir, map(_public, self.labels), done)
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
      if self._next_epoch_past_budget():
        h.stopped = "time_budget"
        return loop.Step(units=0)
      self.epoch = self._start_epoch()
    e = self.epoch
    if h.chunk < len(e.chunks):
      self.state, m = self.programs.chunk(self.state, e.hp, e.chunks[h.chunk])
      _accumulate(h.sums, m)
      h.chunk += 1
      h.epoch_elapsed_s = time.time() - e.t_start
      return loop.Step(units=1, report=h.chunk == len(e.chunks))
    rows = self._end_epoch(e.hp, e.lr, e.t_start)
    self.epoch = None
    if self.on_epoch is not None:
      self.on_epoch(self.result())
    scalars = {k: np.asarray([_nan(r[k]) for r in rows]) for k in _MONITORED}
    at = np.asarray([r["epoch"] for r in rows])
    return loop.Step(units=0, save=True, new_phase=True, scalars=scalars, at=at)

  def position(self) -> str:
    return f"epoch {self.host.epoch}, chunk {self.host.chunk}"

  def _start_epoch(self) -> _Epoch:
    """The epoch under way's fixed context (at its start, or where a resume left it)."""
    h = self.host
    lr = np.asarray(h.lr, np.float64)
    segs = _epoch_layout(self.config, self.task, self.data["train"], h.epoch)
    return _Epoch(
      lr=lr,
      hp=self.hparams(lr, h.epoch),
      chunks=list(split_chunks(segs, self.k)),
      t_start=time.time() - float(h.epoch_elapsed_s),
    )

  def _clock(self) -> None:
    self.host.wall_s = self.wall0 + (time.time() - self.t_session)

  def _next_epoch_past_budget(self) -> bool:
    h = self.host
    return bool(
      h.chunk == 0 and self.budget and h.epoch_wall_s and h.wall_s + h.epoch_wall_s > self.budget
    )

  def progress_line(self, progress: runs.Progress, now: float) -> str:
    h, name, epoch = self.host, self.task.name, self.host.epoch
    ci, n_chunks = h.chunk - 1, len(self.epoch.chunks)
    rate = progress.rate(now)
    run_loss = _ratio(h.sums["nll"], h.sums["steps"]) * self.task.score_scale
    left_epoch = progress.eta(n_chunks - ci - 1, now)
    per_epoch = h.epoch_wall_s or (n_chunks / max(rate, 1e-9) * 1.3)
    eta = left_epoch + (self.max_epochs - epoch) * per_epoch
    if self.budget:  # the budget stops it at the first epoch end past `budget − epoch`
      spent = self.wall0 + (now - self.t_session)
      eta = min(eta, max(self.budget - spent, left_epoch))
    steps = rate * self.k * self.seg_len * int(self.config.batch_size) * self.n_real
    return (
      f"{name} epoch {epoch}/{self.max_epochs} chunk {ci + 1}/{n_chunks} | "
      f"{steps:,.0f} run-steps/s | train "
      + " ".join(f"{x:.3f}" for x in run_loss[: self.n_real])
      + f" | epoch ETA {format_duration(left_epoch)}, total ≤ {format_duration(eta)}"
    )

  # --- the end of an epoch ---------------------------------------------------------------

  def _evaluate(self, params, split: str, hp: HParams) -> np.ndarray:
    """`[runs]` score of the chained segments of a split (the metric's unit)."""
    scores, _ = _score_segments(
      self.programs.evaluate,
      params,
      hp,
      self.eval_segs[split],
      self.k,
      self.task,
      int(self.config.n_hidden),
      self.sharding,
    )
    return scores

  def _end_epoch(self, hp: HParams, lr: np.ndarray, t_epoch: float) -> list[dict[str, Any]]:
    """Evaluates every split with the epoch's final parameters, keeps the best ones,
    halves learning rates, records the epoch and moves `host` on to the next; returns
    the epoch's history rows."""
    h, epoch = self.host, self.host.epoch
    running = _ratio(h.sums["nll"], h.sums["steps"]) * self.task.score_scale
    scores = {split: self._evaluate(self.state.params, split, hp) for split in SPLITS}
    new_lr = _next_lr(self.config.lr_halving, h, lr, running, scores["valid"])
    best_valid, best_epoch = list(h.best_valid), list(h.best_epoch)
    improved = np.zeros(self.n_runs, bool)
    for i, v in enumerate(scores["valid"]):
      if np.isfinite(v) and (best_valid[i] is None or v < best_valid[i]):
        improved[i], best_valid[i], best_epoch[i] = True, float(v), epoch
    self.best = jax.tree.map(
      lambda new, old: jnp.where(improved.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
      self.state.params,
      self.best,
    )
    epoch_wall = time.time() - t_epoch
    updates = runs.host(self.state.updates)
    alpha = runs.host(hp.alpha)
    rows = _history_rows(self.labels, h, lr, alpha, running, scores, updates, epoch_wall)
    self.say(
      f"{self.task.name} epoch {epoch} done in {format_duration(epoch_wall)}: valid "
      + " ".join(
        f"{lab['algorithm']}/{lab['seed']}={scores['valid'][i]:.3f}"
        for i, lab in enumerate(self.labels)
      )
      + (f" | lr halved for {int((new_lr < lr).sum())} run(s)" if (new_lr < lr).any() else "")
    )
    h.history.extend(rows)
    h.best_valid, h.best_epoch = best_valid, best_epoch
    h.epoch, h.chunk, h.lr, h.sums = epoch + 1, 0, new_lr.tolist(), _zero_sums(self.n_runs)
    h.epoch_elapsed_s, h.epoch_wall_s = 0.0, epoch_wall
    self._clock()
    min_lr = float(self.config.get("min_lr", 0) or 0)
    if min_lr and (new_lr < min_lr).all():
      h.stopped = "lr_floor"
    return rows

  def result(self) -> FitResult:
    best = {f: runs.host(v)[: self.n_real] for f, v in vars(self.best).items()}
    return _result(self.labels, self.task.name, self.host, runs.host(self.state.skipped), best)


def _eval_splits(config, task: NaturalTask, data: Mapping[str, Any]) -> dict[str, Segments]:
  """The evaluation layouts of every split (fixed: built once); the training score on at
  most `train_eval_limit` songs / symbols."""
  train_eval = data["train"]
  limit = int(config.get("train_eval_limit", 0) or 0)
  if limit:
    train_eval = train_eval[:limit]
  splits = (("train", train_eval), ("valid", data["valid"]), ("test", data["test"]))
  return {s: _eval_layout(config, task, d) for s, d in splits}


def _epoch_layout(config, task: NaturalTask, train: Any, epoch: int) -> Segments:
  """The training layout of an epoch: songs shuffled by (seed, epoch); text as it is."""
  order = None
  if task.kind == "music":
    order = np.random.default_rng([int(config.seed), epoch]).permutation(len(train))
  lanes, seg_len = int(config.batch_size), int(config.segment_length)
  return pad_segments(task.segments(train, lanes, seg_len, order), int(config.chunk_size))


def _next_lr(rule: str, h: FitState, lr: np.ndarray, running, valid) -> np.ndarray:
  """The paper's rule (`halve_lr`) on the running training error ('train') or the
  validation one ('valid'), against the previous epoch's; 'none' keeps `lr`."""
  if rule == "none":
    return lr.copy()
  metric = "train_running" if rule == "train" else "valid"
  prev_rows = {r["run"]: r for r in h.history if r["epoch"] == h.epoch - 1}
  prev = np.asarray([_nan(prev_rows.get(i, {}).get(metric)) for i in range(len(lr))])
  return halve_lr(lr, prev, running if metric == "train_running" else valid)


def _history_rows(labels, h: FitState, lr, alpha, running, scores, updates, epoch_wall):
  """The epoch's row of every real run (padded runs are not recorded)."""
  per_update = lambda name: _ratio(h.sums[name], h.sums["updates"])
  grad_norm, clip_rate, omega = per_update("grad_norm"), per_update("clipped"), per_update("omega")
  return [
    dict(
      run=i,
      algorithm=lab["algorithm"],
      seed=lab["seed"],
      epoch=h.epoch,
      lr=float(lr[i]),
      alpha=float(alpha[i]),
      train_running=_finite(running[i]),
      train=_finite(scores["train"][i]),
      valid=_finite(scores["valid"][i]),
      test=_finite(scores["test"][i]),
      grad_norm=_finite(grad_norm[i]),
      clip_rate=_finite(clip_rate[i]),
      omega=_finite(omega[i]),
      guard_fired=int(h.sums["fallback"][i]),
      updates=int(updates[i]),
      epoch_wall_s=epoch_wall,
    )
    for i, lab in enumerate(labels)
  ]


def _result(labels, dataset: str, h: FitState, skipped, best) -> FitResult:
  """Each run's best-validation epoch and its scores, the history, the best parameters."""
  rows = []
  for i, lab in enumerate(labels):
    e = h.best_epoch[i]
    row = next((r for r in h.history if r["run"] == i and r["epoch"] == e), None)
    rows.append(
      dict(
        lab,
        dataset=dataset,
        best_epoch=e,
        train=None if row is None else row["train"],
        valid=None if row is None else row["valid"],
        test=None if row is None else row["test"],
        epochs=sum(r["run"] == i for r in h.history),
        skipped_updates=int(skipped[i]),
      )
    )
  return FitResult(rows, list(h.history), best, float(h.wall_s), h.stopped)


# An epoch's history columns that each run's TensorBoard series shows.
_MONITORED = (
  "train_running", "train", "valid", "test", "lr", "grad_norm", "clip_rate", "omega",
  "guard_fired",
)  # fmt: skip


def _public(label: Mapping[str, Any]) -> dict[str, Any]:
  """A run's labels without the internal column index."""
  return {k: v for k, v in label.items() if k != "col"}


def _accumulate(sums: dict[str, list[float]], m: SegmentMetrics) -> None:
  """Adds a chunk's `[runs, K]` segment metrics to the epoch's running sums (in place)."""
  loss, n = runs.host(m.loss).astype(np.float64), runs.host(m.n_valid).astype(np.float64)
  real = n > 0  # padded, empty segments make no update
  good = real & np.isfinite(loss)
  metric = lambda x: runs.host(x).astype(np.float64)
  add = dict(
    nll=np.where(good, loss * n, 0.0),
    steps=np.where(good, n, 0.0),
    grad_norm=np.where(real, np.nan_to_num(metric(m.grad_norm)), 0.0),
    updates=real.astype(np.float64),
    clipped=np.where(real, metric(m.clipped), 0.0),
    omega=np.where(real, np.nan_to_num(metric(m.omega)), 0.0),
    fallback=np.where(real, metric(m.fallback), 0.0),
  )
  for name, a in add.items():
    sums[name] = (np.asarray(sums[name], np.float64) + a.sum(axis=1)).tolist()


def _ratio(num, den) -> np.ndarray:
  num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
  return np.where(den > 0, num / np.maximum(den, 1e-300), np.nan)


def _nan(x) -> float:
  return math.nan if x is None else float(x)


def _finite(x) -> float | None:
  x = float(x)
  return x if math.isfinite(x) else None
