"""Runs many independent trainings as one vmapped, device-sharded program, with resume.

`run_group` drives a group of runs that share one compiled program (same task, model size
and length range; any mix of seeds, learning rates, thresholds, α and initialisations):

* the runs are stacked along a leading "runs" axis and sharded over every device
  (`jax.sharding.Mesh` over the runs axis; one CPU, several GPUs or a TPU slice alike);
* each compiled call does `chunk_size` updates for every run, then a cheap screen
  (error on `screen_size` fresh sequences); runs that pass the screen are confirmed on the
  host with the paper's test (`eval_size` = 10,000 fresh sequences, error < 1%);
* solved, diverged and out-of-budget runs are frozen inside the program while the rest go
  on; the group ends when every run is decided. With `config.compaction`, once the live
  runs fit in half the program, the group goes on with a smaller compiled program (sizes
  `device_count · 2^k`, so compiles stay few and cached) holding only the live runs, so
  decided runs stop costing. A run depends on nothing but its own state and the shared
  length schedule; the bits of its float32 arithmetic can still depend on the program's
  size (XLA picks kernels by shape), so compaction, like the device count, may move a
  run's trajectory at round-off (a given config is deterministic, resumed or not);
* the success test counts mistakes as integers (`train.success_limit`: exactly 1 % fails)
  and, for mixed lengths, per nominal length, so each row also names its worst length;
* a checkpoint of the whole stacked state (plus the traces so far) is written every
  `checkpoint_every_s` seconds and on a stop request (`runs.stop`: the first Ctrl-C or
  SIGTERM), so an interrupted group resumes exactly where it stopped and ends with the
  same results as an uninterrupted one.

`run_group` builds a `_Group`, a stepper (`_Group.step`: one chunk, the screen, the full
test of candidates, compaction) that the one host loop (`runs.loop.drive`, shared with
the natural tasks' trainer) drives until every run is decided, then `_Group.finish` (the
final test of unsolved runs, the rows). Polling, stopping, checkpoint cadence and
progress lines are the loop's.
`run_in_workdir` is how a binary trains one group of its workdir with it.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, §4.1.1 (success criterion).
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

from rnn_dynamics import runs
from rnn_dynamics.synthetic import train as train_lib
from rnn_dynamics.runs import checkpoint, loop
from rnn_dynamics.runs.outcome import GroupResult
from rnn_dynamics.runs.progress import format_duration
from rnn_dynamics.synthetic.train import HParams, RunState, Trainer

if TYPE_CHECKING:
  from rnn_dynamics.workdir import Group, Workdir

__all__ = ["GroupResult", "TRACE_FIELDS", "run_group", "run_in_workdir"]

# Per-chunk summaries kept for every run (the "traces").
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
)


def _spectral_radii(w_hh: np.ndarray) -> np.ndarray:
  # Host-side LAPACK: cheap at eval time, and XLA has no non-symmetric eig on GPU/TPU.
  w = np.asarray(w_hh, dtype=np.float64)
  return np.max(np.abs(np.linalg.eigvals(w)), axis=-1)


def _chunk_summary(m) -> dict[str, jax.Array]:
  """Per-chunk traces of one run from its per-update metrics (NaN where it was frozen)."""
  active = ~jnp.isnan(m.loss)
  fired = active & (m.fallback > 0)
  ordinary = active & ~fired
  nan = jnp.float32(jnp.nan)
  mean_where = lambda x, w: jnp.where(w.any(), jnp.sum(jnp.where(w, x, 0.0)) / w.sum(), nan)
  # The true pre-clip norm, non-finite ones included: NaN reads as +inf here so a
  # replaced step shows in the maximum; the mean is over the ordinary steps.
  norm_or_inf = jnp.where(jnp.isnan(m.grad_norm), jnp.inf, m.grad_norm)
  return dict(
    loss=jnp.nanmean(m.loss),
    grad_norm=mean_where(m.grad_norm, ordinary),
    grad_norm_max=jnp.where(active.any(), jnp.max(jnp.where(active, norm_or_inf, -jnp.inf)), nan),
    guard_fired=jnp.where(active.any(), jnp.sum(fired).astype(jnp.float32), nan),
    clip_rate=jnp.nanmean(m.clipped),
    omega=jnp.nanmean(m.omega),
    train_error=jnp.nanmean(m.error),
  )


class _Programs:
  """The compiled functions of a group (kept so tests can count their traces)."""

  def __init__(self, trainer: Trainer, config: ml_collections.ConfigDict):
    screen_size, eval_size = int(config.screen_size), int(config.eval_size)

    def chunk_and_screen(state: RunState, hp: HParams, chunk_index):
      state, m = trainer.chunk(state, hp, chunk_index)
      # Evaluation keys branch off the run key without advancing it.
      key = jax.random.fold_in(state.key, 1)
      mistakes, _ = trainer.count_mistakes(state.params, hp, key, screen_size)
      return state, _chunk_summary(m), jnp.sum(mistakes)

    def full_eval(params, hp: HParams, key):
      return trainer.count_mistakes(params, hp, jax.random.fold_in(key, 2), eval_size)

    self.init = jax.jit(jax.vmap(trainer.init))
    # Outputs keep the runs sharding of the inputs: left to the compiler, some come back
    # replicated (P() on one device), so the second call would miss the cache and compile
    # the whole program again. The chunk index is shared by all runs (unbatched).
    self.chunk_and_screen = jax.jit(
      jax.vmap(chunk_and_screen, in_axes=(0, 0, None)),
      donate_argnums=0,
      out_shardings=runs.runs_sharding(),
    )
    self.full_eval = jax.jit(jax.vmap(full_eval))
    matrix = trainer.model.recurrent_matrix
    self.recurrent_matrix = None if matrix is None else jax.jit(jax.vmap(matrix))

  def spectral_radii(self, params) -> np.ndarray:
    """`[runs]` ρ of each run's recurrent matrix (NaN for cells that have none)."""
    if self.recurrent_matrix is None:
      return np.full(len(jax.tree.leaves(params)[0]), np.nan)
    return _spectral_radii(runs.host(self.recurrent_matrix(params)))


def _stack_traces(traces: dict[str, list[np.ndarray]], n_padded: int) -> dict[str, np.ndarray]:
  """`[chunks, runs]` float32 arrays (an empty group gives `[0, runs]`)."""
  return {
    f: np.stack(v).astype(np.float32) if v else np.zeros((0, n_padded), np.float32)
    for f, v in traces.items()
  }


def _compact_size(n_live: int, n_devices: int) -> int:
  """The program size for `n_live` runs: the smallest `n_devices · 2^k`, k ≥ 1, that
  holds them. Never one run per device: XLA simplifies a size-1 runs axis away, which
  changes the rounding of the reductions most (the loss, the norm)."""
  size = 2 * n_devices
  while size < n_live:
    size *= 2
  return size


def _take(tree: Any, idx: np.ndarray) -> Any:
  return jax.tree.map(lambda x: np.asarray(x)[idx], tree)


def _put(full: Any, idx: np.ndarray, part: Any) -> Any:
  def put(f, p):
    f = np.array(f, copy=True)
    f[idx] = p
    return f

  return jax.tree.map(put, full, part)


class _Slots:
  """Which runs of the group the compiled program holds, in which rows.

  `index[i]` is the group run in row i; `real[i]` is False for filler rows (copies of a
  decided run, frozen, never read back), which pad a compacted program to its size.
  """

  def __init__(self, index: np.ndarray, real: np.ndarray):
    self.index, self.real = index, real

  @property
  def rows(self) -> np.ndarray:
    return np.flatnonzero(self.real)

  def runs(self) -> np.ndarray:
    return self.index[self.real]


def run_group(
  trainer: Trainer,
  config: ml_collections.ConfigDict,
  *,
  labels: Sequence[Mapping[str, Any]],
  hparams: HParams,
  keys: jax.Array,
  checkpoint_dir: str | Path | None = None,
  name: str = "",
  on_progress: Callable[[str], None] | None = None,
  on_checkpoint: Callable[[list[dict[str, Any]]], None] | None = None,
  programs: _Programs | None = None,
  events_dir: str | Path | None = None,
) -> GroupResult:
  """Trains every run of a group to a decision (solved, diverged or out of budget).

  Args:
    trainer: from `rnn_dynamics.synthetic.train.make_train(config)`.
    config: uses `max_updates`, `chunk_size`, `screen_size`, `eval_size`,
      `success_error`, `checkpoint_every_s`, `progress_every_s`, and optional
      `zero_mistake_stop` (default False) and `compaction` (default False).
    labels: one dict per run, copied into its result row (e.g. init, algorithm, seed).
    hparams: stacked `HParams`, leading axis = runs.
    keys: `[runs]` PRNG keys (runs that share a key share initial weights and data:
      paired comparisons across algorithms; `runs.grid` builds all three).
    checkpoint_dir: where to keep the Orbax checkpoint of this group (None: no resume).
    name: shown in progress lines.
    on_progress: receives each progress line (default: `absl.logging.info`).
    on_checkpoint: receives one row per run (`_Group.snapshot`) after every checkpoint,
      so a group still training can be read (default: nothing).
    programs: reuse compiled functions across groups of identical shapes.
    events_dir: where each run's traces go as TensorBoard event files while it trains
      (`runs.events`; None: nowhere).

  Returns:
    A `GroupResult`.

  Raises:
    KeyboardInterrupt: on a stop request (`runs.stop`), after the chunk and a checkpoint.
  """
  group = _Group(
    trainer,
    config,
    labels,
    hparams,
    keys,
    checkpoint_dir=checkpoint_dir,
    name=name,
    say=on_progress or logging.info,
    on_checkpoint=on_checkpoint,
    programs=programs,
  )
  events = None
  if events_dir is not None:
    names = [runs.events.run_name(label) for label in labels]
    events = runs.events.EventLog(events_dir, names, purge_steps=group.full.step[: len(labels)])
  loop.drive(
    group,
    checkpoint_every_s=float(config.checkpoint_every_s),
    progress_every_s=float(config.progress_every_s),
    say=group.say,
    events=events,
  )
  return group.finish()


def run_in_workdir(
  workdir: Workdir,
  group: str,
  config: ml_collections.ConfigDict,
  grid: runs.Grid,
  *,
  name: str | None = None,
  extra: Callable[[GroupResult], Mapping[str, Any]] | None = None,
) -> Group:
  """The workdir's `group`, `grid`'s runs trained with `config`, as every sweep binary
  runs one: loaded if it is finished, else trained with `run_group`, checkpointed there
  while it trains (a rerun resumes; `Workdir.in_progress` reads its runs as of the last
  checkpoint) and saved there once every run is decided (`Workdir.group`).

  Args:
    workdir: the experiment's workdir (`Workdir(path, config)`, the binary's config).
    group: the group's name in the workdir.
    config: the group's config (`workdir.group_config` of the binary's, with what this
      group runs otherwise; `make_train`'s and `run_group`'s fields). Where it differs
      from the binary's config is recorded in the group's spec (`GroupSpec`).
    grid: the runs (`runs.grid`: labels, stacked hparams, paired keys).
    name: shown in log and progress lines (default: `group`).
    extra: `extra(result) -> fields` added to every row of the group when it is saved
      (e.g. its wall time); None: nothing.

  Returns:
    The group's spec, rows and traces (`workdir.Group`).

  Raises:
    GroupSpecMismatch: the workdir's group ran another spec.
  """
  from rnn_dynamics.workdir import GroupSpec

  name = name or group
  spec = GroupSpec.of(workdir.config, config, grid.labels)

  def train() -> GroupResult:
    logging.info(
      "%s: %d runs on %d device(s), up to %d updates each",
      name,
      len(grid),
      jax.device_count(),
      config.max_updates,
    )
    result = run_group(
      train_lib.make_train(config),
      config,
      labels=grid.labels,
      hparams=grid.hparams,
      keys=grid.keys,
      checkpoint_dir=workdir.checkpoint_dir(group),
      name=name,
      on_checkpoint=lambda rows: workdir.write_progress(group, rows),
      events_dir=workdir.events_dir(group),
    )
    if extra is not None:
      added = dict(extra(result))
      result.rows = [dict(row, **added) for row in result.rows]
    workdir.save_group(group, result)
    logging.info("%s: finished in %.0f s", name, result.wall_s)
    return result

  return workdir.group(group, spec, train)


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


@dataclasses.dataclass(frozen=True)
class _Settings:
  """What a group reads from its config, once."""

  max_updates: int
  chunk_size: int
  screen_size: int
  eval_size: int
  screen_limit: int  # most mistakes on the screen that still count as a pass
  full_limit: int  # most mistakes on the full test that still count as solved
  compaction: bool
  min_length: int

  @classmethod
  def of(cls, config: ml_collections.ConfigDict) -> _Settings:
    max_updates, chunk_size = int(config.max_updates), int(config.chunk_size)
    if max_updates % chunk_size:
      raise ValueError(f"max_updates={max_updates} must be a multiple of chunk_size={chunk_size}")
    screen_size, eval_size = int(config.screen_size), int(config.eval_size)
    return cls(
      max_updates,
      chunk_size,
      screen_size,
      eval_size,
      train_lib.success_limit(config, screen_size),
      train_lib.success_limit(config, eval_size),
      bool(config.get("compaction", False)),
      int(config.min_length),
    )


class _Resident:
  """The rows the compiled program holds (`slots`): their device state, hyper-parameters
  and, on the host, the decision flags as of the last chunk."""

  def __init__(self, slots: _Slots, full: RunState, hparams_full: HParams, sharding):
    self.slots = slots
    rows = (_take(full, slots.index), _take(hparams_full, slots.index))
    self.state, self.hparams = runs.to_devices(rows, sharding)
    self.read_flags()

  def read_flags(self) -> dict[str, np.ndarray]:
    self.flags = {k: runs.host(getattr(self.state, k)).copy() for k in _FLAGS}
    return self.flags

  def into(self, full: RunState) -> RunState:
    """`full` with the program's real rows written back."""
    program = _take(jax.tree.map(runs.host, self.state), self.slots.rows)
    return _put(full, self.slots.runs(), program)


class _Group:
  """One group in training, a `runs.loop` stepper: one step is a chunk of updates for
  every run the program holds, its screen and the full tests of its candidates.

  `full` (host) is the whole group as of the last sync, written back from the program
  (`resident`) before every save and compaction.
  """

  def __init__(
    self,
    trainer,
    config,
    labels,
    hparams,
    keys,
    *,
    checkpoint_dir,
    name,
    say,
    programs,
    on_checkpoint=None,
  ):
    n_runs = len(labels)
    if jax.tree.leaves(hparams)[0].shape[0] != n_runs or keys.shape[0] != n_runs:
      raise ValueError("labels, hparams and keys must have the same number of runs")
    self.settings = _Settings.of(config)
    self.labels, self.name, self.say, self.on_checkpoint = labels, name, say, on_checkpoint
    self.programs = programs or _Programs(trainer, config)
    self.sharding = runs.runs_sharding()
    self.t_start = time.time()

    # Pad the runs axis to a multiple of the device count; padded runs start frozen.
    self.n_runs, self.n_padded = n_runs, runs.pad_to(n_runs, jax.device_count())
    self.hparams_full = jax.device_get(runs.pad_runs(hparams, self.n_padded))
    self.is_pad = np.arange(self.n_padded) >= n_runs
    state = self.programs.init(
      runs.pad_runs(keys, self.n_padded), jax.tree.map(jnp.asarray, self.hparams_full)
    )
    self.full = jax.device_get(state.replace(done=state.done | jnp.asarray(self.is_pad)))
    self.book = Bookkeeping.start(self.n_padded)
    self.traces: dict[str, list[np.ndarray]] = {f: [] for f in TRACE_FIELDS}
    self.manager = None if checkpoint_dir is None else checkpoint.manager(checkpoint_dir)
    if self.manager is not None:
      self._resume(checkpoint_dir)
    self.wall0 = self.book.wall_s  # earlier sessions' seconds
    everything = _Slots(np.arange(self.n_padded), np.ones(self.n_padded, bool))
    self.resident = _Resident(everything, self.full, self.hparams_full, self.sharding)
    self._maybe_compact()

  def _resume(self, checkpoint_dir) -> None:
    restored = checkpoint.restore(self.manager, self.full, self.sharding, traces=True)
    if restored is None:
      return
    self.full = jax.tree.map(runs.host, restored.state)
    self.book = Bookkeeping.from_json(restored.host)
    self.traces = {f: list(np.asarray(restored.traces[f])) for f in TRACE_FIELDS}
    self.say(f"{self.name}: resumed from chunk {self.book.chunk} ({checkpoint_dir})")

  def _sync(self) -> None:
    self.full = self.resident.into(self.full)

  def _maybe_compact(self) -> None:
    """Goes on with a smaller program once the live runs fit in half of this one."""
    slots = self.resident.slots
    live = slots.real & ~self.resident.flags["done"]
    n_live = int(live.sum())
    size = _compact_size(n_live, jax.device_count())
    if not self.settings.compaction or n_live == 0 or size > len(slots.index) // 2:
      return
    self._sync()
    # Filler rows copy a decided run: frozen, so they cost a slot and nothing else.
    filler = slots.index[np.flatnonzero(~live)[0]]
    index = np.concatenate([slots.index[live], np.full(size - n_live, filler)])
    compacted = _Slots(index, np.arange(size) < n_live)
    self.resident = _Resident(compacted, self.full, self.hparams_full, self.sharding)
    self.say(f"{self.name}: {n_live} live runs, continuing with a {size}-run program")

  # --- the stepper (`runs.loop.Stepper`) -------------------------------------------------

  def done(self) -> bool:
    r = self.resident
    return bool((r.flags["done"] | ~r.slots.real).all())

  def step(self) -> loop.Step:
    """One chunk of updates for every run of the program, its screen and full tests."""
    r, s = self.resident, self.settings
    r.state, summary, screen = self.programs.chunk_and_screen(
      r.state, r.hparams, np.int32(self.book.chunk)
    )
    flags = r.read_flags()
    screen = runs.host(screen)
    traced = self._record_traces({k: runs.host(v) for k, v in summary.items()}, screen)
    self._confirm(screen)
    flags["done"] |= flags["step"] >= s.max_updates
    decisions = {k: flags[k] for k in ("done", "solved", "solved_at")}
    r.state = r.state.replace(**runs.to_devices(decisions, self.sharding))
    self.book.chunk += 1
    full_flags = {k: getattr(self.full, k) for k in _FLAGS}
    self.full = self.full.replace(**_put(full_flags, r.slots.runs(), _take(flags, r.slots.rows)))
    self._maybe_compact()
    return loop.Step(
      units=s.chunk_size,
      report=bool(self.full.done.all()),
      scalars={f: traced[f] for f in TRACE_FIELDS if f != "step"},
      at=traced["step"],
    )

  def save(self) -> None:
    if self.manager is None or self.manager.latest_step() == self.book.chunk:
      return
    self._sync()
    self.book.wall_s = self.wall_s()
    checkpoint.save(
      self.manager,
      self.book.chunk,
      state=runs.to_devices(self.full, self.sharding),
      host=self.book.to_json(),
      traces=_stack_traces(self.traces, self.n_padded),
    )
    if self.on_checkpoint is not None:
      self.on_checkpoint(self.snapshot())

  def position(self) -> str:
    return f"chunk {self.book.chunk}"

  def wall_s(self) -> float:
    """Seconds spent on the group so far, earlier sessions included."""
    return self.wall0 + time.time() - self.t_start

  def progress_line(self, progress: runs.Progress, now: float) -> str:
    return _progress_line(
      self.name, self.full, self.n_runs, progress, now, self.settings.max_updates
    )

  # --- what a step does on the host ------------------------------------------------------

  def _record_traces(self, summary, screen: np.ndarray) -> dict[str, np.ndarray]:
    """Appends this chunk's traces (`[padded runs]` each) and returns them."""
    # Runs frozen before this chunk report NaN summaries; keep their traces NaN too.
    r = self.resident
    active = np.isfinite(summary["loss"])
    record = dict(
      summary,
      step=r.flags["step"].astype(np.float64),
      screen_error=screen / self.settings.screen_size,
      spectral_radius=self.programs.spectral_radii(r.state.params),
    )
    rows, group_runs = r.slots.rows, r.slots.runs()
    for f in TRACE_FIELDS:
      column = np.full(self.n_padded, np.nan, np.float32)
      column[group_runs] = np.where(active, record[f], np.nan)[rows]
      self.traces[f].append(column)
    return {f: self.traces[f][-1] for f in TRACE_FIELDS}

  def _confirm(self, screen: np.ndarray) -> None:
    """Confirms screen passes with the full test, on the host-selected runs only."""
    r, s = self.resident, self.settings
    flags, slots = r.flags, r.slots
    candidates = np.flatnonzero(slots.real & ~flags["done"] & (screen <= s.screen_limit))
    if not candidates.size:
      return
    on_host = jax.tree.map(runs.host, (r.state.params, r.hparams, r.state.key))
    totals = self._full_test(*on_host, candidates, slots.index[candidates])
    passed = candidates[totals <= s.full_limit]
    flags["solved"][passed] = True
    flags["solved_at"][passed] = flags["step"][passed]
    flags["done"][passed] = True

  def _full_test(self, params, hparams, keys, rows: np.ndarray, group_runs: np.ndarray):
    """The paper's test of `rows` of host arrays, recorded for the group's `group_runs`;
    returns each one's mistakes."""
    mistakes, counts = _full_eval(self.programs, params, hparams, keys, rows)
    for run, m, c in zip(group_runs, mistakes, counts, strict=True):
      self.book.final_mistakes[run] = int(m.sum())
      self.book.worst[run] = _worst_length(m, c, self.settings.min_length)
    return mistakes.sum(axis=1)

  # --- the end ---------------------------------------------------------------------------

  def snapshot(self) -> list[dict[str, Any]]:
    """One row per run as of the last sync (`_snapshot_rows`)."""
    return _snapshot_rows(self.labels, self.full, self.book, self.traces, self.settings.eval_size)

  def finish(self) -> GroupResult:
    """The final test of the unsolved runs, a last checkpoint, and the rows."""
    self._sync()
    full = self.full
    # Unsolved runs get the full test once more at the end, for the table.
    missing = np.flatnonzero(~self.is_pad & ~full.solved)
    if missing.size:
      self._full_test(full.params, self.hparams_full, full.key, missing, missing)
    self.save()
    traces = {f: a.T[: self.n_runs] for f, a in _stack_traces(self.traces, self.n_padded).items()}
    rows = [
      _result_row(label, i, full, self.book, self.settings.eval_size)
      for i, label in enumerate(self.labels)
    ]
    return GroupResult(rows, traces, full, self.wall_s())


def _snapshot_rows(labels, full: RunState, book: Bookkeeping, traces, eval_size: int):
  """One row per run of a group still training: its labels, `updates_done`, `solved`,
  `updates_to_solve`, `diverged`, the latest and best screen error, and the error of its
  last full test (None before its first)."""
  n_padded = len(book.final_mistakes)
  screen = np.asarray(traces["screen_error"], np.float64).reshape(-1, n_padded)
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


def _result_row(label, i: int, full: RunState, book: Bookkeeping, eval_size: int):
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


_FLAGS = ("step", "done", "solved", "solved_at", "diverged")


def _worst_length(mistakes: np.ndarray, counts: np.ndarray, lo: int) -> list | None:
  """`[length, error]` of the nominal length with the highest error (mixed lengths only)."""
  if len(counts) < 2:
    return None
  rates = np.where(counts > 0, mistakes / np.maximum(counts, 1), -1.0)
  i = int(np.argmax(rates))
  return [lo + i, float(rates[i])]


def _full_eval(programs: _Programs, params, hparams: HParams, keys, idx: np.ndarray):
  """The paper's test (eval_size fresh sequences) for the runs `idx` of host arrays.

  The selected runs are gathered into a batch padded to a power of two, so only a few
  shapes are ever compiled. Returns `(mistakes, sequences)`, `[len(idx), bins]` int
  arrays, per nominal length.
  """
  size = 1 << int(math.ceil(math.log2(max(len(idx), 1))))
  take = np.concatenate([idx, np.repeat(idx[-1:], size - len(idx))])
  pick = lambda tree: jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[take]), tree)
  mistakes, counts = programs.full_eval(pick(params), pick(hparams), pick(keys))
  return np.asarray(mistakes)[: len(idx)], np.asarray(counts)[: len(idx)]


def _progress_line(name, full, n_runs, progress: runs.Progress, now: float, max_updates) -> str:
  solved, diverged = np.asarray(full.solved)[:n_runs], np.asarray(full.diverged)[:n_runs]
  done, step = np.asarray(full.done)[:n_runs], np.asarray(full.step)[:n_runs]
  failed = done & ~solved
  pending = ~done
  rate = progress.rate(now)  # updates per run per second
  left = (max_updates - step[pending]).max() if pending.any() else 0
  eta = progress.eta(left, now)
  return (
    f"{name} solved {solved.sum()}/{n_runs} failed {failed.sum()} "
    f"(diverged {diverged.sum()}) pending {pending.sum()} | "
    f"updates {int(step.max())}/{max_updates} | {rate * n_runs:,.0f} run-updates/s | "
    f"ETA ≤ {format_duration(eta)}"
  )
