r"""Throughput of the natural-task trainer (Tables 1 and 2) at the paper's model sizes.

What is timed is what `rnn_dynamics.natural.fit` runs per chunk: `trainer.chunk`, vmapped
over the three columns of a table (SGD, SGD+C, SGD+CR in one program, Ω computed for all,
as `fit` compiles it), the runs axis padded to the device count and sharded like the
sweep's, `K` segments of `T = 200` steps per call, every step real. Data are random
frames (music: 88 keys, ~5 % on) or random symbols (text: 50 symbols, one-hot inputs) of
the published layout; the cost does not depend on the values.

Set-ups (docs/reference.md §4): Nottingham / Piano-midi.de (300 sigmoid units, 88 keys),
MuseData (400 units), PTB characters (500 sigmoid units, 50 symbols, no biases, summed
cost). Each is timed for several lane counts `B` (parallel segments per update, the
config's `batch_size`): lanes cut the updates per epoch by `B`, so what they buy is
symbols per second, and what they cost is fewer, larger updates (the effect on the
result is measured by training runs, not here).

Reported per case: symbols (time steps × lanes) per second *per column*, i.e. how fast a
table's three columns read the training set together; GFLOP/s counted as
`6·T·B·(H² + H·n_in + H·n_out)` per update (forward and backward products of the
recurrence, the input and the per-step readout; Ω not counted); that over the same two
ceilings as the synthetic benchmark (`benchmarks/throughput.py`): the 2048² float32
matmul (the machine's large-product rate) and the step product `[B, H]·[H, H]` alone,
vmapped and sharded like the runs (the rate small recurrent products reach here).
Cases are interleaved round by round; rates are medians over rounds and fractions are
medians of within-round ratios, so a machine whose load drifts slows all cases alike.

  python -m benchmarks.natural_throughput                 # every case, ~5-10 min idle
  python -m benchmarks.natural_throughput --quick         # Nottingham and PTB, lanes 1, 4
  python -m benchmarks.natural_throughput --out=natural.json

The last line printed is `natural_symbols_per_s=<x> natural_matmul_fraction=<y>
lanes_speedup=<z> best_lanes=<b>`: Nottingham at one lane (the `cpu` preset), its GFLOP/s
over the matmul ceiling, and symbols/s at the fastest lane count `b` over one lane.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags, logging

from benchmarks import throughput
from experiments import runtime
from experiments.configs import char_lm, polyphonic
from rnn_dynamics import natural, rnn, runs
from rnn_dynamics.synthetic.train import HParams

__all__ = ["FULL", "QUICK", "Plan", "Setup", "format_table", "run_benchmark", "summary_line"]

SEGMENT_LENGTH = 200  # the paper's truncation length for both tables


@dataclasses.dataclass(frozen=True)
class Setup:
  """One published model: its name, task kind, sizes and the config it comes from."""

  name: str
  kind: str  # "music" or "text"
  n_hidden: int
  n_symbols: int  # keys (music) or vocabulary (text)


NOTTINGHAM = Setup("Nottingham/Piano-midi", "music", 300, 88)
MUSEDATA = Setup("MuseData", "music", 400, 88)
PTB = Setup("PTB characters", "text", 500, 50)


@dataclasses.dataclass(frozen=True)
class Plan:
  """What to time."""

  setups: tuple[Setup, ...] = (NOTTINGHAM, MUSEDATA, PTB)
  lanes: tuple[int, ...] = (1, 4, 16)
  # Segments per compiled call: K·B = this (at least 1), so every call reads about the
  # same number of symbols whatever the lanes.
  symbols_per_call: int = 16 * SEGMENT_LENGTH
  rounds: int = 5
  matmul_size: int = 2048


FULL = Plan()
QUICK = Plan(setups=(NOTTINGHAM, PTB), lanes=(1, 4), rounds=3)


def update_flops(setup: Setup, lanes: int) -> float:
  """Flops of one update as counted here: `6·T·B·(H² + H·n_in + H·n_out)`."""
  h, n = setup.n_hidden, setup.n_symbols
  return 6.0 * SEGMENT_LENGTH * lanes * (h * h + 2 * h * n)


def trainer_config(setup: Setup, lanes: int) -> ml_collections.ConfigDict:
  """The published config of `setup` (its binary's `paper` preset), with `lanes` lanes."""
  if setup.kind == "music":
    dataset = "musedata" if setup is MUSEDATA else "nottingham"
    c = polyphonic.get_config("paper")
    c.dataset = dataset
    c = polyphonic.resolve(c)
  else:
    c = char_lm.resolve(char_lm.get_config("paper"))
  c.n_hidden = setup.n_hidden
  c.batch_size = lanes
  return c


def _segments(setup: Setup, k: int, lanes: int, seed: int = 0) -> natural.Segments:
  rng = np.random.default_rng(seed)
  shape = (k, SEGMENT_LENGTH, lanes)
  if setup.kind == "music":
    frames = (rng.random(shape + (setup.n_symbols,)) < 0.05).astype(np.uint8)
    inputs, targets = frames, np.roll(frames, -1, axis=1)
  else:
    inputs = rng.integers(0, setup.n_symbols, shape).astype(np.int32)
    targets = np.roll(inputs, -1, axis=1)
  mask = np.ones(shape, bool)
  reset = np.zeros((k, lanes), bool)
  reset[0] = True
  return natural.Segments(*(jnp.asarray(a) for a in (inputs, targets, mask, reset)))


class _Training:
  """One call of the natural trainer's compiled chunk for a table's three columns."""

  def __init__(self, setup: Setup, lanes: int, plan: Plan):
    config = trainer_config(setup, lanes)
    if setup.kind == "music":
      task = natural.music_task(setup.name, setup.n_symbols)
    else:
      task = natural.text_task(setup.name, setup.n_symbols)
    trainer = natural.make_trainer(config, task)
    # A table's three columns, as the algorithm table sets their threshold and α.
    cols = natural.columns(("sgd", "sgd_c", "sgd_cr"), lambda _: 0.01, config.clip, config.alpha0)
    self.columns = len(cols)
    self.n_padded = throughput._padded(self.columns)
    self.k = max(1, plan.symbols_per_call // (SEGMENT_LENGTH * lanes))
    self.symbols_per_column = self.k * SEGMENT_LENGTH * lanes
    self.flops = self.columns * self.k * update_flops(setup, lanes)
    sharding = runs.runs_sharding()
    n = self.n_padded
    hp = HParams(
      lr=jnp.asarray([c.lr for c in cols], jnp.float32),
      clip=jnp.asarray([c.clip for c in cols], jnp.float32),
      alpha=jnp.asarray([c.alpha0 for c in cols], jnp.float32),
      init=jnp.full((self.columns,), rnn.init_id(config.init), jnp.int32),
      elementwise=jnp.asarray([c.clipping.elementwise for c in cols]),
      guarded=jnp.asarray([c.clipping.guarded for c in cols]),
    )
    # The padded runs repeat the last column, as the trainers pad them.
    self.hp = jax.device_put(runs.pad_runs(hp, n), sharding)
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    self.state = jax.device_put(jax.jit(jax.vmap(trainer.init))(keys, self.hp), sharding)
    self.segments = _segments(setup, self.k, lanes)
    self.chunk = jax.jit(jax.vmap(trainer.chunk, in_axes=(0, 0, None)), donate_argnums=0)

  def __call__(self) -> None:
    self.state, metrics = self.chunk(self.state, self.hp, self.segments)
    jax.block_until_ready(metrics)


@dataclasses.dataclass
class _Case:
  key: dict[str, Any]
  block: Callable[[], None]
  flops: float
  symbols: float = 0.0  # per column per call (training cases)
  seconds: list[float] = dataclasses.field(default_factory=list)


def _build(plan: Plan) -> list[_Case]:
  cases = [
    _Case(dict(kind="matmul", sharded=s), m, m.flops)
    for s in (False, True)
    for m in [throughput._Matmul(plan.matmul_size, s)]
  ]
  for setup in plan.setups:
    for lanes in plan.lanes:
      t = _Training(setup, lanes, plan)
      key = dict(kind="train", setup=setup.name, lanes=lanes, hidden=setup.n_hidden)
      cases.append(_Case(key, t, t.flops, t.symbols_per_column))
      # The bare recurrence of this size: sigmoid units, as the natural tasks use.
      p = throughput._StepProducts(
        setup.n_hidden, lanes, t.k * SEGMENT_LENGTH, t.columns, activation=jax.nn.sigmoid
      )
      cases.append(_Case(dict(key, kind="step_product"), p, p.flops))
  return cases


def _name(key: dict[str, Any]) -> str:
  if key["kind"] == "matmul":
    return f"matmul ({'sharded' if key['sharded'] else 'one device'})"
  return f"{key['kind']} {key['setup']} H={key['hidden']} lanes={key['lanes']}"


def run_benchmark(plan: Plan, log: Callable[[str], None] = logging.info) -> dict[str, Any]:
  """Times every case of `plan`, interleaved round by round; a JSON-able dict."""
  t_start = time.time()
  load_before = throughput._loadavg()
  cases = _build(plan)
  for c in cases:  # warm-up: compiles
    dt, _ = throughput._timed(c.block)
    log(f"warm-up {_name(c.key)}: {dt:.2f} s")
  for r in range(plan.rounds):
    for c in cases:
      c.seconds.append(throughput._timed(c.block)[0])
    log(f"round {r + 1}/{plan.rounds} done ({time.time() - t_start:.0f} s)")
  ceiling = np.max([np.asarray(c.flops) / c.seconds for c in cases if c.key["kind"] == "matmul"], 0)
  rows = []
  for c in cases:
    if c.key["kind"] != "train":
      continue
    step = next(
      s for s in cases
      if s.key["kind"] == "step_product" and s.key["setup"] == c.key["setup"]
      and s.key["lanes"] == c.key["lanes"]
    )
    rate = np.asarray(c.flops) / c.seconds
    rows.append(
      dict(
        c.key,
        seconds=c.seconds,
        symbols_per_s=statistics.median(c.symbols / np.asarray(c.seconds)),
        gflops=statistics.median(rate) / 1e9,
        matmul_fraction=float(np.median(rate / ceiling)),
        step_product_fraction=float(np.median(rate / (np.asarray(step.flops) / step.seconds))),
        step_product_gflops=statistics.median(np.asarray(step.flops) / step.seconds) / 1e9,
      )
    )
  results = dict(
    machine=dict(throughput._machine_info(load_before), loadavg_after=throughput._loadavg()),
    plan=dataclasses.asdict(plan),
    matmul_gflops=float(np.median(ceiling)) / 1e9,
    rows=rows,
    wall_s=time.time() - t_start,
  )
  results["summary"] = _summary(rows, plan)
  return results


def _summary(rows: Sequence[dict[str, Any]], plan: Plan) -> dict[str, float]:
  first = plan.setups[0].name
  mine = {r["lanes"]: r for r in rows if r["setup"] == first}
  lo = min(mine)
  best = max(mine, key=lambda b: mine[b]["symbols_per_s"])
  return dict(
    natural_symbols_per_s=mine[lo]["symbols_per_s"],
    natural_matmul_fraction=mine[lo]["matmul_fraction"],
    lanes_speedup=mine[best]["symbols_per_s"] / mine[lo]["symbols_per_s"],
    best_lanes=best,
  )


def summary_line(results: dict[str, Any]) -> str:
  s = results["summary"]
  return (
    f"natural_symbols_per_s={s['natural_symbols_per_s']:.0f} "
    f"natural_matmul_fraction={s['natural_matmul_fraction']:.3f} "
    f"lanes_speedup={s['lanes_speedup']:.2f} best_lanes={s['best_lanes']}"
  )


def format_table(results: dict[str, Any]) -> str:
  m = results["machine"]
  lines = [
    f"{m['cpu']}, {m['device_count']} {m['platform']} device(s), load {m['loadavg_before'][0]:.2f}"
    f" -> {m['loadavg_after'][0]:.2f}; matmul ceiling {results['matmul_gflops']:.1f} GFLOP/s",
    f"{'set-up':<24}{'H':>5}{'lanes':>7}{'symbols/s':>12}{'GFLOP/s':>9}{'of matmul':>11}"
    f"{'of step':>9}{'step GFLOP/s':>14}",
  ]
  for r in results["rows"]:
    lines.append(
      f"{r['setup']:<24}{r['hidden']:>5}{r['lanes']:>7}{r['symbols_per_s']:>12,.0f}"
      f"{r['gflops']:>9.2f}{r['matmul_fraction']:>11.3f}{r['step_product_fraction']:>9.2f}"
      f"{r['step_product_gflops']:>14.2f}"
    )
  lines.append(
    "symbols/s: per column (the three columns of a table train together); one epoch of "
    "Nottingham is 176,561 symbols, PTB 5,017,482"
  )
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  runtime.setup()  # the experiments' devices and compilation cache (experiments/runtime.py)
  plan = QUICK if _QUICK.value else FULL
  if _ROUNDS.value is not None:
    plan = dataclasses.replace(plan, rounds=_ROUNDS.value)
  results = run_benchmark(plan)
  if _OUT.value:
    throughput.write_json(results, _OUT.value)
    logging.info("wrote %s", _OUT.value)
  print(format_table(results))
  print(summary_line(results), flush=True)


if __name__ == "__main__":
  _QUICK = flags.DEFINE_bool("quick", False, "Nottingham and PTB only, lanes 1 and 4.")
  _OUT = flags.DEFINE_string("out", None, "Write every number as JSON to this file.")
  _ROUNDS = flags.DEFINE_integer("rounds", None, "Timed rounds (default: the plan's).")
  app.run(main)
