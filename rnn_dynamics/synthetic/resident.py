"""Which runs of a group the compiled program holds, and their state on the host and devices.

A group's runs are stacked along one leading runs axis, padded to a multiple of the
device count (padded runs start frozen). The group keeps every run twice (`GroupRuns`):
`full`, all of them on the host as of the last sync, and `resident`, the rows the
compiled program holds on the devices (`Resident`, its rows named by `Slots`), written
back into `full` before every save and compaction.

A group starts from `start_state`: every run as the trainer's `init` makes it (or from
parameters trained elsewhere), padded runs frozen.

Compaction: once the live runs fit in half the program, the group goes on with a smaller
program (sizes `device_count · 2^k`, so compiles stay few and cached) holding only them,
padded with frozen copies of a decided run, so decided runs stop costing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnn_dynamics import runs
from rnn_dynamics.synthetic.train import HParams, RunState

__all__ = ["FLAGS", "GroupRuns", "Resident", "Slots", "compact_size", "start_state"]

# The decision flags of a run, read back to the host after every chunk.
FLAGS = ("step", "done", "solved", "solved_at", "diverged")


def compact_size(n_live: int, n_devices: int) -> int:
  """The program size for `n_live` runs: the smallest `n_devices · 2^k`, k ≥ 1, that
  holds them. Never one run per device: XLA simplifies a size-1 runs axis away, which
  changes the rounding of the reductions most (the loss, the norm)."""
  size = 2 * n_devices
  while size < n_live:
    size *= 2
  return size


def start_state(
  init: Callable, keys: jax.Array, hparams: HParams, initial_params: Any = None
) -> tuple[RunState, HParams]:
  """The group's runs at their start, and their hyper-parameters, on the host, padded to
  a multiple of the device count (padded runs start frozen).

  Args:
    init: `[runs]` keys and hparams → run states (the vmapped `Trainer.init`).
    keys, hparams: `[runs]` each.
    initial_params: `[runs]` parameters the runs start from instead of their
      initialisation (None: `init`'s); the rest of the state is `init`'s.
  """
  n_runs = keys.shape[0]
  n_padded = runs.pad_to(n_runs, jax.device_count())
  hparams_full = jax.device_get(runs.pad_runs(hparams, n_padded))
  state = init(runs.pad_runs(keys, n_padded), jax.tree.map(jnp.asarray, hparams_full))
  if initial_params is not None:
    start = runs.pad_runs(jax.tree.map(jnp.asarray, initial_params), n_padded)
    state = state.replace(
      params=jax.tree.map(lambda x, like: x.astype(like.dtype), start, state.params)
    )
  is_pad = np.arange(n_padded) >= n_runs
  return jax.device_get(state.replace(done=state.done | jnp.asarray(is_pad))), hparams_full


def take(tree: Any, idx: np.ndarray) -> Any:
  """The rows `idx` of every leaf of `tree`, on the host."""
  return jax.tree.map(lambda x: np.asarray(x)[idx], tree)


def put(full: Any, idx: np.ndarray, part: Any) -> Any:
  """A copy of `full` with its rows `idx` replaced by `part`'s (leaf by leaf)."""

  def put_leaf(f, p):
    f = np.array(f, copy=True)
    f[idx] = p
    return f

  return jax.tree.map(put_leaf, full, part)


class Slots:
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


class Resident:
  """The rows the compiled program holds (`slots`): their device state, hyper-parameters
  and, on the host, the decision flags as of the last chunk."""

  def __init__(self, slots: Slots, full: RunState, hparams_full: HParams, sharding):
    self.slots = slots
    rows = (take(full, slots.index), take(hparams_full, slots.index))
    self.state, self.hparams = runs.to_devices(rows, sharding)
    self.read_flags()

  def read_flags(self) -> dict[str, np.ndarray]:
    self.flags = {k: runs.host(getattr(self.state, k)).copy() for k in FLAGS}
    return self.flags

  def into(self, full: RunState) -> RunState:
    """`full` with the program's real rows written back."""
    program = take(jax.tree.map(runs.host, self.state), self.slots.rows)
    return put(full, self.slots.runs(), program)


class GroupRuns:
  """Every padded run of a group: `full` on the host (as of the last `sync`) and the
  program's `resident` rows, from every run (at the start) to the live ones only (after
  `compact`)."""

  def __init__(self, full: RunState, hparams_full: HParams, sharding):
    self.full, self.hparams_full, self.sharding = full, hparams_full, sharding
    n = len(full.step)
    self.resident = Resident(Slots(np.arange(n), np.ones(n, bool)), full, hparams_full, sharding)

  def sync(self) -> None:
    """Writes the program's rows back into `full`."""
    self.full = self.resident.into(self.full)

  def done(self) -> bool:
    """Whether every run the program holds is decided."""
    r = self.resident
    return bool((r.flags["done"] | ~r.slots.real).all())

  def decide(self, flags: dict[str, np.ndarray]) -> None:
    """The program's decision `flags` (`FLAGS`, per program row): the decisions into its
    device state, every flag into `full`."""
    r = self.resident
    decisions = {k: flags[k] for k in ("done", "solved", "solved_at")}
    r.state = r.state.replace(**runs.to_devices(decisions, self.sharding))
    full_flags = {k: getattr(self.full, k) for k in FLAGS}
    self.full = self.full.replace(**put(full_flags, r.slots.runs(), take(flags, r.slots.rows)))

  def compact(self) -> tuple[int, int] | None:
    """Goes on with a smaller program once the live runs fit in half of this one; returns
    the live runs and the new program's size, or None where it stays as it is."""
    slots = self.resident.slots
    live = slots.real & ~self.resident.flags["done"]
    n_live = int(live.sum())
    size = compact_size(n_live, jax.device_count())
    if n_live == 0 or size > len(slots.index) // 2:
      return None
    self.sync()
    # Filler rows copy a decided run: frozen, so they cost a slot and nothing else.
    filler = slots.index[np.flatnonzero(~live)[0]]
    index = np.concatenate([slots.index[live], np.full(size - n_live, filler)])
    compacted = Slots(index, np.arange(size) < n_live)
    self.resident = Resident(compacted, self.full, self.hparams_full, self.sharding)
    return n_live, size
