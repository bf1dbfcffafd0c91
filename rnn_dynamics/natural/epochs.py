"""A fit's record of its epochs, on the host: what is checkpointed beside the runs' state.

`FitState` is the host loop's bookkeeping (the JSON item `host` of a checkpoint): the
epoch under way and the running sums of its segment metrics, each run's learning rate,
the history (one row per run and epoch: its running training score, every split's score,
gradient statistics), each run's best validation epoch, and the time spent. An epoch's
end turns the sums and the splits' scores into history rows (`history_rows`), keeps each
run's best epoch (`FitState.improve`), halves learning rates by the paper's rule
(`next_lr`) and starts the next epoch (`FitState.close_epoch`); `fit_result` reads the
`FitResult` off the record.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import numpy as np

from rnn_dynamics import rnn, runs
from rnn_dynamics.natural.schedules import halve_lr
from rnn_dynamics.natural.trainer import SegmentMetrics

__all__ = ["FitResult", "FitState", "fit_result", "history_rows", "monitored", "next_lr"]


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

  def accumulate(self, m: SegmentMetrics) -> None:
    """Adds a chunk's `[runs, K]` segment metrics to the epoch's running sums."""
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
      self.sums[name] = (np.asarray(self.sums[name], np.float64) + a.sum(axis=1)).tolist()

  def running(self, score_scale: float) -> np.ndarray:
    """`[runs]` the epoch's running training score so far (the task's unit)."""
    return _ratio(self.sums["nll"], self.sums["steps"]) * score_scale

  def improve(self, valid: np.ndarray) -> np.ndarray:
    """Records this epoch as the best of the runs whose (finite) validation score `valid`
    beats their best so far; returns which runs it is."""
    best_valid, best_epoch = list(self.best_valid), list(self.best_epoch)
    improved = np.zeros(len(valid), bool)
    for i, v in enumerate(valid):
      if np.isfinite(v) and (best_valid[i] is None or v < best_valid[i]):
        improved[i], best_valid[i], best_epoch[i] = True, float(v), self.epoch
    self.best_valid, self.best_epoch = best_valid, best_epoch
    return improved

  def close_epoch(self, rows: list[dict[str, Any]], lr: np.ndarray, wall_s: float) -> None:
    """Ends the epoch under way with its history `rows`, and starts the next one at the
    learning rates `lr`; `wall_s` is what the epoch took."""
    self.history.extend(rows)
    self.epoch, self.chunk, self.lr, self.sums = self.epoch + 1, 0, lr.tolist(), _zero_sums(len(lr))
    self.epoch_elapsed_s, self.epoch_wall_s = 0.0, wall_s


def next_lr(rule: str, h: FitState, lr: np.ndarray, running, valid) -> np.ndarray:
  """The paper's rule (`halve_lr`) on the running training error ('train') or the
  validation one ('valid'), against the previous epoch's; 'none' keeps `lr`."""
  if rule == "none":
    return lr.copy()
  metric = "train_running" if rule == "train" else "valid"
  prev_rows = {r["run"]: r for r in h.history if r["epoch"] == h.epoch - 1}
  prev = np.asarray([_nan(prev_rows.get(i, {}).get(metric)) for i in range(len(lr))])
  return halve_lr(lr, prev, running if metric == "train_running" else valid)


def history_rows(labels, h: FitState, lr, alpha, running, scores, updates, epoch_wall):
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


def fit_result(labels, dataset: str, h: FitState, skipped, best) -> FitResult:
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


def monitored(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
  """An epoch's history `rows` as each run's TensorBoard series shows them: column →
  `[runs]` (NaN where a score is None)."""
  return {k: np.asarray([_nan(r[k]) for r in rows]) for k in _MONITORED}


def _ratio(num, den) -> np.ndarray:
  num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
  return np.where(den > 0, num / np.maximum(den, 1e-300), np.nan)


def _nan(x) -> float:
  return math.nan if x is None else float(x)


def _finite(x) -> float | None:
  x = float(x)
  return x if math.isfinite(x) else None
