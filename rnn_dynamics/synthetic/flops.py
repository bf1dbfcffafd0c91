"""What one training update costs, in floating-point operations, as XLA counts them.

`update_flops(config, hparams)` is the count of one update of one run (sampling its batch,
the forward and backward scans, Ω where the config computes it, clipping and the
optimizer step) from XLA's HLO cost analysis (`jax.jit(...).lower(...).cost_analysis()`:
the program before optimisation, so the count does not depend on the backend or on which
operations the compiler fuses or drops). The analysis counts the body of a loop once,
whatever its trip count, so the update is lowered with its scans fully unrolled. Unrolled
programs grow with the length, so the count is taken at the task's two shortest buffer
lengths and extended along the line through them: every step of a scan costs the same,
so the cost of an update is affine in its buffer length (`tests/test_methods.py` checks
the line against a direct count at a third length).
"""

from __future__ import annotations

import jax
import ml_collections

from rnn_dynamics.synthetic import train as train_lib
from rnn_dynamics.tasks import get_task

__all__ = ["affine_flops", "counted_flops", "update_flops"]


def counted_flops(config: ml_collections.ConfigDict, hparams, length: int) -> float:
  """XLA's count for one update of one run at the fixed length `length`, unrolled."""
  task = get_task(config.task)
  cfg = config.copy_and_resolve_references()
  with cfg.unlocked():
    cfg.min_length = cfg.max_length = int(length)
    cfg.chunk_size = 1
    cfg.scan_unroll = int(task.buffer_length(int(length)))
  trainer = train_lib.make_train(cfg)
  state = jax.eval_shape(trainer.init, jax.random.PRNGKey(0), hparams)
  lowered = jax.jit(trainer.chunk).lower(state, hparams, 0)
  cost = lowered.cost_analysis()
  if isinstance(cost, list):  # older jax: one entry per computation
    cost = cost[0]
  return float(cost["flops"])


def affine_flops(config: ml_collections.ConfigDict, hparams) -> tuple[float, float]:
  """`(a, b)` with FLOPs per update `= a + b · buffer_length`, from the counts at the
  task's shortest length and the next one."""
  task = get_task(config.task)
  t0 = int(task.min_length)
  t1 = t0 + 1
  while task.buffer_length(t1) == task.buffer_length(t0):
    t1 += 1
  b0, b1 = task.buffer_length(t0), task.buffer_length(t1)
  f0, f1 = counted_flops(config, hparams, t0), counted_flops(config, hparams, t1)
  slope = (f1 - f0) / (b1 - b0)
  return f0 - slope * b0, slope


def update_flops(coefficients: tuple[float, float], task: str, length: int) -> float:
  """FLOPs per update at the fixed length `length`, from `affine_flops`'s line."""
  a, b = coefficients
  return a + b * get_task(task).buffer_length(int(length))
