"""A group's record on the host: its bookkeeping, its traces, and the rows they give.

What a checkpoint keeps beside the run state: `Bookkeeping` (the chunk count and each
run's last full test, the JSON item `host`) and `Traces` (per-chunk summaries of every
run, the item `traces`); `save_checkpoint` and `restore_checkpoint` write and read the
three. From them and the run state come one row per run: while the
group trains (`snapshot_rows`, the workdir's progress files) and once every run is
decided (`result_row`, `GroupResult.rows`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from rnn_dynamics import runs
from rnn_dynamics.runs import checkpoint
from rnn_dynamics.synthetic.train import RunState

__all__ = [
  "LYAPUNOV_FIELDS",
  "TRACE_FIELDS",
  "Bookkeeping",
  "Traces",
  "exponent_fields",
  "restore_checkpoint",
  "result_row",
  "save_checkpoint",
  "snapshot_rows",
]

# The top Lyapunov exponents at the end of each chunk, λ_1 (the largest) first: as many
# as `config.lyapunov_k` asks (at most these five), NaN beyond it and when it is 0.
LYAPUNOV_FIELDS = tuple(f"lyapunov_{i}" for i in range(1, 6))

# Per-chunk summaries kept for every run (the "traces"). A field added here reads NaN
# for the chunks a checkpoint written before it holds (`Traces`), so a group resumes.
TRACE_FIELDS = (
  "step",
  "loss",
  "grad_norm",
  "grad_norm_max",
  "guard_fired",
  "clip_rate",
  "omega",
  "train_error",
  "screen_error",
  "spectral_radius",
  *LYAPUNOV_FIELDS,
)


def exponent_fields(exponents_K, nan) -> dict[str, Any]:
  """The `LYAPUNOV_FIELDS` of one chunk from its `[k]` exponents (k ≤ 5; `nan` fills
  the rest: a NaN of the caller's array type, traced or not)."""
  k = exponents_K.shape[-1]
  if k > len(LYAPUNOV_FIELDS):
    raise ValueError(f"the traces keep at most {len(LYAPUNOV_FIELDS)} exponents, got k = {k}")
  return {f: exponents_K[..., i] if i < k else nan for i, f in enumerate(LYAPUNOV_FIELDS)}


@dataclasses.dataclass
class Bookkeeping:
  """A group's host-side state, checkpointed as the JSON item `host`.

  Attributes:
    chunk: chunks done (the next chunk's index: it seeds the chunk's data).
    final_mistakes: per padded run, the mistakes of its last full test (None before one).
    worst: per padded run, `[length, error]` of its worst nominal length in that test
      (None before one, and for a single length).
    wall_s: seconds spent on the group up to the checkpoint, over every session
      (checkpoints written before the field existed start it at 0).
  """

  chunk: int
  final_mistakes: list[int | None]
  worst: list[list | None]
  wall_s: float = 0.0

  @classmethod
  def start(cls, n_padded: int) -> Bookkeeping:
    return cls(0, [None] * n_padded, [None] * n_padded)

  @classmethod
  def from_json(cls, d: Mapping[str, Any]) -> Bookkeeping:
    wall = float(d.get("wall_s", 0.0))
    return cls(int(d["chunk"]), list(d["final_mistakes"]), list(d["worst"]), wall)

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  def record_test(self, run: int, mistakes: np.ndarray, counts: np.ndarray, lo: int) -> None:
    """Records run `run`'s full test: its mistakes and sequences per nominal length (the
    lengths from `lo` on)."""
    self.final_mistakes[run] = int(mistakes.sum())
    self.worst[run] = _worst_length(mistakes, counts, lo)


class Traces:
  """Per-chunk summaries (`TRACE_FIELDS`) of every padded run: one `[padded runs]` column
  per chunk and field, NaN where a run was frozen or not in the program.

  `columns` (e.g. a checkpoint's traces) may lack fields added since it was written: they
  read NaN for its chunks. Fields it has that `TRACE_FIELDS` no longer lists are dropped.
  """

  def __init__(self, n_padded: int, columns: Mapping[str, Sequence[np.ndarray]] | None = None):
    self.n_padded = n_padded
    columns = columns or {}
    n_chunks = len(columns["step"]) if "step" in columns else 0
    missing = lambda: [np.full(n_padded, np.nan, np.float32) for _ in range(n_chunks)]
    self.columns = {f: list(columns[f]) if f in columns else missing() for f in TRACE_FIELDS}

  def append(
    self, record: Mapping[str, np.ndarray], active: np.ndarray, rows: np.ndarray, group_runs
  ) -> dict[str, np.ndarray]:
    """Adds a chunk's `record` (per program row; NaN where not `active`) for the group's
    runs `group_runs` held in the program's `rows`; returns the chunk's columns."""
    for f in TRACE_FIELDS:
      column = np.full(self.n_padded, np.nan, np.float32)
      column[group_runs] = np.where(active, record[f], np.nan)[rows]
      self.columns[f].append(column)
    return {f: self.columns[f][-1] for f in TRACE_FIELDS}

  def stacked(self) -> dict[str, np.ndarray]:
    """`[chunks, padded runs]` float32 arrays (an empty group gives `[0, padded runs]`)."""
    return {
      f: np.stack(v).astype(np.float32) if v else np.zeros((0, self.n_padded), np.float32)
      for f, v in self.columns.items()
    }

  def per_run(self, n_runs: int) -> dict[str, np.ndarray]:
    """`[runs, chunks]` arrays of the real runs (`GroupResult.traces`)."""
    return {f: a.T[:n_runs] for f, a in self.stacked().items()}


def save_checkpoint(manager, state: RunState, book: Bookkeeping, traces: Traces) -> None:
  """Checkpoints a group's run `state` (on its devices) with its record, as of chunk
  `book.chunk` (`runs.checkpoint.save`)."""
  checkpoint.save(manager, book.chunk, state=state, host=book.to_json(), traces=traces.stacked())


def restore_checkpoint(manager, like: RunState, sharding):
  """`(state, book, traces)` of a group's latest checkpoint, its run state on the host
  with `like`'s shapes and dtypes; None where it has none."""
  restored = checkpoint.restore(manager, like, sharding, traces=True)
  if restored is None:
    return None
  # A checkpoint written before a field was added lacks it: `Traces` fills it with NaN.
  columns = {f: np.asarray(v) for f, v in restored.traces.items()}
  traces = Traces(len(like.step), columns)
  return jax.tree.map(runs.host, restored.state), Bookkeeping.from_json(restored.host), traces


def snapshot_rows(labels, full: RunState, book: Bookkeeping, traces: Traces, eval_size: int):
  """One row per run of a group still training: its labels, `updates_done`, `solved`,
  `updates_to_solve`, `diverged`, the latest and best screen error, and the error of its
  last full test (None before its first)."""
  n_padded = len(book.final_mistakes)
  screen = np.asarray(traces.columns["screen_error"], np.float64).reshape(-1, n_padded)
  seen = np.isfinite(screen)
  out = []
  for i, label in enumerate(labels):
    errors = screen[seen[:, i], i]
    mistakes = book.final_mistakes[i]
    solved = bool(full.solved[i])
    out.append(
      dict(
        label,
        updates_done=int(full.step[i]),
        solved=solved,
        updates_to_solve=int(full.solved_at[i]) if solved else None,
        diverged=bool(full.diverged[i]),
        screen_error=float(errors[-1]) if errors.size else None,
        best_screen_error=float(errors.min()) if errors.size else None,
        full_test_error=None if mistakes is None else mistakes / eval_size,
      )
    )
  return out


def result_row(label, i: int, full: RunState, book: Bookkeeping, eval_size: int):
  """A finished run's row (`GroupResult.rows`)."""
  solved, mistakes, worst = bool(full.solved[i]), book.final_mistakes[i], book.worst[i]
  return dict(
    label,
    solved=solved,
    updates_to_solve=int(full.solved_at[i]) if solved else None,
    final_error=mistakes / eval_size,
    final_mistakes=mistakes,
    strict_solved=bool(solved and mistakes == 0),
    worst_length=None if worst is None else worst[0],
    worst_length_error=None if worst is None else worst[1],
    diverged=bool(full.diverged[i]),
    updates_done=int(full.step[i]),
  )


def _worst_length(mistakes: np.ndarray, counts: np.ndarray, lo: int) -> list | None:
  """`[length, error]` of the nominal length with the highest error (mixed lengths only)."""
  if len(counts) < 2:
    return None
  rates = np.where(counts > 0, mistakes / np.maximum(counts, 1), -1.0)
  i = int(np.argmax(rates))
  return [lo + i, float(rates[i])]
