"""The machinery every trainer shares: the run grid, devices, checkpoints, progress, stop.

Both trainers (`rnn_dynamics.synthetic.sweep.run_group`, synthetic tasks, and
`rnn_dynamics.natural.fit`, the natural tasks) stack their runs along one leading "runs"
axis and drive it from one host loop. That loop and what it needs besides the training
step live here, once:

* `grid`: the runs of an experiment (labels × hyper-parameters × paired PRNG keys);
* `devices`: padding the runs axis to the device count, its sharding, host ↔ devices
  (multi-host aware);
* `checkpoint`: one Orbax manager and one composite format (`state`, `host`, `traces`);
* `progress`: one reporter (throttled lines, rate, ETA, `format_duration`);
* `stop`: the stop request and the SIGINT / SIGTERM handlers that set it;
* `events`: each run's scalars as TensorBoard event files (live monitoring);
* `loop`: the host loop itself (`drive`), which steps a trainer and owns polling,
  stopping, checkpoint cadence, progress lines and the event files.
"""

from rnn_dynamics.runs import checkpoint, devices, events, loop, progress, stop
from rnn_dynamics.runs.devices import host, pad_runs, pad_to, runs_sharding, stack, to_devices
from rnn_dynamics.runs.grid import Grid, grid, paired_keys
from rnn_dynamics.runs.progress import Every, Progress, format_duration

__all__ = [
  "Every",
  "Grid",
  "Progress",
  "checkpoint",
  "devices",
  "events",
  "format_duration",
  "grid",
  "host",
  "loop",
  "pad_runs",
  "pad_to",
  "paired_keys",
  "progress",
  "runs_sharding",
  "stack",
  "stop",
  "to_devices",
]
