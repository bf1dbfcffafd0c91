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
progress lines are the loop's. What a group is made of, a module each: its runs on the
host and in the program, their start and compaction (`resident`), the success test
(`success`), and its record on the host, bookkeeping and traces, with the rows they give
and their checkpoint (`record`).
`run_in_workdir` is how a binary trains one group of its workdir with it.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, §4.1.1 (success criterion).
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
from rnn_dynamics.synthetic import train as train_lib
from rnn_dynamics.runs import checkpoint, loop
from rnn_dynamics.runs.outcome import GroupResult
from rnn_dynamics.runs.progress import format_duration
from rnn_dynamics.synthetic.record import (
  LYAPUNOV_FIELDS,
  TRACE_FIELDS,
  Bookkeeping,
  Traces,
  exponent_fields,
  restore_checkpoint,
  result_row,
  save_checkpoint,
  snapshot_rows,
)
from rnn_dynamics.synthetic.resident import GroupRuns, start_state
from rnn_dynamics.synthetic.success import SuccessTest
from rnn_dynamics.synthetic.train import HParams, RunState, Trainer

if TYPE_CHECKING:
  from rnn_dynamics.workdir import Group, Workdir

__all__ = ["GroupResult", "TRACE_FIELDS", "run_group", "run_in_workdir"]


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
  """The compiled functions of a group (kept so tests can count their traces).

  After each chunk the program screens every run and, with `config.lyapunov_k` > 0
  (default 0), measures its top Lyapunov exponents on `config.lyapunov_sequences`
  (default 8) fresh sequences (`Trainer.exponents`), for the traces.
  """

  def __init__(self, trainer: Trainer, config: ml_collections.ConfigDict):
    screen_size, eval_size = int(config.screen_size), int(config.eval_size)
    lyapunov_k = int(config.get("lyapunov_k", 0))
    lyapunov_sequences = int(config.get("lyapunov_sequences", 8))
    if not 0 <= lyapunov_k <= len(LYAPUNOV_FIELDS) or lyapunov_sequences < 1:
      raise ValueError(
        f"need 0 <= lyapunov_k <= {len(LYAPUNOV_FIELDS)} and lyapunov_sequences >= 1, got "
        f"lyapunov_k={lyapunov_k}, lyapunov_sequences={lyapunov_sequences}"
      )

    def chunk_and_screen(state: RunState, hp: HParams, chunk_index):
      state, m = trainer.chunk(state, hp, chunk_index)
      # Evaluation keys branch off the run key without advancing it.
      key = jax.random.fold_in(state.key, 1)
      mistakes, _ = trainer.count_mistakes(state.params, hp, key, screen_size)
      summary = _chunk_summary(m)
      exponents = jnp.zeros((0,), jnp.float32)
      if lyapunov_k:
        key = jax.random.fold_in(state.key, 3)
        exponents = trainer.exponents(state.params, hp, key, lyapunov_sequences, lyapunov_k)
      summary.update(exponent_fields(exponents.astype(jnp.float32), jnp.float32(jnp.nan)))
      return state, summary, jnp.sum(mistakes)

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
  initial_params: Any = None,
  wrap: Callable[[Any], loop.Stepper] | None = None,
) -> GroupResult:
  """Trains every run of a group to a decision (solved, diverged or out of budget).

  Args:
    trainer: from `rnn_dynamics.synthetic.train.make_train(config)`.
    config: uses `max_updates`, `chunk_size`, `screen_size`, `eval_size`,
      `success_error`, `checkpoint_every_s`, `progress_every_s`, and optional
      `zero_mistake_stop` (default False), `compaction` (default False) and
      `stop_on_success` (default True; False: no run is ever tested for success while
      it trains, so every run trains to its budget unless it diverges; the screen is
      still traced).
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
    initial_params: stacked `rnn.Params` (leading axis = runs) the runs start from
      instead of their initialisation (e.g. models trained elsewhere); the rest of the
      run state (optimizer state, key, counters) starts as `trainer.init` makes it.
    wrap: `wrap(group) -> stepper`, the stepper `runs.loop.drive` drives instead of the
      group itself, e.g. one that interleaves evaluations with the group's steps; it
      reads the group's state with `group.state()`.

  Returns:
    A `GroupResult`.

  Raises:
    KeyboardInterrupt: on a stop request (`runs.stop`), after the chunk and a checkpoint.
    ValueError: a run has a flossing weight and `config.floss_enabled` is not set (its
      program would not floss).
  """
  _refuse_weights_without_flossing(config, hparams, name)
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
    initial_params=initial_params,
  )
  _drive(group, wrap, config, events_dir)
  return group.finish()


def _refuse_weights_without_flossing(
  config: ml_collections.ConfigDict, hparams: HParams, name: str
) -> None:
  """Raises ValueError if a run has a flossing weight and `config.floss_enabled` is not
  set: its program would not floss, and the run would silently train as SGD-C."""
  flossing = hparams.floss is not None and np.any(np.asarray(hparams.floss) != 0)
  if flossing and not config.get("floss_enabled", False):
    raise ValueError(
      f"{name or 'group'}: runs with a flossing weight need config.floss_enabled=True"
    )


def _drive(
  group: _Group,
  wrap: Callable[[Any], loop.Stepper] | None,
  config: ml_collections.ConfigDict,
  events_dir: str | Path | None,
) -> None:
  """Drives `group` (or the stepper `wrap(group)`, see `run_group`) until every run is
  decided, at the config's checkpoint and progress cadence, each run's traces going to
  TensorBoard event files under `events_dir` (None: nowhere)."""
  events = None
  if events_dir is not None:  # each run's series resumes at its updates done
    n = group.n_runs
    events = runs.events.EventLog.for_runs(events_dir, group.labels, group.runs.full.step[:n])
  loop.drive(
    group if wrap is None else wrap(group),
    checkpoint_every_s=float(config.checkpoint_every_s),
    progress_every_s=float(config.progress_every_s),
    say=group.say,
    events=events,
  )


def run_in_workdir(
  workdir: Workdir,
  group: str,
  config: ml_collections.ConfigDict,
  grid: runs.Grid,
  *,
  name: str | None = None,
  extra: Callable[[GroupResult], Mapping[str, Any]] | None = None,
  former_labels: Mapping[str, Any] | None = None,
  **options: Any,
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
    former_labels: labels of `grid` added since groups were saved without them, label →
      the value every run had then (`Workdir.group`): a saved group without the label
      resumes only where every run holds that value.
    **options: further arguments of `run_group` (`initial_params`, `wrap`).

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
      **options,
    )
    if extra is not None:
      added = dict(extra(result))
      result.rows = [dict(row, **added) for row in result.rows]
    workdir.save_group(group, result)
    logging.info("%s: finished in %.0f s", name, result.wall_s)
    return result

  return workdir.group(group, spec, train, former_labels)


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
  stop_on_success: bool  # screen passes take the full test, and a passed one freezes the run

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
      bool(config.get("stop_on_success", True)),
    )


class _Group:
  """One group in training, a `runs.loop` stepper: one step is a chunk of updates for
  every run the program holds, its screen and the full tests of its candidates.

  Its parts: the runs (`runs`: `full` on the host as of the last sync, the program's
  `resident` rows), the success test (`test`), and its record, `book` and `traces`.
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
    initial_params=None,
  ):
    n_runs = len(labels)
    if jax.tree.leaves(hparams)[0].shape[0] != n_runs or keys.shape[0] != n_runs:
      raise ValueError("labels, hparams and keys must have the same number of runs")
    self.settings = s = _Settings.of(config)
    self.labels, self.name, self.say, self.on_checkpoint = labels, name, say, on_checkpoint
    self.programs = programs or _Programs(trainer, config)
    self.sharding = runs.runs_sharding()
    self.t_start, self.n_runs = time.time(), n_runs
    full, hparams_full = start_state(self.programs.init, keys, hparams, initial_params)
    self.book, self.traces = Bookkeeping.start(len(full.step)), Traces(len(full.step))
    self.manager = restored = None
    if checkpoint_dir is not None:
      self.manager = checkpoint.manager(checkpoint_dir)
      restored = restore_checkpoint(self.manager, full, self.sharding)
    if restored is not None:
      full, self.book, self.traces = restored
      self.say(f"{self.name}: resumed from chunk {self.book.chunk} ({checkpoint_dir})")
    self.wall0 = self.book.wall_s  # earlier sessions' seconds
    self.runs = GroupRuns(full, hparams_full, self.sharding)
    limits = dict(screen_limit=s.screen_limit, full_limit=s.full_limit, min_length=s.min_length)
    self.test = SuccessTest(
      self.programs.full_eval, self.book, **limits, while_training=s.stop_on_success
    )
    self._maybe_compact()

  def _maybe_compact(self) -> None:
    compacted = self.runs.compact() if self.settings.compaction else None
    if compacted is not None:
      n_live, size = compacted
      self.say(f"{self.name}: {n_live} live runs, continuing with a {size}-run program")

  # --- the stepper (`runs.loop.Stepper`) -------------------------------------------------

  def done(self) -> bool:
    return self.runs.done()

  def step(self) -> loop.Step:
    """One chunk of updates for every run of the program, its screen and full tests."""
    r, s = self.runs.resident, self.settings
    r.state, summary, screen = self.programs.chunk_and_screen(
      r.state, r.hparams, np.int32(self.book.chunk)
    )
    flags = r.read_flags()
    screen = runs.host(screen)
    traced = self._record_traces({k: runs.host(v) for k, v in summary.items()}, screen)
    self.test.confirm(r, screen)
    flags["done"] |= flags["step"] >= s.max_updates
    self.runs.decide(flags)
    self.book.chunk += 1
    self._maybe_compact()
    return loop.Step(
      units=s.chunk_size,
      report=bool(self.runs.full.done.all()),
      scalars={f: traced[f] for f in TRACE_FIELDS if f != "step"},
      at=traced["step"],
    )

  def save(self) -> None:
    # Before the first chunk there is nothing a restart would not make again (and Orbax
    # refuses the empty traces).
    if self.manager is None or self.book.chunk in (0, self.manager.latest_step()):
      return
    self.runs.sync()
    self.book.wall_s = self.wall_s()
    state = runs.to_devices(self.runs.full, self.sharding)
    save_checkpoint(self.manager, state, self.book, self.traces)
    if self.on_checkpoint is not None:
      self.on_checkpoint(self.snapshot())

  def position(self) -> str:
    return f"chunk {self.book.chunk}"

  def wall_s(self) -> float:
    """Seconds spent on the group so far, earlier sessions included."""
    return self.wall0 + time.time() - self.t_start

  def state(self) -> RunState:
    """The whole group's state (host arrays, padded runs included) as of the last step."""
    self.runs.sync()
    return self.runs.full

  def progress_line(self, progress: runs.Progress, now: float) -> str:
    return _progress_line(
      self.name, self.runs.full, self.n_runs, progress, now, self.settings.max_updates
    )

  def _record_traces(self, summary, screen: np.ndarray) -> dict[str, np.ndarray]:
    """Appends this chunk's traces (`[padded runs]` each) and returns them."""
    # Runs frozen before this chunk report NaN summaries; keep their traces NaN too.
    r = self.runs.resident
    record = dict(
      summary,
      step=r.flags["step"].astype(np.float64),
      screen_error=screen / self.settings.screen_size,
      spectral_radius=self.programs.spectral_radii(r.state.params),
    )
    active = np.isfinite(summary["loss"])
    return self.traces.append(record, active, r.slots.rows, r.slots.runs())

  # --- the end ---------------------------------------------------------------------------

  def snapshot(self) -> list[dict[str, Any]]:
    """One row per run as of the last sync (`record.snapshot_rows`)."""
    full, eval_size = self.runs.full, self.settings.eval_size
    return snapshot_rows(self.labels, full, self.book, self.traces, eval_size)

  def finish(self) -> GroupResult:
    """The final test of the unsolved runs, a last checkpoint, and the rows."""
    self.runs.sync()
    full = self.runs.full
    self.test.test_unsolved(self.runs, self.n_runs)
    self.save()
    rows = [
      result_row(label, i, full, self.book, self.settings.eval_size)
      for i, label in enumerate(self.labels)
    ]
    return GroupResult(rows, self.traces.per_run(self.n_runs), full, self.wall_s())


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
