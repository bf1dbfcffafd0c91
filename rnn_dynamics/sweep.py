"""Runs many independent trainings as one vmapped, device-sharded program, with resume.

`run_group` drives a group of runs that share one compiled program (same task, model size
and length range; any mix of seeds, learning rates, thresholds, α and initialisations):

* the runs are stacked along a leading "runs" axis and sharded over every device
  (`jax.sharding.Mesh` over the runs axis; one CPU, several GPUs or a TPU slice alike);
* each compiled call does `chunk_size` updates for every run, then a cheap screen
  (error on `screen_size` fresh sequences); runs that pass the screen are confirmed on the
  host with the paper's test (`eval_size` = 10,000 fresh sequences, error < 1%);
* solved, diverged and out-of-budget runs are frozen inside the program while the rest go
  on; the group ends when every run is decided;
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

from rnn_dynamics.train import HParams, RunState, Trainer

__all__ = [
  "GroupResult",
  "TRACE_FIELDS",
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
    rows: one dict per run: its labels plus `solved`, `updates_to_solve`,
      `final_error` (on `eval_size` fresh sequences), `strict_solved` (0 errors, the
      original code's criterion), `diverged`, `updates_done`.
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


class _Programs:
  """The compiled functions of a group (kept so tests can count their traces)."""

  def __init__(self, trainer: Trainer, config: ml_collections.ConfigDict):
    screen_size, eval_size = int(config.screen_size), int(config.eval_size)

    def chunk_and_screen(state: RunState, hp: HParams):
      state, m = trainer.chunk(state, hp)
      # Evaluation keys branch off the run key without advancing it.
      screen = trainer.evaluate(state.params, hp, jax.random.fold_in(state.key, 1), screen_size)
      summary = dict(
        loss=jnp.nanmean(m.loss),
        grad_norm=jnp.nanmean(m.grad_norm),
        grad_norm_max=jnp.nanmax(m.grad_norm),
        clip_rate=jnp.nanmean(m.clipped),
        omega=jnp.nanmean(m.omega),
        train_error=jnp.nanmean(m.error),
      )
      return state, summary, screen

    def full_eval(params, hp: HParams, key):
      return trainer.evaluate(params, hp, jax.random.fold_in(key, 2), eval_size)

    self.init = jax.jit(jax.vmap(trainer.init))
    # Outputs keep the runs sharding of the inputs: left to the compiler, some come back
    # replicated (P() on one device), so the second call would miss the cache and compile
    # the whole program again.
    self.chunk_and_screen = jax.jit(
      jax.vmap(chunk_and_screen), donate_argnums=0, out_shardings=runs_sharding()
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
      `success_error`, `checkpoint_every_s`, `progress_every_s`.
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
  success = float(config.success_error)
  say = on_progress or logging.info
  programs = programs or _Programs(trainer, config)
  sharding = runs_sharding()

  # Pad the runs axis to a multiple of the device count; padded runs start frozen.
  n_padded = _pad_to(n_runs, jax.device_count())
  pad = lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], n_padded - n_runs, axis=0)])
  hparams = jax.tree.map(pad, hparams)
  is_pad = np.arange(n_padded) >= n_runs
  state = programs.init(pad(keys), hparams)
  state = state.replace(done=state.done | jnp.asarray(is_pad))
  state, hparams = _to_devices(jax.device_get((state, hparams)), sharding)

  host = dict(chunk=0, final_error=[None] * n_padded)
  traces: dict[str, list[np.ndarray]] = {f: [] for f in TRACE_FIELDS}
  manager = None
  if checkpoint_dir is not None:
    manager = ocp.CheckpointManager(
      Path(checkpoint_dir).absolute(),
      options=ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False),
    )
    restored = _restore(manager, state, sharding)
    if restored is not None:
      state, host, saved_traces = restored
      traces = {f: list(np.asarray(saved_traces[f])) for f in TRACE_FIELDS}
      say(f"{name}: resumed from chunk {host['chunk']} ({checkpoint_dir})")

  def save():
    if manager is not None and manager.latest_step() != host["chunk"]:
      manager.save(
        host["chunk"],
        args=ocp.args.Composite(
          state=ocp.args.StandardSave(state),
          host=ocp.args.JsonSave(host),
          traces=ocp.args.StandardSave(_stack_traces(traces, n_padded)),
        ),
        force=True,
      )
      manager.wait_until_finished()

  start = last_save = last_report = time.time()
  chunks_here = 0
  final_error = np.asarray(
    [math.nan if e is None else e for e in host["final_error"]], dtype=np.float64
  )
  # True while the state, traces and `host` disagree (mid-iteration; the old state's
  # buffers are donated to the chunk): an interrupt then must not checkpoint.
  in_flight = False
  try:
    while True:
      done = _host(state.done)
      if done.all():
        break
      if _STOP.is_set():
        _STOP.clear()
        raise KeyboardInterrupt("stop requested")
      in_flight = True
      state, summary, screen = programs.chunk_and_screen(state, hparams)
      chunks_here += 1
      step = _host(state.step)
      done = _host(state.done)
      screen = _host(screen)
      w_hh = _host(state.params.w_hh)
      summary = {k: _host(v) for k, v in summary.items()}
      # Runs frozen before this chunk report NaN summaries; keep their traces NaN too.
      active = np.isfinite(summary["loss"])
      record = dict(
        summary,
        step=step.astype(np.float64),
        screen_error=screen,
        spectral_radius=_spectral_radii(w_hh),
      )
      for f in TRACE_FIELDS:
        traces[f].append(np.where(active, record[f], np.nan).astype(np.float32))

      # Confirm screen passes with the full test, on the host-selected runs only.
      candidates = np.flatnonzero(~done & (screen < success))
      solved = _host(state.solved).copy()
      solved_at = _host(state.solved_at).copy()
      if candidates.size:
        errors = _full_eval(programs, state, hparams, candidates)
        final_error[candidates] = errors
        passed = candidates[errors < success]
        solved[passed] = True
        solved_at[passed] = step[passed]
        done = done.copy()
        done[passed] = True
      out_of_budget = ~done & (step >= max_updates)
      done = done | out_of_budget
      state = state.replace(
        **_to_devices(dict(done=done, solved=solved, solved_at=solved_at), sharding)
      )
      host["chunk"] += 1
      host["final_error"] = _json_floats(final_error)
      in_flight = False

      now = time.time()
      if now - last_report >= float(config.progress_every_s) or done.all():
        say(_progress_line(name, state, n_runs, chunks_here, now - start, max_updates, chunk_size))
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

  # Unsolved runs get the full test once more at the end, for the table.
  missing = np.flatnonzero(~is_pad & ~_host(state.solved))
  if missing.size:
    final_error[missing] = _full_eval(programs, state, hparams, missing)
    host["final_error"] = _json_floats(final_error)
  save()

  traces = {f: a.T[:n_runs] for f, a in _stack_traces(traces, n_padded).items()}
  rows = []
  solved, solved_at = _host(state.solved), _host(state.solved_at)
  diverged, step = _host(state.diverged), _host(state.step)
  for i, lab in enumerate(labels):
    rows.append(
      dict(
        lab,
        solved=bool(solved[i]),
        updates_to_solve=int(solved_at[i]) if solved[i] else None,
        final_error=float(final_error[i]),
        strict_solved=bool(solved[i] and final_error[i] == 0.0),
        diverged=bool(diverged[i]),
        updates_done=int(step[i]),
      )
    )
  # The final state on the host (gathered from every process), ready to be saved.
  return GroupResult(rows, traces, jax.tree.map(_host, state), time.time() - start)


def _full_eval(programs: _Programs, state: RunState, hparams: HParams, idx: np.ndarray):
  """The paper's test (eval_size fresh sequences) for the runs `idx` only.

  The selected runs are gathered into a batch padded to a power of two, so only a few
  shapes are ever compiled.
  """
  size = 1 << int(math.ceil(math.log2(max(len(idx), 1))))
  take = np.concatenate([idx, np.repeat(idx[-1:], size - len(idx))])
  pick = lambda tree: jax.tree.map(lambda x: jnp.asarray(_host(x)[take]), tree)
  errors = programs.full_eval(pick(state.params), pick(hparams), pick(state.key))
  return np.asarray(errors)[: len(idx)].astype(np.float64)


def _progress_line(name, state, n_runs, chunks, elapsed, max_updates, chunk_size) -> str:
  solved = _host(state.solved)[:n_runs]
  diverged = _host(state.diverged)[:n_runs]
  done = _host(state.done)[:n_runs]
  step = _host(state.step)[:n_runs]
  failed = done & ~solved
  pending = ~done
  rate = chunks * chunk_size / max(elapsed, 1e-9)  # updates per run per second
  left = (max_updates - step[pending]).max() if pending.any() else 0
  eta = left / rate if rate > 0 else math.inf
  return (
    f"{name} solved {solved.sum()}/{n_runs} failed {failed.sum()} "
    f"(diverged {diverged.sum()}) pending {pending.sum()} | "
    f"updates {int(step.max())}/{max_updates} | {rate * n_runs:,.0f} run-updates/s | "
    f"ETA ≤ {_fmt_duration(eta)}"
  )


def _fmt_duration(s: float) -> str:
  if not math.isfinite(s):
    return "?"
  s = int(s)
  return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
