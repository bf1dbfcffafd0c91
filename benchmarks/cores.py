r"""Two long runs on a 2-core CPU: one process on both cores, or one process per core?

The workload is a `pathological.py:long` group (docs/reference.md §4): 5 SGD-CR runs of the
paper's 50-unit RNN on lengths drawn in [50, 200), minibatch 20. Two layouts train the
two long tasks (addition and multiplication), timed over the same number of chunks:

* **shared**: one task at a time in one process that shards its runs over every core
  (`--xla_force_host_platform_device_count=<cores>`, what a binary does by default;
  5 runs are padded to a multiple of the device count);
* **pinned**: both tasks at once, each in its own process on one core (`taskset -c i`,
  one device, no padding).

Each child process compiles and warms up on one chunk, then times `--chunks` chunks of
`_Group.step` (training, the cheap screen and any full tests, as a run does). The
total run-updates/s of the pinned pair over the shared process's is the `ratio`; rounds
alternate the layouts so that drift in the machine's load falls on both.

  python -m benchmarks.cores                   # 2 rounds of 10 chunks: ~6 min on 2 cores
  python -m benchmarks.cores --rounds=1 --chunks=3 --out=cores.json
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags

_ROUNDS = flags.DEFINE_integer("rounds", 2, "Rounds, each timing both layouts.")
_CHUNKS = flags.DEFINE_integer("chunks", 10, "Timed chunks (1,000 updates each) per process.")
_OUT = flags.DEFINE_string("out", None, "Write the measurements as JSON here.")
_CHILD = flags.DEFINE_string("child", None, "Internal: time one task in this process.")

_TASKS = ("addition", "multiplication")


def _time_task(task: str, chunks: int) -> float:
  """Run-updates/s of one long group of `task`, over `chunks` chunks after a warm-up."""
  from experiments import pathological, validation
  from experiments.configs import pathological as configs
  from rnn_dynamics import runs
  from rnn_dynamics.synthetic import sweep, train

  config = configs.get_config("long")
  config.task = task
  cfg = configs.resolve(validation.validate(config, "pathological"))
  grid = runs.grid(
    cfg.algorithms,
    cfg.seeds,
    seed=cfg.seed,
    label=lambda alg, seed: dict(algorithm=alg, seed=seed),
    hparams=lambda alg: pathological._hparams(cfg, alg),
  )
  group = sweep._Group(
    train.make_train(cfg),
    cfg,
    grid.labels,
    grid.hparams,
    grid.keys,
    checkpoint_dir=None,
    name=task,
    say=lambda line: None,
    programs=None,
  )
  group.step()  # compiles
  start = time.perf_counter()
  for _ in range(chunks):
    group.step()
  return chunks * int(cfg.chunk_size) * len(grid) / (time.perf_counter() - start)


def _spawn(task: str, devices: int, core: int | None) -> subprocess.Popen:
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  cmd = [sys.executable, "-m", "benchmarks.cores", f"--child={task}", f"--chunks={_CHUNKS.value}"]
  if core is not None:
    cmd = ["taskset", "-c", str(core), *cmd]
  return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)


def _rate(proc: subprocess.Popen) -> float:
  out, _ = proc.communicate()
  if proc.returncode:
    raise RuntimeError(f"a timing process failed (exit {proc.returncode})")
  return float(out.strip().splitlines()[-1])


def main(argv):
  del argv
  if _CHILD.value:
    print(_time_task(_CHILD.value, _CHUNKS.value))
    return
  cores = os.cpu_count() or 1
  if cores < 2:
    raise app.UsageError("needs at least 2 cores: the question is how to use them")
  rounds = []
  for r in range(_ROUNDS.value):
    shared = statistics.fmean(_rate(_spawn(t, cores, None)) for t in _TASKS)
    pinned = [_spawn(t, 1, core) for core, t in enumerate(_TASKS)]
    pinned_total = sum(_rate(p) for p in pinned)
    rounds.append(dict(shared=shared, pinned_total=pinned_total, ratio=pinned_total / shared))
    print(
      f"round {r + 1}: shared {shared:.0f} run-updates/s (one task, {cores} cores), "
      f"pinned {pinned_total:.0f} (two tasks, one core each): ratio {pinned_total / shared:.2f}"
    )
  ratio = statistics.median(x["ratio"] for x in rounds)
  if _OUT.value:
    with open(_OUT.value, "w") as f:
      json.dump(dict(cores=cores, chunks=_CHUNKS.value, rounds=rounds, ratio=ratio), f, indent=1)
  print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
  app.run(main)
