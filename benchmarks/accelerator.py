r"""Accelerator check: how fast the engine trains on the device JAX sees, and what the
`paper` preset of Figure 7 would cost there.

On whatever `jax.devices()` lists (a GPU, TPU cores, or the CPU), with the Figure 7 set-up
(temporal order, 50 tanh units, batch 20; the `experiments/configs/success_rate.py:paper`
config with `min_length = max_length = T`), this measures, for SGD-C and SGD-CR at T = 50
and 200:

* run-updates/s against the number of runs trained at once (45, 405, 4096, …): the runs
  axis grows until a size fails (out of memory), one chunk takes longer than
  `--max_chunk_s`, or more runs stop paying (less than `--saturation`× the previous
  size's run-updates/s: the device is full);
* the time per scan step, update time / 2T (a forward and a backward scan of T steps per
  update), and how it changes with `lax.scan(unroll=u)` (`config.scan_unroll`; SGD-CR at
  45 runs). Whether the engine honours the field is checked by comparing the lowered
  programs: if they are identical, the output says so and the unroll rows time one
  program;
* the projected wall time of the `paper` preset (3 inits × 3 algorithms × 5 seeds = 45
  runs per length, lengths 10 … 250, up to 5M updates per run), worst case (no run is ever
  solved) and, with `--solve_times=<results.json>`, with those solve times (the model is
  in `project_wall_s` and `decided_updates`).

Timing is the engine's own machinery, shared with `benchmarks/throughput.py`:
`make_train(config).chunk`, `jit(vmap(·))`, runs padded to the device count and sharded
over every device like `rnn_dynamics.synthetic.sweep.run_group`; one warm-up call (compiles), then
up to `--reps` timed calls. Only `chunk` runs (no screens), as in the throughput benchmark.

Every run is bounded by `--budget_s` (default 420 s): before each measurement the script
estimates its cost (the slowest compile so far plus its calls, assuming time grows in
proportion to the runs) and skips it when that would overrun the budget; skipped
measurements are listed in the output. Measurements go in order of importance: what the
projection needs (45 runs, both lengths, both algorithms), then SGD-CR's runs axis, then
the unroll factors, then SGD-C's runs axis.

  python -m benchmarks.accelerator --out=accelerator.json
  python -m benchmarks.accelerator --solve_times=runs/fig7/results.json --out=acc.json
  python -m benchmarks.accelerator --tiny      # CPU-sized smoke run, seconds
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from absl import app, flags, logging

from benchmarks import throughput
from experiments import runtime
from experiments.configs import success_rate

__all__ = [
  "DEFAULT",
  "TINY",
  "Settings",
  "decided_updates",
  "fit_affine",
  "format_report",
  "project_wall_s",
  "run_check",
  "seconds_per_update_at",
]


@dataclasses.dataclass(frozen=True)
class Settings:
  """What to measure.

  Attributes:
    lengths: sequence lengths T.
    algorithms: `sgd_c` and/or `sgd_cr`.
    run_counts: runs trained at once, in growing order (growth stops early, see module
      docstring).
    unrolls: `config.scan_unroll` values (1 first: the default).
    unroll_runs: runs for the unroll measurements (SGD-CR).
    group_runs: runs per group of the preset projected (None: from the preset, 45).
    chunk_steps: sequence steps per run in one compiled call (`round(chunk_steps / T)`
      updates per call), as in `benchmarks/throughput.py`.
    reps: timed calls per measurement at most (1 when one call is slow).
    budget_s: total time limit.
    max_chunk_s: a size whose call takes longer than this is the largest tried.
    saturation: keep growing the runs axis only while a size gives at least this factor
      more run-updates/s than the previous one.
    preset: the config preset timed and projected.
  """

  lengths: Sequence[int] = (50, 200)
  algorithms: Sequence[str] = ("sgd_c", "sgd_cr")
  run_counts: Sequence[int] = (45, 405, 4096, 16384, 65536)
  unrolls: Sequence[int] = (1, 2, 4, 8)
  unroll_runs: int = 45
  group_runs: int | None = None
  chunk_steps: int = 5000
  reps: int = 3
  budget_s: float = 420.0
  max_chunk_s: float = 15.0
  saturation: float = 1.1
  preset: str = "paper"


DEFAULT = Settings()
TINY = Settings(
  lengths=(10, 12),  # temporal order needs T >= 10
  run_counts=(2, 4),
  unrolls=(1, 2),
  unroll_runs=2,
  chunk_steps=48,
  reps=2,
  max_chunk_s=5.0,
  saturation=0.0,  # always try every size: the test wants every code path
)


# --- the projection model (pure) -------------------------------------------------------


def fit_affine(points: Mapping[int, float]) -> tuple[float, float]:
  """`(a, b)` of `y(T) = a + b·T` fitted to `{T: y}` by least squares.

  Per-update time is a fixed part (sampling, optimizer, launch) plus a part per sequence
  step. Neither part can be negative. A negative slope means timing noise exceeds the
  step cost over the measured lengths (close lengths on a busy machine): then the time
  is flat, `a` = the mean and `b = 0`. A negative intercept: `a = 0` and `b` is the
  least-squares slope through the origin, which is also the fit for a single point.
  """
  if not points:
    raise ValueError("need at least one point")
  ts = np.asarray(list(points), np.float64)
  ys = np.asarray(list(points.values()), np.float64)
  if len(ts) >= 2 and np.ptp(ts) > 0:
    b, a = np.polyfit(ts, ys, 1)
    if b < 0:
      return float(np.mean(ys)), 0.0
    if a >= 0:
      return float(a), float(b)
  return 0.0, float(np.sum(ts * ys) / np.sum(ts * ts))


def seconds_per_update_at(points: Mapping[int, float], n_runs: int) -> float:
  """Seconds per update of a group of `n_runs` runs, from measured `{runs: seconds}`.

  Piecewise linear in the runs between measured sizes. Below the smallest size, that
  size's time (fewer runs are never assumed faster: on accelerators the time is flat
  there, on CPUs this overestimates). Above the largest, time grows in proportion to the
  runs (the device is assumed full).
  """
  if not points:
    raise ValueError("need at least one point")
  ns = sorted(points)
  if n_runs <= ns[0]:
    return float(points[ns[0]])
  if n_runs >= ns[-1]:
    return float(points[ns[-1]]) * n_runs / ns[-1]
  return float(np.interp(n_runs, ns, [points[n] for n in ns]))


def decided_updates(
  rows: Sequence[Mapping[str, Any]],
  *,
  lengths: Sequence[int],
  algorithms: Sequence[str],
  runs_per_algorithm: int,
  max_updates: int,
) -> dict[int, list[int]]:
  """Updates until each run of a group is decided, per length, from measured solve times.

  The model: for each (length, algorithm) the rows give the solved fraction `f` and the
  median `m` of `updates_to_solve` over the solved rows. Of the group's
  `runs_per_algorithm` runs of that algorithm, `round(f · runs_per_algorithm)` (half up)
  are decided at `min(m, max_updates)` updates, the others run the whole `max_updates`
  (rows unsolved within their own budget count as never solved). A length or algorithm
  without rows is worst case.

  Args:
    rows: result rows (`length`, `algorithm`, `solved`, `updates_to_solve`), e.g. a
      workdir's `results.json`.
    lengths, algorithms: the preset's.
    runs_per_algorithm: runs of each algorithm per group (inits × seeds).
    max_updates: the preset's budget per run.

  Returns:
    `{length: [updates per run]}`, `len(algorithms) · runs_per_algorithm` entries each.
  """
  out = {}
  for t in lengths:
    per_run = []
    for alg in algorithms:
      mine = [r for r in rows if int(r["length"]) == int(t) and r["algorithm"] == alg]
      solved = [int(r["updates_to_solve"]) for r in mine if r["solved"]]
      n_solved = math.floor(len(solved) / len(mine) * runs_per_algorithm + 0.5) if mine else 0
      at = min(int(statistics.median(solved)), max_updates) if solved else max_updates
      per_run += [at] * n_solved + [max_updates] * (runs_per_algorithm - n_solved)
    out[int(t)] = per_run
  return out


def project_wall_s(
  update_s: Mapping[int, float],
  decided: Mapping[int, Sequence[int]],
  chunk_size: int,
  run_update_s: Mapping[int, float] | None = None,
) -> dict[str, Any]:
  """Wall time of a sweep: one group per length, each run until its last run is decided.

  A group of the engine runs whole chunks until every run is decided (decided runs are
  frozen but still computed), so group `T` takes
  `update_s[T] · chunk_size · ceil(max(decided[T]) / chunk_size)`. With `run_update_s`
  (seconds per single-run update when the device is full) also the `packed` bound
  `Σ_runs decided · run_update_s[T]`: what an engine that drops decided runs and keeps
  the device full of work could approach. Screens and host work are not counted.

  Args:
    update_s: `{T: seconds per update of the whole group}`.
    decided: `{T: updates until decided, per run}`.
    chunk_size: updates per compiled call (and between screens).
    run_update_s: `{T: seconds per run-update at the best measured throughput}`.

  Returns:
    `{"per_length": {T: {"group_s", "updates", "packed_s"?}}, "total_s", "packed_s"?}`.
  """
  per_length, total, packed = {}, 0.0, 0.0
  for t, runs in decided.items():
    updates = math.ceil(max(runs) / chunk_size) * chunk_size
    row = {"updates": updates, "group_s": update_s[t] * updates}
    total += row["group_s"]
    if run_update_s is not None:
      row["packed_s"] = run_update_s[t] * float(sum(runs))
      packed += row["packed_s"]
    per_length[t] = row
  out: dict[str, Any] = {"per_length": per_length, "total_s": total}
  if run_update_s is not None:
    out["packed_s"] = packed
  return out


# --- measuring -------------------------------------------------------------------------


def _plan(settings: Settings, unroll: int) -> throughput.Plan:
  return throughput.Plan(
    lengths=tuple(settings.lengths),
    algorithms=tuple(settings.algorithms),
    chunk_steps=settings.chunk_steps,
    preset=settings.preset,
    scan_unroll=int(unroll),
  )


class _Clock:
  """The budget: elapsed time, and whether a measurement of a given cost still fits."""

  def __init__(self, budget_s: float):
    self.t0, self.budget_s = time.perf_counter(), float(budget_s)
    self.compile_s = 0.0  # the slowest warm-up (compile + one call) so far

  def elapsed(self) -> float:
    return time.perf_counter() - self.t0

  def fits(self, estimate_s: float) -> bool:
    now = self.elapsed()
    return now < self.budget_s and now + estimate_s <= self.budget_s


def _measure(
  programs: throughput._JaxPrograms,
  settings: Settings,
  clock: _Clock,
  algorithm: str,
  length: int,
  n_runs: int,
  predicted_call_s: float,
) -> dict[str, Any]:
  """One (algorithm, T, runs, unroll) point: warm-up, then timed calls of `trainer.chunk`."""
  unroll = programs.plan.scan_unroll
  out: dict[str, Any] = {
    "algorithm": algorithm,
    "length": int(length),
    "runs": int(n_runs),
    "unroll": int(unroll),
  }
  estimate = clock.compile_s + (1 + settings.reps) * predicted_call_s
  if not clock.fits(estimate):
    out.update(status="skipped", reason=f"budget: ~{estimate:.0f} s would overrun it")
    return out
  job = None
  try:
    t0 = time.perf_counter()
    job = throughput._JaxTraining(programs, algorithm, length, n_runs)
    job()  # compiles
    warmup = time.perf_counter() - t0
    seconds = []
    while len(seconds) < settings.reps:
      seconds.append(throughput._timed(job)[0])
      # One call is enough when it is long; more only while they fit the budget.
      if seconds[-1] > settings.max_chunk_s / 3 or not clock.fits(seconds[-1]):
        break
  except (jax.errors.JaxRuntimeError, MemoryError) as e:  # out of memory, a failed compile
    out.update(
      status="failed", reason=f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:300]}"
    )
    return out
  finally:
    del job
    gc.collect()
  call_s = statistics.median(seconds)
  clock.compile_s = max(clock.compile_s, warmup - call_s)
  updates = throughput._chunk_size(programs.plan, length)
  update_s = call_s / updates
  out.update(
    status="ok",
    runs_padded=throughput._padded(n_runs),
    updates_per_call=updates,
    seconds=seconds,
    warmup_s=warmup,
    call_s=call_s,
    update_s=update_s,
    step_us=update_s / (2 * length) * 1e6,
    run_updates_per_s=n_runs / update_s,
  )
  return out


def _unroll_digests(
  programs: Mapping[int, throughput._JaxPrograms], length: int, n_runs: int
) -> dict[int, str]:
  """A digest of each unroll's lowered SGD-CR chunk program (traced, not compiled)."""
  base = next(iter(programs.values()))
  job = throughput._JaxTraining(base, "sgd_cr", length, n_runs)
  out = {}
  for u, p in programs.items():
    text = p.get(length, True)[1].lower(job.state, job.hparams, np.int32(0)).as_text()
    out[u] = hashlib.sha256(text.encode()).hexdigest()
  return out


def run_check(
  settings: Settings,
  solve_rows: Sequence[Mapping[str, Any]] | None = None,
  log: Callable[[str], None] = logging.info,
) -> dict[str, Any]:
  """Measures what `settings` asks, within its budget, and projects the preset.

  Args:
    settings: what to measure.
    solve_rows: result rows with measured solve times (`decided_updates`), or None.
    log: receives progress lines.

  Returns:
    A JSON-able dict: `machine`, `settings`, `measurements` (one entry per point, with
    `status` ok / failed / skipped and, when ok, `update_s`, `step_us`,
    `run_updates_per_s`), `growth_stopped` (why each runs axis stopped),
    `unroll_honored`, `projection`, `notes`, `wall_s`.
  """
  clock = _Clock(settings.budget_s)
  load_before = throughput._loadavg()
  notes: list[str] = []
  programs = {u: throughput._JaxPrograms(_plan(settings, u)) for u in settings.unrolls}
  base = programs[settings.unrolls[0]]
  measurements: list[dict[str, Any]] = []
  growth_stopped: dict[str, str] = {}

  def record(m: dict[str, Any]) -> dict[str, Any]:
    measurements.append(m)
    detail = f"{m.get('run_updates_per_s', 0):,.0f} run-updates/s" if m["status"] == "ok" else ""
    log(
      f"{m['algorithm']} T={m['length']} runs={m['runs']} unroll={m['unroll']}: "
      f"{m['status']} {detail or m.get('reason', '')} ({clock.elapsed():.0f} s)"
    )
    return m

  first_n = settings.run_counts[0]
  firsts = {}
  # 1. What the projection needs: the smallest size, every length and algorithm.
  for alg in settings.algorithms:
    for t in settings.lengths:
      firsts[alg, t] = record(_measure(base, settings, clock, alg, t, first_n, 0.0))

  def grow(alg):
    for t in settings.lengths:
      prev = firsts[alg, t]
      key = f"{alg} T={t}"
      if prev["status"] != "ok":
        growth_stopped[key] = f"{first_n} runs: {prev['status']}"
        continue
      growth_stopped[key] = "largest size listed reached"
      for n in settings.run_counts[1:]:
        predicted = prev["call_s"] * n / prev["runs"]
        m = record(_measure(base, settings, clock, alg, t, n, predicted))
        if m["status"] != "ok":
          growth_stopped[key] = f"{n} runs: {m['status']} ({m['reason']})"
          break
        if m["call_s"] > settings.max_chunk_s:
          growth_stopped[key] = f"{n} runs: one call took {m['call_s']:.1f} s"
          break
        if m["run_updates_per_s"] < settings.saturation * prev["run_updates_per_s"]:
          growth_stopped[key] = (
            f"{n} runs: less than {settings.saturation}x the run-updates/s of {prev['runs']}"
          )
          break
        prev = m

  # 2. The runs axis for SGD-CR (the program the sweep runs), 3. the unroll factors,
  # 4. the runs axis for SGD-C.
  if "sgd_cr" in settings.algorithms:
    grow("sgd_cr")
  unroll_honored = None
  # (Lowering to compare programs costs an init compile: not once the budget is spent.)
  if len(settings.unrolls) > 1 and "sgd_cr" in settings.algorithms and clock.fits(0.0):
    n_u = settings.unroll_runs
    unroll_honored = len(set(_unroll_digests(programs, settings.lengths[0], n_u).values())) > 1
    if not unroll_honored:
      notes.append(
        "the engine ignores config.scan_unroll (identical programs for every unroll): the "
        "unroll rows time one program"
      )
    for t in settings.lengths:
      done = {
        m["unroll"]: m
        for m in measurements
        if (m["algorithm"], m["length"], m["runs"]) == ("sgd_cr", t, n_u)
      }
      ref = done.get(settings.unrolls[0], {})
      for u in settings.unrolls:
        if u not in done:  # unroll 1 at these runs is usually measured already
          predicted = ref.get("call_s", 0.0)
          record(_measure(programs[u], settings, clock, "sgd_cr", t, n_u, predicted))
  for alg in settings.algorithms:
    if alg != "sgd_cr":
      grow(alg)

  skipped = [m for m in measurements if m["status"] == "skipped"]
  if skipped:
    notes.append(
      f"budget of {settings.budget_s:.0f} s spent: {len(skipped)} measurement(s) skipped "
      "(status 'skipped' in the JSON); raise --budget_s to take them"
    )
  if clock.elapsed() > settings.budget_s:
    notes.append(
      f"ran {clock.elapsed() - settings.budget_s:.0f} s past the budget (a measurement cannot "
      "be stopped once started: its compile took longer than estimated)"
    )
  projection = _projection(settings, measurements, solve_rows, notes)
  return {
    "machine": dict(throughput._machine_info(load_before), loadavg_after=throughput._loadavg()),
    "settings": dataclasses.asdict(settings),
    "measurements": measurements,
    "growth_stopped": growth_stopped,
    "unroll_honored": unroll_honored,
    "projection": projection,
    "notes": notes,
    "wall_s": clock.elapsed(),
  }


def _projection(settings, measurements, solve_rows, notes) -> dict[str, Any] | None:
  """The preset's wall time from the unroll-1 SGD-CR (Ω on) measurements."""
  cfg = success_rate.get_config(settings.preset)
  per_alg = len(cfg.inits) * int(cfg.seeds)
  group_runs = settings.group_runs or per_alg * len(cfg.algorithms)
  ok = [
    m
    for m in measurements
    if m["status"] == "ok" and m["algorithm"] == "sgd_cr" and m["unroll"] == settings.unrolls[0]
  ]
  if not ok:
    notes.append("no SGD-CR measurement at unroll 1: no projection")
    return None
  by_length: dict[int, dict[int, float]] = {}
  for m in ok:
    by_length.setdefault(m["length"], {})[m["runs"]] = m["update_s"]
  group_s = {t: seconds_per_update_at(p, group_runs) for t, p in by_length.items()}
  best_run_s = {t: min(s / n for n, s in p.items()) for t, p in by_length.items()}
  a, b = fit_affine(group_s)
  ra, rb = fit_affine(best_run_s)
  lengths = [int(t) for t in cfg.lengths]
  update_s = {t: a + b * t for t in lengths}
  run_update_s = {t: ra + rb * t for t in lengths}
  max_updates, chunk = int(cfg.max_updates), int(cfg.chunk_size)
  worst = {t: [max_updates] * group_runs for t in lengths}
  out: dict[str, Any] = {
    "preset": settings.preset,
    "lengths": lengths,
    "group_runs": group_runs,
    "max_updates": max_updates,
    "chunk_size": chunk,
    "model": (
      "one group of group_runs runs per length, Ω on for all of them (the sweep compiles one "
      "program per length); seconds per group update = a + b·T fitted to the SGD-CR "
      "measurements at group_runs runs (interpolated over runs where not measured at "
      "exactly that size); a group runs whole chunks until its last run is decided; "
      "screens and host work not counted"
    ),
    "update_s_fit": {"a": a, "b": b, "measured": group_s},
    "run_update_s_fit": {"a": ra, "b": rb, "measured": best_run_s},
    "worst": project_wall_s(update_s, worst, chunk, run_update_s),
  }
  if solve_rows is not None:
    decided = decided_updates(
      solve_rows,
      lengths=lengths,
      algorithms=tuple(cfg.algorithms),
      runs_per_algorithm=per_alg,
      max_updates=max_updates,
    )
    out["with_solve_times"] = project_wall_s(update_s, decided, chunk, run_update_s)
    out["solve_time_lengths"] = sorted({int(r["length"]) for r in solve_rows} & set(lengths))
  return out


# --- output ----------------------------------------------------------------------------


_ALG = {"sgd_c": "SGD-C", "sgd_cr": "SGD-CR"}


def _duration(s: float) -> str:
  if s < 120:
    return f"{s:.1f} s"
  if s < 7200:
    return f"{s / 60:.1f} min"
  if s < 3 * 86400:
    return f"{s / 3600:.1f} h"
  return f"{s / 86400:.1f} days"


def _grid(rows: list[list[str]]) -> list[str]:
  widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
  return ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]


def format_report(results: dict[str, Any]) -> str:
  """The results as a short plain-text report."""
  m, s = results["machine"], results["settings"]
  meas = results["measurements"]
  lines = [
    (
      f"{m['device_kind']} x{m['device_count']} ({m['platform']}) | jax {m['jax']} | "
      f"budget {s['budget_s']:.0f} s, used {results['wall_s']:.0f} s"
    )
  ]
  u0 = s["unrolls"][0]
  runs = sorted({x["runs"] for x in meas if x["unroll"] == u0})
  rows = [["T", "alg"] + [f"{n} runs" for n in runs]]
  for t in s["lengths"]:
    for alg in s["algorithms"]:
      row = [str(t), _ALG.get(alg, alg)]
      for n in runs:
        x = next(
          (
            x
            for x in meas
            if (x["algorithm"], x["length"], x["runs"], x["unroll"]) == (alg, t, n, u0)
          ),
          None,
        )
        if x is None:
          row.append("")
        elif x["status"] == "ok":
          row.append(f"{x['run_updates_per_s']:,.0f} ({x['step_us']:.1f} us)")
        else:
          row.append(x["status"])
      rows.append(row)
  lines.append("run-updates/s (time per scan step = update time / 2T):")
  lines += ["  " + r for r in _grid(rows)]
  lines += [f"  runs axis, {k}: stopped at {v}" for k, v in results["growth_stopped"].items()]
  unroll = [x for x in meas if x["algorithm"] == "sgd_cr" and x["runs"] == s["unroll_runs"]]
  if len(s["unrolls"]) > 1 and unroll:
    honored = results["unroll_honored"]
    lines.append(
      f"time per scan step (us), SGD-CR, {s['unroll_runs']} runs, by lax.scan unroll"
      + ("" if honored else " (the engine ignores scan_unroll: one program)")
      + ":"
    )
    rows = [["T"] + [f"unroll {u}" for u in s["unrolls"]]]
    for t in s["lengths"]:
      by_unroll = {x["unroll"]: x for x in unroll if x["length"] == t}
      cells = [by_unroll.get(u) for u in s["unrolls"]]
      rows.append(
        [str(t)]
        + [
          "" if x is None else f"{x['step_us']:.1f}" if x["status"] == "ok" else x["status"]
          for x in cells
        ]
      )
    lines += ["  " + r for r in _grid(rows)]
  p = results["projection"]
  if p:
    lines.append(
      f"projected wall time, {p['preset']} preset ({p['group_runs']} runs per length, "
      f"<= {p['max_updates']:,} updates; s/update = {p['update_s_fit']['a'] * 1e3:.3f} ms + "
      f"{p['update_s_fit']['b'] * 1e6:.2f} us x T):"
    )
    rows = [["T", "ms/update", "worst case"]]
    solve = p.get("with_solve_times")
    if solve:
      rows[0] += ["with solve times", "packed bound"]
    for t in p["lengths"]:
      w = p["worst"]["per_length"][t]
      row = [str(t), f"{w['group_s'] / w['updates'] * 1e3:.3f}", _duration(w["group_s"])]
      if solve:
        x = solve["per_length"][t]
        row += [_duration(x["group_s"]), _duration(x["packed_s"])]
      rows.append(row)
    total = ["all", "", _duration(p["worst"]["total_s"])]
    if solve:
      total += [_duration(solve["total_s"]), _duration(solve["packed_s"])]
    rows.append(total)
    lines += ["  " + r for r in _grid(rows)]
  lines += [f"note: {n}" for n in results["notes"]]
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  settings = TINY if _TINY.value else DEFAULT
  if _BUDGET.value is not None:
    settings = dataclasses.replace(settings, budget_s=_BUDGET.value)
  rows = None
  if _SOLVE.value:
    import json

    with open(_SOLVE.value) as f:
      rows = json.load(f)
  results = run_check(settings, rows)
  if _OUT.value:
    throughput.write_json(results, _OUT.value)
    logging.info("wrote %s", _OUT.value)
  print(format_report(results), flush=True)


if __name__ == "__main__":
  # Flags are defined only when run as a binary, so one benchmark can import the other.
  _TINY = flags.DEFINE_bool("tiny", False, "A few runs at short T, seconds (for tests, CPUs).")
  _BUDGET = flags.DEFINE_float("budget_s", None, "Total time limit in seconds (default 420).")
  _OUT = flags.DEFINE_string("out", None, "Write every number as JSON to this file.")
  _SOLVE = flags.DEFINE_string(
    "solve_times", None, "A results.json with solve times for the projection (decided_updates)."
  )
  runtime.setup()  # the experiments' devices and compilation cache (experiments/runtime.py)
  app.run(main)
