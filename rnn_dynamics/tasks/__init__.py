"""The pathological synthetic tasks and a registry of them by name.

References:
  Hochreiter & Schmidhuber (1997), Long short-term memory, §5.
  Martens & Sutskever (2011), Learning recurrent neural networks with Hessian-free
  optimization.
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, §4.1 and supplementary material; docs/reference.md §3.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from rnn_dynamics.tasks.arithmetic import addition, multiplication
from rnn_dynamics.tasks.base import Batch, Task, sample_per_sequence_lengths
from rnn_dynamics.tasks.memorization import memorization
from rnn_dynamics.tasks.permutation import permutation
from rnn_dynamics.tasks.temporal_order import temporal_order, temporal_order_3bit

__all__ = [
  "TASKS",
  "Batch",
  "Task",
  "addition",
  "get_task",
  "memorization",
  "multiplication",
  "permutation",
  "sample_per_sequence_lengths",
  "temporal_order",
  "temporal_order_3bit",
]

_FACTORIES: dict[str, Callable[[], Task]] = {
  "temporal_order": temporal_order,
  "temporal_order_3bit": temporal_order_3bit,
  "addition": addition,
  "multiplication": multiplication,
  "permutation": permutation,
  "memorization_5bit": lambda: memorization(2, 5, name="memorization_5bit"),
  "memorization_20bit": lambda: memorization(5, 10, name="memorization_20bit"),
}

TASKS: tuple[str, ...] = tuple(_FACTORIES)
"""Names `get_task` accepts."""


def get_task(name: str) -> Task:
  """Returns the task registered under `name` with its published settings.

  Cached, so that repeated look-ups return the same `Task` (and the same `sample`
  callable): a task passed as a static argument then hits jit's cache.

  Args:
    name: one of `TASKS`.

  Returns:
    The `Task`.

  Raises:
    ValueError: if `name` is not registered; the message lists the valid names.

  References:
    docs/reference.md §3 (the table of tasks).
  """
  if not isinstance(name, str) or name not in _FACTORIES:
    raise ValueError(f"unknown task {name!r}; valid choices: {', '.join(TASKS)}")
  return _build(name)


@functools.cache
def _build(name: str) -> Task:
  return _FACTORIES[name]()
