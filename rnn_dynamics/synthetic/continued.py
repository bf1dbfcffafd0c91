"""Trained models trained on past their pass, with the generalization test as they go.

`experiments/generalization.py` stops each model at its first passed success test (the
original code's stop). Whether its generalization beyond the training lengths is a
property of the solution or of where training happened to stop is a question for more
training: this module takes the trained models of a generalization workdir (its
*source*) and trains every one of them on with the same set-up (task, model, algorithm,
learning rate, clip, α, Ω form, batch, training lengths, non-finite guard: the source's
config, read, not retyped), never stopping one for passing the success test, and tests
every model at each evaluation length every `test_every` updates (the *test points*,
from 0, the models as the source left them, to `updates`).

* The training is one group of the synthetic sweep (`sweep.run_in_workdir`: one vmapped
  program, its checkpoints, progress lines and traces) started from the source's
  parameters, with `stop_on_success=False`; the optimizer state and the data keys start
  afresh (`config.seed`; SGD without momentum has no state but the clip's statistics).
* The tests are steps of the same host loop (`TrainAndTest`, wrapped around the group):
  at a test point every length is one step, its rows written to the table before the
  next, so a stop lands between lengths and a resumed run tests only what is missing.
  The test sequences are the source's (`generalization.test_key` of the source's seed),
  the same at every test point, so test point 0 reproduces the source's
  `generalization.csv`.
* The workdir keeps a copy of the source's models and config (`<workdir>/source/`, laid
  out as a generalization workdir), so it resumes, and publishes, without the source
  folder; the config it records names the source by its config and a checksum of its
  parameters, not by path.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, §4.1.1; arXiv:1211.5063v2, §4.1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from rnn_dynamics import algorithms, results, rnn, runs
from rnn_dynamics.errors import ConfigError, UserError
from rnn_dynamics.runs import loop
from rnn_dynamics.synthetic import generalization, sweep
from rnn_dynamics.tasks import get_task
from rnn_dynamics.workdir import Workdir, group_config

__all__ = [
  "GROUP",
  "SOURCE",
  "SOURCE_GROUP",
  "TABLE",
  "Source",
  "TrainAndTest",
  "check",
  "keep_source",
  "params_sha256",
  "read_source",
  "recorded",
  "setup_of",
  "test_points",
  "train_and_test",
]

SOURCE_GROUP = "train"  # the generalization workdir's group of trained models
SOURCE = "source"  # <workdir>/source/: the copy of the source (a generalization workdir)
GROUP = "continue"  # the workdir's group of continued runs
TABLE = "continued"  # <workdir>/continued.{csv,json}: one row per (seed, test point, length)

# What a generalization workdir's config has (the set-up this module reads from it).
_SETUP = (
  "task", "n_hidden", "init", "algorithm", "lr", "batch_size", "clip", "alpha",
  "omega_form", "min_length", "max_length", "seed", "chunk_size", "success_error",
)  # fmt: skip
_LABELS = ("init", "algorithm", "seed", "min_length", "max_length")


@dataclasses.dataclass(frozen=True)
class Source:
  """The trained models of a generalization workdir.

  Attributes:
    path: the folder they were read from.
    config: its config (the set-up of training), as its `config.json` holds it.
    params: `rnn.Params` fields, `[runs, ...]` each (`groups/train/params.npz`).
    rows: its training rows, one per model (`groups/train/results.json`).
  """

  path: Path
  config: dict[str, Any]
  params: dict[str, np.ndarray]
  rows: list[dict[str, Any]]

  @property
  def sha256(self) -> str:
    return params_sha256(self.params)


def params_sha256(params: dict[str, np.ndarray]) -> str:
  """A checksum of stacked parameters (names, dtypes, shapes and bytes), independent of
  how the `.npz` file holding them was written."""
  digest = hashlib.sha256()
  for name in sorted(params):
    a = np.ascontiguousarray(params[name])
    digest.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
    digest.update(a.tobytes())
  return digest.hexdigest()


def read_source(path: str | Path, flag: str = "--from_workdir") -> Source:
  """The trained models of the generalization workdir at `path`.

  Raises:
    ConfigError: `path` is not a generalization workdir, or its models are not trained
      yet (`flag` names where the path came from, in the message).
    CorruptFileError: one of its files is damaged.
  """
  try:
    source = Workdir.open(path, of="experiments.generalization")
  except ConfigError as e:
    raise ConfigError(f"{flag}: {e}") from e
  missing = [k for k in _SETUP if k not in source.config]
  if missing:
    raise ConfigError(
      f"{flag}={path} is not a workdir of experiments.generalization (its config.json has "
      f"no {', '.join(missing)})"
    )
  if not source.is_done(SOURCE_GROUP):
    raise ConfigError(
      f"{flag}={path}: its models are not trained yet (no groups/{SOURCE_GROUP}/results.json); "
      "let experiments.generalization finish on it first"
    )
  rows = source.load_rows(SOURCE_GROUP)
  params = source.load_params(SOURCE_GROUP)
  if any(len(v) != len(rows) for v in params.values()) or set(params) != set(_params_fields()):
    raise ConfigError(
      f"{flag}={path}: groups/{SOURCE_GROUP}/params.npz does not hold one model per row of "
      "its results.json"
    )
  return Source(Path(path), dict(source.config), params, rows)


def _params_fields() -> tuple[str, ...]:
  return tuple(f.name for f in dataclasses.fields(rnn.Params))


def check(config: ml_collections.ConfigDict, source: Source, flag: str) -> None:
  """What the continuation's config must satisfy given its source (the relations its
  own validation cannot see); raises one `ConfigError` naming every problem."""
  chunk = int(source.config["chunk_size"])
  where = f"{flag}={source.path}"
  problems = [
    f"--config.{field}={config[field]} must be a multiple of the models' chunk_size={chunk} "
    f"({where})"
    for field in ("updates", "test_every")
    if config[field] % chunk
  ]
  least = get_task(source.config["task"]).min_length
  if any(length < least for length in config.eval_lengths):
    problems.append(
      f"--config.eval_lengths={','.join(map(str, config.eval_lengths))}: "
      f"{source.config['task']} needs lengths ≥ {least}"
    )
  if problems:
    raise ConfigError("; ".join(problems))


def recorded(config: ml_collections.ConfigDict, source: Source) -> ml_collections.ConfigDict:
  """The config a continuation's workdir records: its own fields, the source's config
  (`source`) and the checksum of the models it starts from (`source_params_sha256`), so
  a resumed run is refused if it is pointed at other models."""
  out = config.copy_and_resolve_references()
  with out.unlocked():
    out.source = ml_collections.ConfigDict(source.config)
    out.source_params_sha256 = source.sha256
  return out


def keep_source(workdir: Workdir, source: Source) -> None:
  """Copies the source's config, models and training rows into `<workdir>/source/` (laid
  out as a generalization workdir, so `read_source` reads it), unless already there."""
  folder = workdir.output(SOURCE)
  group = folder / "groups" / SOURCE_GROUP
  if (group / "results.json").is_file():
    return
  results.write_json(folder / "config.json", source.config)
  results.write_npz(group / "params.npz", source.params)
  results.write_results(group / "results", source.rows)  # written last: marks it whole


def test_points(config: ml_collections.ConfigDict) -> list[int]:
  """Updates after the pass at which the models are tested: 0, test_every, …, updates."""
  return list(range(0, int(config.updates) + 1, int(config.test_every)))


def setup_of(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The source's config (the set-up of training) out of a recorded config, unlocked."""
  return ml_collections.ConfigDict(config.source.to_dict())


def _hparams(setup: ml_collections.ConfigDict):
  return algorithms.hparams(
    setup.algorithm, lr=setup.lr, clip=setup.clip, alpha=setup.alpha, init=setup.init
  )


class TrainAndTest:
  """A `runs.loop` stepper: the continued group's chunks, and at each test point (the
  group's updates equal to one of `test_points`) the generalization test of every model,
  one evaluation length per step.

  Args:
    group: the group in training (`sweep.run_group`'s stepper; `group.state()`).
    config: the continuation's recorded config (`recorded`).
    source: the models' source (their labels and training rows).
    workdir: where the table goes (`TABLE`).
  """

  def __init__(self, group, config: ml_collections.ConfigDict, source: Source, workdir: Workdir):
    self.group, self.name, self.say = group, group.name, group.say
    self.config, self.source, self.workdir = config, source, workdir
    self.setup = setup_of(config)
    self.n = len(source.rows)
    self.hparams = runs.stack([_hparams(self.setup)] * self.n)
    self.rows = workdir.table(TABLE, default=[])
    self.finished = {(int(r["updates_after_pass"]), int(r["eval_length"])) for r in self.rows}
    self.updates = int(np.max(group.state().step[: self.n]))

  def _next_length(self) -> int | None:
    """The next length to test at the group's position, if it is a test point."""
    if self.updates not in test_points(self.config):
      return None
    for length in map(int, self.config.eval_lengths):
      if (self.updates, length) not in self.finished:
        return length
    return None

  def done(self) -> bool:
    return self.group.done() and self._next_length() is None

  def step(self) -> loop.Step:
    length = self._next_length()
    if length is None:
      step = self.group.step()
      if step.at is not None and np.isfinite(step.at).any():
        self.updates = int(np.nanmax(step.at))
      return step
    t0, point, state = time.time(), self.updates, self.group.state()
    params = jax.tree.map(lambda x: np.asarray(x)[: self.n], state.params)
    n = int(self.config.eval_sequences)
    (_, errors, block), = generalization.errors_at_lengths(
      self.setup,
      params,
      self.hparams,
      [length],
      n,
      int(self.config.eval_batch),
      vmapped=True,
      block_steps=int(self.config.eval_block_steps),
    )
    diverged = np.asarray(state.diverged)[: self.n]
    self.rows += [
      self._row(source_row, point, length, e, bool(d), n)
      for source_row, e, d in zip(self.source.rows, errors, diverged, strict=True)
    ]
    self.rows.sort(key=lambda r: (r["seed"], r["updates_after_pass"], r["eval_length"]))
    self.workdir.write_table(self.rows, stem=TABLE)
    self.finished.add((point, length))
    mistakes = [None if not math.isfinite(e) else round(e * n) for e in errors]
    self.say(
      f"{self.name}: {point:,} updates after the pass, length {length}: errors {mistakes} "
      f"(of {n:,}; block {block}) in {time.time() - t0:.1f} s"
    )
    at = np.full(self.n, point)
    return loop.Step(
      units=0,
      # A test point's last length: checkpoint here, so a resume starts past it.
      save=self._next_length() is None,
      scalars={f"generalization/error_T{length}": np.asarray(errors, np.float64)},
      at=at,
    )

  def _row(self, source_row, point: int, length: int, error: float, diverged: bool, n: int):
    lo, hi = int(self.setup.min_length), int(self.setup.max_length)
    return dict(
      {k: source_row[k] for k in _LABELS},
      solved=source_row["solved"],
      updates_to_solve=source_row["updates_to_solve"],
      updates_after_pass=point,
      updates_total=int(source_row["updates_done"]) + point,
      diverged=diverged,
      eval_length=length,
      in_training_range=lo <= length < hi,
      n_sequences=n,
      errors=round(error * n) if math.isfinite(error) else None,
      error=float(error),
    )

  def position(self) -> str:
    return self.group.position()

  def progress_line(self, progress: runs.Progress, now: float) -> str:
    # The group's own line counts runs as solved or failed, which says nothing here.
    budget = int(self.config.updates)
    diverged = int(np.sum(self.group.state().diverged[: self.n]))
    lengths = list(map(int, self.config.eval_lengths))
    points = test_points(self.config)
    tested = sum(all((p, t) in self.finished for t in lengths) for p in points)
    eta = progress.eta(budget - self.updates, now)
    return (
      f"{self.name}: {self.updates:,}/{budget:,} updates after the pass, {self.n} models "
      f"(diverged {diverged}) | tested at {tested}/{len(points)} points | "
      f"{progress.rate(now) * self.n:,.0f} run-updates/s | ETA ≤ {runs.format_duration(eta)}"
    )

  def save(self) -> None:
    self.group.save()


def train_and_test(
  config: ml_collections.ConfigDict, workdir: Workdir, source: Source
) -> tuple[list[dict], list[dict]]:
  """Trains the source's models on for `config.updates` updates, testing them at every
  test point (or resumes, or loads what is finished).

  Args:
    config: the recorded config (`recorded`).
    workdir: the continuation's workdir (made with `config`).
    source: the models it starts from.

  Returns:
    (the group's rows, one per model, as of its end, without the success fields of a
    test it did not take; the table, one row per (model, test
    point, evaluation length)).
  """
  setup = setup_of(config)
  by_seed = {int(r["seed"]): r for r in source.rows}
  grid = runs.grid(
    [setup.algorithm],
    list(by_seed),
    seed=int(config.seed),
    # Where the source stopped the model (the group's own `updates_done` counts after it).
    label=lambda alg, s: dict(
      {k: by_seed[s][k] for k in _LABELS}, trained_updates=int(by_seed[s]["updates_done"])
    ),
    hparams=lambda alg: _hparams(setup),
  )
  group_cfg = group_config(
    setup,
    max_updates=int(config.updates),
    seed=int(config.seed),
    stop_on_success=False,
    checkpoint_every_s=float(config.checkpoint_every_s),
    progress_every_s=float(config.progress_every_s),
  )
  name = f"continue [{setup.min_length}, {setup.max_length})"
  group = sweep.run_in_workdir(
    workdir,
    GROUP,
    group_cfg,
    grid,
    name=name,
    initial_params=rnn.Params(**source.params),
    wrap=lambda g: TrainAndTest(g, config, source, workdir),
  )
  rows = workdir.table(TABLE, default=[])
  done = {(int(r["updates_after_pass"]), int(r["eval_length"])) for r in rows}
  missing = [
    (p, t) for p in test_points(config) for t in map(int, config.eval_lengths) if (p, t) not in done
  ]
  if missing and not any(r["diverged"] for r in group.rows):
    raise UserError(
      f"{workdir.path}: group {GROUP} is finished but {TABLE}.json lacks test points "
      f"{missing[:3]}…: delete {workdir.group_path(GROUP)} and run again"
    )
  # No run is tested for success while it trains on: the group's `solved` fields say
  # nothing; `final_error` is the paper's test at the end.
  unasked = ("solved", "updates_to_solve", "strict_solved")
  return [{k: v for k, v in r.items() if k not in unasked} for r in group.rows], rows
