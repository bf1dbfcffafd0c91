"""One checkpoint format for every trainer: an Orbax composite of `state`, `host`, `traces`.

* `state`: the stacked run state (a pytree of run-sharded arrays), restored onto the
  runs sharding;
* `host`: the host loop's bookkeeping, as JSON (chunk and epoch counters, results so far);
* `traces`: optional, per-chunk summaries (host arrays).

Only the latest checkpoint is kept, and saves are synchronous: a trainer saves between
chunks, and a save that returned is on disk (an interrupt right after it loses nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import jax
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding

from rnn_dynamics import clipping

__all__ = ["Restored", "manager", "restore", "save"]

# Earlier layouts of a trainer's state that checkpoints on disk may hold: (how `like`
# looked then, how to bring what was restored up to date). Norm-clipped programs kept a
# `ClipByNormState` before every algorithm shared one clip (a `ClipElementwiseState`).
_FORMER_LAYOUTS = ((clipping.as_norm_states, clipping.from_norm_states),)


def manager(directory: str | Path) -> ocp.CheckpointManager:
  """The Orbax manager of one trainer's checkpoints in `directory`."""
  return ocp.CheckpointManager(
    Path(directory).absolute(),
    options=ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False),
  )


class Restored(NamedTuple):
  state: Any
  host: dict[str, Any]
  traces: Any  # None when the checkpoint was restored without traces


def save(
  mgr: ocp.CheckpointManager, step: int, *, state: Any, host: dict[str, Any], traces: Any = None
) -> None:
  """Writes checkpoint `step` (replacing the previous one) and waits until it is on disk."""
  items = dict(state=ocp.args.StandardSave(state), host=ocp.args.JsonSave(host))
  if traces is not None:
    items["traces"] = ocp.args.StandardSave(traces)
  mgr.save(step, args=ocp.args.Composite(**items), force=True)
  mgr.wait_until_finished()


def restore(
  mgr: ocp.CheckpointManager, like: Any, sharding: NamedSharding, *, traces: bool = False
) -> Restored | None:
  """The latest checkpoint, its state restored with the shapes and dtypes of `like` onto
  `sharding` (host arrays are fine: only their shapes are read); None when there is none.
  A checkpoint in an earlier layout of the same state (`_FORMER_LAYOUTS`) is read in it
  and brought up to date."""
  step = mgr.latest_step()
  if step is None:
    return None

  def read(like):
    abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), like
    )
    items = dict(state=ocp.args.StandardRestore(abstract), host=ocp.args.JsonRestore())
    if traces:
      items["traces"] = ocp.args.StandardRestore()
    got = mgr.restore(step, args=ocp.args.Composite(**items))
    return Restored(got["state"], got["host"], got["traces"] if traces else None)

  try:
    return read(like)
  except ValueError as error:  # Orbax: the tree on disk is not `like`'s
    for then, update in _FORMER_LAYOUTS:
      former = then(like)
      if jax.tree.structure(former) == jax.tree.structure(like):
        continue
      try:
        got = read(former)
      except ValueError:
        continue
      return got._replace(state=update(got.state))
    raise error
