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
* an Orbax checkpoint of the whole stacked state (plus the traces so far) is written
  every `checkpoint_every_s` seconds and on Ctrl-C, so an interrupted group resumes
  exactly where it stopped and ends with the same results as an uninterrupted one.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, §4.1.1 (success criterion).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from rnn_dynamics import train as train_lib
from rnn_dynamics.train import HParams, RunState, Trainer

__all__ = [
  "GroupResult",
  "TRACE_FIELDS",
  "format_duration",
  "request_stop",
  "stop_requested",
  "run_group",
  "runs_sharding",
  "stack",
]

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


@dataclasses.dataclass
class GroupResult:
  """What a finished group hands back.

  Attributes:
    rows: one dict per run: its labels plus `solved` (passed the test in force: error
      under `success_error`, or none with `zero_mistake_stop`), `updates_to_solve`,
      `final_error` and `final_mistakes` (on `eval_size` fresh sequences),
      `strict_solved` (0 errors, the original code's criterion), `worst_length` and
      `worst_length_error` (mixed lengths only: the nominal length with the highest
      error in that test), `diverged`, `updates_done`.
    traces: `TRACE_FIELDS` → `[runs, chunks]` arrays (NaN once a run is frozen).
    state: the final stacked `RunState` as host (numpy) arrays, e.g. for analysis.
    wall_s: seconds spent in this process (not counting earlier, resumed-from sessions).
  """

  rows: list[dict[str, Any]]
  traces: dict[str, np.ndarray]
  state: RunState
  wall_s: float


def stack(trees: Sequence[Any]) -> Any:
  """Stacks a list of pytrees along a new leading axis."""
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def runs_sharding() -> NamedSharding:
  """Shards the leading (runs) axis over every device of the process group."""
  # Auto axis: the runs are independent, so the compiler simply partitions the vmapped
  # program along them; no collectives and no explicit-sharding annotations are needed.
  mesh = jax.make_mesh((jax.device_count(),), ("runs",), axis_types=(jax.sharding.AxisType.Auto,))
  return NamedSharding(mesh, PartitionSpec("runs"))


def _spectral_radii(w_hh: np.ndarray) -> np.ndarray:
  # Host-side LAPACK: cheap at eval time, and XLA has no non-symmetric eig on GPU/TPU.
  w = np.asarray(w_hh, dtype=np.float64)
  return np.max(np.abs(np.linalg.eigvals(w)), axis=-1)


_STOP = threading.Event()


def request_stop() -> None:
  """Asks a running `run_group` to checkpoint and raise `KeyboardInterrupt` after its
  current chunk. Safe to call from a signal handler (the experiment binaries do, on the
  first Ctrl-C or SIGTERM)."""
  _STOP.set()


def stop_requested() -> bool:
  """Whether `request_stop` was called and no `run_group` has acted on it yet."""
  return _STOP.is_set()


def _host(x: jax.Array) -> np.ndarray:
  """A run-sharded array as one numpy array, on every process (hosts gather the shards)."""
  if jax.process_count() > 1:
    x = multihost_utils.process_allgather(x, tiled=True)
  return np.asarray(x)


def _to_devices(tree: Any, sharding: NamedSharding) -> Any:
  """Host values (the same on every process) as run-sharded global arrays.

  `make_array_from_callback` lets each process fill only its own devices' shards, which
  works on one host and on several alike (a plain `device_put` needs every shard local).
  """
  return jax.tree.map(
    lambda x: jax.make_array_from_callback(np.shape(x), sharding, lambda i: np.asarray(x)[i]),
    tree,
  )


def _pad_to(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


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
      out_shardings=runs_sharding(),
    )
    self.full_eval = jax.jit(jax.vmap(full_eval))


def _restore(manager: ocp.CheckpointManager, state: RunState, sharding: NamedSharding):
  step = manager.latest_step()
  if step is None:
    return None
  abstract = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state
  )
  restored = manager.restore(
    step,
    args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract),
      host=ocp.args.JsonRestore(),
      traces=ocp.args.StandardRestore(),
    ),
  )
  return restored["state"], restored["host"], restored["traces"]


def _stack_traces(traces: dict[str, list[np.ndarray]], n_padded: int) -> dict[str, np.ndarray]:
  """`[chunks, runs]` float32 arrays (an empty group gives `[0, runs]`)."""
  return {
    f: np.stack(v).astype(np.float32) if v else np.zeros((0, n_padded), np.float32)
    for f, v in traces.items()
  }


def _json_floats(a: np.ndarray) -> list:
  return [float(x) if np.isfinite(x) else None for x in a]


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
  programs: _Programs | None = None,
) -> GroupResult:
  """Trains every run of a group to a decision (solved, diverged or out of budget).

  Args:
    trainer: from `rnn_dynamics.train.make_train(config)`.
    config: uses `max_updates`, `chunk_size`, `screen_size`, `eval_size`,
      `success_error`, `checkpoint_every_s`, `progress_every_s`, and optional
      `zero_mistake_stop` (default False) and `compaction` (default False).
    labels: one dict per run, copied into its result row (e.g. init, algorithm, seed).
    hparams: stacked `HParams`, leading axis = runs.
    keys: `[runs]` PRNG keys (runs that share a key share initial weights and data:
      paired comparisons across algorithms).
    checkpoint_dir: where to keep the Orbax checkpoint of this group (None: no resume).
    name: shown in progress lines.
    on_progress: receives each progress line (default: `absl.logging.info`).
    programs: reuse compiled functions across groups of identical shapes.

  Returns:
    A `GroupResult`.
  """
  n_runs = len(labels)
  if jax.tree.leaves(hparams)[0].shape[0] != n_runs or keys.shape[0] != n_runs:
    raise ValueError("labels, hparams and keys must have the same number of runs")
  max_updates, chunk_size = int(config.max_updates), int(config.chunk_size)
  if max_updates % chunk_size:
    raise ValueError(f"max_updates={max_updates} must be a multiple of chunk_size={chunk_size}")
  eval_size = int(config.eval_size)
  screen_limit = train_lib.success_limit(config, int(config.screen_size))
  full_limit = train_lib.success_limit(config, eval_size)
  compaction = bool(config.get("compaction", False))
  lo = int(config.min_length)
  say = on_progress or logging.info
  programs = programs or _Programs(trainer, config)
  sharding = runs_sharding()
  n_devices = jax.device_count()

  # Pad the runs axis to a multiple of the device count; padded runs start frozen.
  n_padded = _pad_to(n_runs, n_devices)
  pad = lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], n_padded - n_runs, axis=0)])
  hparams_full = jax.device_get(jax.tree.map(pad, hparams))
  is_pad = np.arange(n_padded) >= n_runs
  state = programs.init(pad(keys), jax.tree.map(jnp.asarray, hparams_full))
  full = jax.device_get(state.replace(done=state.done | jnp.asarray(is_pad)))

  host = dict(chunk=0, final_mistakes=[None] * n_padded, worst=[None] * n_padded)
  traces: dict[str, list[np.ndarray]] = {f: [] for f in TRACE_FIELDS}
  manager = None
  if checkpoint_dir is not None:
    manager = ocp.CheckpointManager(
      Path(checkpoint_dir).absolute(),
      options=ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False),
    )
    restored = _restore(manager, full, sharding)
    if restored is not None:
      restored_state, host, saved_traces = restored
      full = jax.tree.map(_host, restored_state)
      traces = {f: list(np.asarray(saved_traces[f])) for f in TRACE_FIELDS}
      say(f"{name}: resumed from chunk {host['chunk']} ({checkpoint_dir})")

  # The program holds the rows `slots` of the group; `full` (host) is the whole group as
  # of the last sync, written back from the program before every save and compaction.
  def load(slots: _Slots):
    return _to_devices((_take(full, slots.index), _take(hparams_full, slots.index)), sharding)

  def sync() -> None:
    nonlocal full
    full = _put(full, slots.runs(), _take(jax.tree.map(_host, state), slots.rows))

  slots = _Slots(np.arange(n_padded), np.ones(n_padded, bool))
  state, hparams = load(slots)

  def maybe_compact() -> None:
    nonlocal slots, state, hparams, flags
    live = slots.real & ~flags["done"]
    n_live = int(live.sum())
    size = _compact_size(n_live, n_devices)
    if not compaction or n_live == 0 or size > len(slots.index) // 2:
      return
    sync()
    # Filler rows copy a decided run: frozen, so they cost a slot and nothing else.
    filler = slots.index[np.flatnonzero(~live)[0]]
    index = np.concatenate([slots.index[live], np.full(size - n_live, filler)])
    real = np.arange(size) < n_live
    slots = _Slots(index, real)
    state, hparams = load(slots)
    flags = read_flags()
    say(f"{name}: {n_live} live runs, continuing with a {size}-run program")

  def save():
    if manager is not None and manager.latest_step() != host["chunk"]:
      sync()
      manager.save(
        host["chunk"],
        args=ocp.args.Composite(
          state=ocp.args.StandardSave(_to_devices(full, sharding)),
          host=ocp.args.JsonSave(host),
          traces=ocp.args.StandardSave(_stack_traces(traces, n_padded)),
        ),
        force=True,
      )
      manager.wait_until_finished()

  def read_flags() -> dict[str, np.ndarray]:
    return {k: _host(getattr(state, k)).copy() for k in _FLAGS}

  start = last_save = last_report = time.time()
  chunks_here = 0
  flags = read_flags()
  maybe_compact()
  # True while the state, traces and `host` disagree (mid-iteration; the old state's
  # buffers are donated to the chunk): an interrupt then must not checkpoint.
  in_flight = False
  try:
    while True:
      if (flags["done"] | ~slots.real).all():
        break
      if _STOP.is_set():
        _STOP.clear()
        raise KeyboardInterrupt("stop requested")
      in_flight = True
      state, summary, screen = programs.chunk_and_screen(state, hparams, np.int32(host["chunk"]))
      chunks_here += 1
      flags = read_flags()
      screen = _host(screen)
      summary = {k: _host(v) for k, v in summary.items()}
      # Runs frozen before this chunk report NaN summaries; keep their traces NaN too.
      active = np.isfinite(summary["loss"])
      record = dict(
        summary,
        step=flags["step"].astype(np.float64),
        screen_error=screen / int(config.screen_size),
        spectral_radius=_spectral_radii(_host(state.params.w_hh)),
      )
      rows, runs = slots.rows, slots.runs()
      for f in TRACE_FIELDS:
        column = np.full(n_padded, np.nan, np.float32)
        column[runs] = np.where(active, record[f], np.nan)[rows]
        traces[f].append(column)

      # Confirm screen passes with the full test, on the host-selected runs only.
      candidates = np.flatnonzero(slots.real & ~flags["done"] & (screen <= screen_limit))
      if candidates.size:
        on_host = jax.tree.map(_host, (state.params, hparams, state.key))
        mistakes, counts = _full_eval(programs, *on_host, candidates)
        for row, m, c in zip(candidates, mistakes, counts, strict=True):
          host["final_mistakes"][slots.index[row]] = int(m.sum())
          host["worst"][slots.index[row]] = _worst_length(m, c, lo)
        passed = candidates[mistakes.sum(axis=1) <= full_limit]
        flags["solved"][passed] = True
        flags["solved_at"][passed] = flags["step"][passed]
        flags["done"][passed] = True
      flags["done"] |= flags["step"] >= max_updates
      state = state.replace(
        **_to_devices({k: flags[k] for k in ("done", "solved", "solved_at")}, sharding)
      )
      host["chunk"] += 1
      in_flight = False
      full = full.replace(**_put({k: getattr(full, k) for k in _FLAGS}, runs, _take(flags, rows)))
      maybe_compact()

      now = time.time()
      group_done = bool(full.done.all())
      if now - last_report >= float(config.progress_every_s) or group_done:
        say(_progress_line(name, full, n_runs, chunks_here, now - start, max_updates, chunk_size))
        last_report = now
      if now - last_save >= float(config.checkpoint_every_s):
        save()
        last_save = now
  except KeyboardInterrupt:
    if in_flight:
      last = manager.latest_step() if manager is not None else None
      say(f"{name}: interrupted mid-chunk — a restart resumes from chunk {last or 0}")
    else:
      say(f"{name}: interrupted — saving a checkpoint at chunk {host['chunk']} before exiting")
      save()
    raise

  sync()
  # Unsolved runs get the full test once more at the end, for the table.
  missing = np.flatnonzero(~is_pad & ~full.solved)
  if missing.size:
    mistakes, counts = _full_eval(programs, full.params, hparams_full, full.key, missing)
    for run, m, c in zip(missing, mistakes, counts, strict=True):
      host["final_mistakes"][run] = int(m.sum())
      host["worst"][run] = _worst_length(m, c, lo)
  save()

  traces = {f: a.T[:n_runs] for f, a in _stack_traces(traces, n_padded).items()}
  rows = []
  for i, lab in enumerate(labels):
    solved, mistakes, worst = bool(full.solved[i]), host["final_mistakes"][i], host["worst"][i]
    rows.append(
      dict(
        lab,
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
    )
  return GroupResult(rows, traces, full, time.time() - start)


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


def _progress_line(name, full, n_runs, chunks, elapsed, max_updates, chunk_size) -> str:
  solved, diverged = np.asarray(full.solved)[:n_runs], np.asarray(full.diverged)[:n_runs]
  done, step = np.asarray(full.done)[:n_runs], np.asarray(full.step)[:n_runs]
  failed = done & ~solved
  pending = ~done
  rate = chunks * chunk_size / max(elapsed, 1e-9)  # updates per run per second
  left = (max_updates - step[pending]).max() if pending.any() else 0
  eta = left / rate if rate > 0 else math.inf
  return (
    f"{name} solved {solved.sum()}/{n_runs} failed {failed.sum()} "
    f"(diverged {diverged.sum()}) pending {pending.sum()} | "
    f"updates {int(step.max())}/{max_updates} | {rate * n_runs:,.0f} run-updates/s | "
    f"ETA ≤ {format_duration(eta)}"
  )


def format_duration(s: float) -> str:
  """`1h02m` or `3m04s` (`?` for an unknown, infinite time), for progress lines."""
  if not math.isfinite(s):
    return "?"
  s = int(s)
  return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
