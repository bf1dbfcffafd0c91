"""The runs axis on the devices: padding, sharding, and moving it between host and devices.

All runs of a program sit on one `jax.sharding` mesh axis, `runs`, that spans every device
of the process group (CPU cores count as devices, see `experiments/__init__.py`); the runs
are independent, so the compiler partitions the vmapped program along it without
collectives. Host-side reads gather the shards from every process, so the same code runs
on one host and on several (BUILD.md, "Several hosts").
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

__all__ = ["host", "pad_runs", "pad_to", "runs_sharding", "stack", "to_devices"]


def stack(trees: Sequence[Any]) -> Any:
  """Stacks a list of pytrees along a new leading (runs) axis."""
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def pad_to(n: int, multiple: int | None = None) -> int:
  """`n` rounded up to a multiple of `multiple` (default: the device count)."""
  multiple = jax.device_count() if multiple is None else multiple
  return -(-n // multiple) * multiple


def pad_runs(tree: Any, n_padded: int) -> Any:
  """Pads the runs axis of every leaf to `n_padded` with copies of the last run."""

  def pad(x):
    return jnp.concatenate([x, jnp.repeat(x[-1:], n_padded - x.shape[0], axis=0)])

  return jax.tree.map(pad, tree)


def runs_sharding() -> NamedSharding:
  """Shards the leading (runs) axis over every device of the process group."""
  # Auto axis: the runs are independent, so the compiler simply partitions the vmapped
  # program along them; no collectives and no explicit-sharding annotations are needed.
  mesh = jax.make_mesh((jax.device_count(),), ("runs",), axis_types=(jax.sharding.AxisType.Auto,))
  return NamedSharding(mesh, PartitionSpec("runs"))


def host(x: jax.Array) -> np.ndarray:
  """A run-sharded array as one numpy array, on every process (hosts gather the shards)."""
  if jax.process_count() > 1:
    x = multihost_utils.process_allgather(x, tiled=True)
  return np.asarray(x)


def to_devices(tree: Any, sharding: NamedSharding | None = None) -> Any:
  """Host values (the same on every process) as run-sharded global arrays.

  `make_array_from_callback` lets each process fill only its own devices' shards, which
  works on one host and on several alike (a plain `device_put` needs every shard local).
  """
  sharding = runs_sharding() if sharding is None else sharding
  return jax.tree.map(
    lambda x: jax.make_array_from_callback(np.shape(x), sharding, lambda i: np.asarray(x)[i]),
    tree,
  )
