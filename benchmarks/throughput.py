r"""Training throughput: the JAX engine against its peers — batched PyTorch, a PyTorch loop,
`jax.grad` — and the matmul ceiling.

The workload is the paper's Figure 7 point (docs/reference.md §4): temporal order, 50 tanh units
(`basic_tanh`), minibatch 20, fixed length T, for SGD, SGD-C and SGD-CR; and the same task
for every other cell of `rnn_dynamics.cells` (50 units). Everything is timed in turn,
interleaved round by round so that a busy machine slows all of it alike:

* **jax** — the real engine: `rnn_dynamics.synthetic.train.make_train(config)` with the
  `experiments/configs/success_rate.py:cpu` config, `trainer.chunk` vmapped over runs and
  sharded over devices exactly as `rnn_dynamics.synthetic.sweep` does (runs padded to a multiple of
  the device count; padded runs start frozen). Only `chunk` is called: no screening and
  no evaluation, so no run gets solved and frozen while it is timed. Data is sampled
  inside the compiled chunk and counted. SGD and SGD-C are compiled with
  `omega_enabled=False` (what they cost alone); SGD-CR computes Ω and its gradient.
* **torch** — the same update written the way a user would, one run at a time: the
  paper's recurrence `x_t = σ(x_{t-1}) W_hh + u_t W_in + b` as a Python loop, softmax
  readout, `torch.optim.SGD`, `torch.nn.utils.clip_grad_norm_`, and for SGD-CR the
  original code's Ω (docs/reference.md §2) from the adjoints `∂E/∂h_t` that `torch.autograd.grad`
  returns, its gradient w.r.t. `W_hh` by autograd with the adjoints detached. Batches are
  sampled ahead of time (not counted). The full run also times `torch.nn.RNN` (fused
  forward, no Ω) for SGD and SGD-C. Torch runs on one thread by default
  (`--torch_threads`): at these sizes (20×50 by 50×50 products) a second thread only adds
  synchronisation, and on a loaded 2-core machine torch's default of 2 threads was
  measured 50× slower. One run at a time on one core is the weakest way to use PyTorch
  here; the batched peers below are the ones the engine's speed is claimed against.
* **torch batched** (`benchmarks/torch_peers.py`) — the same update as a competent PyTorch
  user would write it for many runs: each run's own weights stacked on a runs axis, one
  `baddbmm` per step for every run, the input products outside the time loop (`unbind`),
  per-run norm clipping and SGD, Ω from the adjoints autograd returns (detached). Timed
  two ways, the same runs and weights as the engine's: in this process
  (`torch_batched`, `torch_threads` threads) and split over one 1-thread worker process
  per core (`torch_per_core`; its CPU time is the workers'). For the paper's RNN at
  `batched_lengths` with `ref_runs` runs, and for every autodiff cell of `plan.cells`
  (`cell_lengths`, `cell_runs` runs), each beside its engine case. The `peers` rows of
  the JSON, and the second table, give each peer's rate and the engine's ratio over the
  **strongest peer**: the fastest of the batched torch peers and the autodiff one
  (per CPU-second: the most efficient of them).
* **autodiff** — the same update as a JAX user would write it first: `jax.grad` through a
  plain `lax.scan` over `h_t = tanh(h_{t-1} @ W_hh + u_t @ W_in + b)` (what
  `flax.linen.RNN(SimpleCell)` scans), mean cross-entropy of the last state's softmax
  readout, `optax.clip_by_global_norm` + `optax.sgd`, and for SGD-CR the original code's Ω
  (docs/reference.md §2) by autodiff: the adjoints `δʰ_t = ∂E/∂h_t` are the gradient w.r.t. an additive
  zero "probe" on every `h_t`, and `∂⁺Ω/∂W_hh` is `jax.grad` of Ω with the adjoints and
  states under `stop_gradient`. Data is sampled inside the compiled chunk, and the chunk is
  vmapped over the reference number of runs and sharded exactly like the engine's. Its
  gradient equals the engine's to float32 round-off (`tests/test_benchmark.py`), so
  `x autodiff` compares the same computation written two ways.
* **matmul** — a 2048×2048 float32 `jnp.dot` on one device, and one such product per
  device sharded like the runs; the faster of the two is the machine's GFLOP/s ceiling.
* **lyapunov trace** — one step of a Figure 7 `cpu` group as `synthetic.sweep` runs it
  (`_Programs.chunk_and_screen`: a chunk of the sweep's size for every init × algorithm
  × seed, its screen), with and without the traces' top Lyapunov exponents
  (`config.lyapunov_k`): `lyapunov_trace_overhead` is the time of the first over the
  second (`_lyapunov_trace_cases`).
* **step product** — the recurrence's `[B, H]·[H, H]` product alone (`h ← tanh(h @ w)`),
  for the reference number of runs, vmapped and sharded like them: the ceiling for
  products of the size a training step is made of (two per step, plus one large
  weight-gradient product). `of step product` in the table is the training's GFLOP/s
  over this; on CPUs these small products reach a fraction of the large matmul's rate,
  which bounds `matmul_fraction` whatever the rest of the step costs.

A training update is counted as `6·T·B·(H² + H·n_in)` flops (forward, and the backward
pass's two products per step; the readout and Ω are not counted).

Ratios are medians over rounds of ratios taken within a round, so slow drift in the
machine's load (other processes) cancels out. Every block's process CPU time (all threads)
is recorded too: on a shared machine, work per CPU-second (`*_per_cpu_s` in the JSON, the
bracketed column of the table) measures efficiency independently of how much CPU the
scheduler happened to grant; on an idle machine the wall-clock ratios are what a user sees.

  python -m benchmarks.throughput              # full table
  python -m benchmarks.throughput --quick      # T=50, 15 runs, and the LSTM at T=100, 10 runs
  python -m benchmarks.throughput --peers      # the peers' table alone (every cell)
  python -m benchmarks.throughput --out=throughput.json

The last line printed is `ratio_vs_torch=<x> omega_overhead=<y> matmul_fraction=<z>
mixed_length_speedup=… compaction_speedup=… ratio_vs_autodiff=<w> ratio_vs_strongest=<s>
strongest_peer=<name>`: JAX SGD-CR run-updates/s at 15 runs over the torch loop's SGD-CR
updates/s, JAX time per SGD-CR update over time per SGD-C update (15 runs), JAX SGD-CR
training GFLOP/s over the matmul's (15 runs, T=50), the engine's own savings, JAX SGD-CR
run-updates/s over the autodiff peer's (15 runs, T=50), and over the strongest peer's
(15 runs, T=50), which it names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags, logging

from benchmarks import torch_peers
from experiments import runtime
from experiments.configs import success_rate
from rnn_dynamics import algorithms, cells, rnn, runs
from rnn_dynamics.synthetic import resident, sweep, train
from rnn_dynamics.tasks import get_task

try:
  import torch
except ImportError:  # optional: pip install 'rnn_dynamics[benchmark]'
  torch = None

__all__ = [
  "FULL",
  "PEERS",
  "QUICK",
  "Plan",
  "autodiff_loss_and_grads",
  "autodiff_params",
  "format_table",
  "run_benchmark",
  "summary_line",
  "update_flops",
]

_INIT = "basic_tanh"  # tanh units, N(0, 0.1²): the same model on both sides
_TORCH_MISSING = (
  "torch is not importable: the torch column is skipped (pip install 'rnn_dynamics[benchmark]')"
)


@dataclasses.dataclass(frozen=True)
class Plan:
  """What to time.

  Attributes:
    lengths: sequence lengths T for the JAX engine.
    run_counts: numbers of runs trained at once by the JAX engine.
    algorithms: JAX algorithms (`train.ALGORITHMS` names).
    torch_lengths: lengths for the torch loop (one run at a time).
    torch_algorithms: torch-loop algorithms.
    torch_nn_rnn: also time `torch.nn.RNN` for the Ω-free algorithms among these.
    chunk_steps: sequence steps per run in one compiled JAX call: a chunk is
      `round(chunk_steps / T)` updates (100 at T=50), so every timed block is about the
      same amount of work whatever T.
    rounds: timed rounds (every case once per round, after a warm-up round).
    torch_block_s: about how long one timed torch block runs.
    matmul_size: N of the N×N float32 matmul.
    torch_threads: `torch.set_num_threads` while torch is timed (None: torch's default).
    autodiff_lengths: lengths for the autodiff peer (`plan.algorithms` among SGD-C and
      SGD-CR, `ref_runs` runs).
    ref_length, ref_runs: the point the summary line reports.
    hidden, batch: model and minibatch size.
    preset: the `experiments/configs/success_rate.py` preset the engine's config starts
      from (the fields the update uses are the same in every preset; chunk size, model and
      batch are set from this plan).
    scan_unroll: `config.scan_unroll`, the engine's `lax.scan(unroll=…)` for its forward
      and backward scans (an engine that does not know the field ignores it).
    mixed_range: `[min_length, max_length)` of the mixed-length case: SGD-CR,
      `ref_runs` runs, trained in `length_buckets` buckets and in one bucket (every update
      padded to the longest length, what the engine did before), on the same lengths
      (None: no mixed-length case).
    length_buckets: `config.length_buckets` of the bucketed side.
    compaction_runs: `(group, live)`: SGD-CR at `ref_length` in a program of `group` runs
      of which only `live` are undecided, against the program `sweep` compacts them into
      (None: no compaction case).
    lyapunov_trace: `(k, runs)`: a sweep step of `runs` Figure 7 runs at `ref_length`
      with the traces' top-k exponents against the same without (None: no such case).
    batched_lengths: lengths for the paper RNN's batched PyTorch peers (`torch_peers`:
      `ref_runs` runs at once, `plan.algorithms` among SGD-C and SGD-CR).
    cells: the autodiff cells (`rnn_dynamics.cells`) timed against their batched peers,
      each at `cell_lengths` with `cell_runs` runs, for `cell_algorithms`.
    torch_processes: worker processes of the one-process-per-core peer (None: one per
      CPU; fewer than 2: no such peer).
  """

  lengths: Sequence[int] = (50, 100, 200)
  run_counts: Sequence[int] = (1, 15, 45)
  algorithms: Sequence[str] = ("sgd", "sgd_c", "sgd_cr")
  torch_lengths: Sequence[int] = (50, 100, 200)
  torch_algorithms: Sequence[str] = ("sgd", "sgd_c", "sgd_cr")
  torch_nn_rnn: Sequence[str] = ("sgd", "sgd_c")
  chunk_steps: int = 5000
  rounds: int = 3
  torch_block_s: float = 0.7
  matmul_size: int = 2048
  torch_threads: int | None = 1
  autodiff_lengths: Sequence[int] = (50, 100, 200)
  ref_length: int = 50
  ref_runs: int = 15
  hidden: int = 50
  batch: int = 20
  preset: str = "cpu"
  scan_unroll: int = 1
  mixed_range: tuple[int, int] | None = (50, 200)
  length_buckets: int = 8
  compaction_runs: tuple[int, int] | None = (45, 15)
  lyapunov_trace: tuple[int, int] | None = (2, 45)
  batched_lengths: Sequence[int] = (50, 100, 200)
  cells: Sequence[str] = ("tanh", "irnn", "orthogonal", "lstm", "gru", "exprnn", "lru")
  cell_algorithms: Sequence[str] = ("sgd_c", "sgd_cr")
  cell_lengths: Sequence[int] = (100,)
  cell_runs: int = 10
  torch_processes: int | None = None


FULL = Plan()
QUICK = Plan(
  lengths=(50,),
  run_counts=(15,),
  algorithms=("sgd_c", "sgd_cr"),
  torch_lengths=(50,),
  torch_algorithms=("sgd_c", "sgd_cr"),
  torch_nn_rnn=(),
  autodiff_lengths=(50,),
  rounds=7,
  lyapunov_trace=(2, 15),
  batched_lengths=(50,),
  cells=("lstm",),
)
# The comparison with the peers alone: the paper's RNN at T=50 and every cell at T=100,
# in shorter blocks (the cells' engine blocks are the longest), no engine-only cases.
PEERS = Plan(
  lengths=(50,),
  run_counts=(15,),
  algorithms=("sgd_c", "sgd_cr"),
  torch_lengths=(50,),
  torch_algorithms=("sgd_cr",),
  torch_nn_rnn=(),
  autodiff_lengths=(50,),
  batched_lengths=(50,),
  chunk_steps=2000,
  rounds=5,
  mixed_range=None,
  compaction_runs=None,
  lyapunov_trace=None,
)


def update_flops(length: int, batch: int, hidden: int, n_in: int) -> float:
  """Flops of one training update as counted here: `6·T·B·(H² + H·n_in)`."""
  return 6.0 * length * batch * (hidden * hidden + hidden * n_in)


def _padded(n_runs: int) -> int:
  """Runs padded to a multiple of the device count, as `synthetic.sweep` shards them."""
  return -(-n_runs // jax.device_count()) * jax.device_count()


def _chunk_size(plan: Plan, length: float) -> int:
  return max(1, round(plan.chunk_steps / length))


def _mean_length(plan: Plan) -> float:
  lo, hi = plan.mixed_range
  return (lo + hi - 1) / 2


def _config(plan: Plan, length: int, with_omega: bool, lengths=None, buckets=None, cell="rnn"):
  cfg = success_rate.get_config(plan.preset)
  cfg.cell = cell
  cfg.min_length, cfg.max_length = lengths or (int(length), int(length))
  if buckets is not None:
    cfg.length_buckets = int(buckets)
  cfg.scan_unroll = int(plan.scan_unroll)
  cfg.chunk_size = _chunk_size(plan, length)
  cfg.n_hidden = int(plan.hidden)
  cfg.batch_size = int(plan.batch)
  cfg.omega_enabled = bool(with_omega)
  return cfg


# --- the things timed ------------------------------------------------------------------


@dataclasses.dataclass
class _Case:
  """One timed workload: `block()` does a fixed amount of work and returns when done.

  Attributes:
    key: identifies the case in the results (side, algorithm, length, runs).
    block: runs one block.
    run_updates: training updates (summed over runs) per block; 0 for the matmul.
    flops: flops per block, as counted here.
    info: extra facts for the JSON.
    seconds: one wall time per timed round.
    cpu_seconds: the process's CPU time (all threads) per timed round.
  """

  key: dict[str, Any]
  block: Callable[[], Any]
  run_updates: int
  flops: float
  info: dict[str, Any] = dataclasses.field(default_factory=dict)
  seconds: list[float] = dataclasses.field(default_factory=list)
  cpu_seconds: list[float] = dataclasses.field(default_factory=list)


class _JaxPrograms:
  """One jitted `vmap(trainer.chunk)` per (lengths, Ω on/off, buckets), as `sweep` has."""

  def __init__(self, plan: Plan):
    self.plan = plan
    self._cache: dict[tuple, tuple[train.Trainer, Callable]] = {}
    self._init: dict[str, Callable] = {}

  def get(self, length: int, with_omega: bool, lengths=None, buckets=None, cell="rnn"):
    """`(init, chunk)`, both `jit(vmap(·))`; `init` is shared by a cell's programs (it
    depends on neither length nor Ω).

    `chunk(state, hparams, chunk_index)`: the index is shared by the runs (unbatched).
    """
    k = (int(length), bool(with_omega), lengths, buckets, cell)
    if k not in self._cache:
      cfg = _config(self.plan, length, with_omega, lengths, buckets, cell)
      if lengths is not None:
        cfg.chunk_size = _chunk_size(self.plan, _mean_length(self.plan))
      trainer = train.make_train(cfg)
      chunk = jax.jit(jax.vmap(trainer.chunk, in_axes=(0, 0, None)), donate_argnums=0)
      self._cache[k] = (trainer, chunk)
      if cell not in self._init:
        self._init[cell] = jax.jit(jax.vmap(trainer.init))
    return self._init[cell], self._cache[k][1]


class _JaxTraining:
  """`n_runs` runs of one algorithm, stacked, padded and sharded like `sweep.run_group`.

  `lengths`/`buckets`: a mixed-length program (`[min, max)`, `config.length_buckets`);
  `live`: only the first `live` runs train, the others are decided (frozen) runs that the
  program still carries, as a group does before it is compacted; `cell`: the network
  (`rnn_dynamics.cells`, the paper's RNN by default).
  """

  def __init__(
    self,
    programs: _JaxPrograms,
    algorithm: str,
    length: int,
    n_runs: int,
    *,
    lengths=None,
    buckets=None,
    live: int | None = None,
    padded: int | None = None,
    cell: str = "rnn",
  ):
    plan = programs.plan
    with_omega = algorithm == "sgd_cr"
    init, self.chunk = programs.get(length, with_omega, lengths, buckets, cell)
    cfg = _config(plan, length, with_omega, cell=cell)
    hp = algorithms.hparams(algorithm, lr=cfg.lr, clip=cfg.clip, alpha=cfg.alpha, init=_INIT)
    self.n_runs = n_runs
    self.n_padded = padded or _padded(n_runs)
    live = n_runs if live is None else live
    hparams = jax.tree.map(lambda x: jnp.broadcast_to(x, (self.n_padded,)), hp)
    # The same keys for every algorithm: paired initial weights and data, as in the sweep.
    keys = jax.random.split(jax.random.PRNGKey(0), self.n_padded)
    state = init(keys, hparams)
    state = state.replace(done=state.done | jnp.asarray(np.arange(self.n_padded) >= live))
    self.state, self.hparams = jax.device_put((state, hparams), runs.runs_sharding())
    self.chunk_index = 0  # the next chunk's lengths, the same sequence for every case

  def __call__(self) -> None:
    self.state, _ = self.chunk(self.state, self.hparams, np.int32(self.chunk_index))
    self.chunk_index += 1
    jax.block_until_ready(self.state)

  def stopped_runs(self) -> int:
    """Real runs that stopped training (diverged) — they would cost the same anyway."""
    return int(np.asarray(self.state.done)[: self.n_runs].sum())


class _SweepStep:
  """A group's step as `synthetic.sweep` compiles it (`_Programs.chunk_and_screen`): the
  first `n_runs` runs of Figure 7's grid (every init × algorithm × seed) at one length,
  a chunk of the preset's size, the screen, and the top-`lyapunov_k` exponents (0: none).
  """

  def __init__(self, plan: Plan, length: int, n_runs: int, lyapunov_k: int):
    cfg = success_rate.get_config(plan.preset)
    cfg.min_length, cfg.max_length = int(length), int(length)
    cfg.lyapunov_k = int(lyapunov_k)
    self.chunk_size = int(cfg.chunk_size)
    grid = runs.grid(
      [(i, a) for i in cfg.inits for a in cfg.algorithms],
      cfg.seeds,
      seed=cfg.seed,
      label=lambda cell, s: {},
      hparams=lambda cell: algorithms.hparams(
        cell[1], lr=cfg.lr, clip=cfg.clip, alpha=cfg.alpha, init=cell[0]
      ),
    )
    self.n_runs, self.n_padded = n_runs, _padded(n_runs)
    take = lambda x: runs.pad_runs(x[:n_runs], self.n_padded)
    hparams, keys = jax.tree.map(take, grid.hparams), take(grid.keys)
    self.programs = sweep._Programs(train.make_train(cfg), cfg)
    state = self.programs.init(keys, hparams)
    self.state, self.hparams = runs.to_devices((state, hparams), runs.runs_sharding())
    self.chunk_index = 0

  def __call__(self) -> None:
    self.state, summary, _ = self.programs.chunk_and_screen(
      self.state, self.hparams, np.int32(self.chunk_index)
    )
    self.chunk_index += 1
    jax.block_until_ready((self.state, summary))


def _lyapunov_trace_cases(plan: Plan, task, log: Callable[[str], None]) -> list[_Case]:
  """The sweep step with the traces' exponents and without (`Plan.lyapunov_trace`)."""
  if plan.lyapunov_trace is None:
    return []
  k, n_runs = plan.lyapunov_trace
  cases = []
  for lyapunov_k in (0, k):
    log(f"sweep step T={plan.ref_length} runs={n_runs} lyapunov_k={lyapunov_k}: initialising")
    job = _SweepStep(plan, plan.ref_length, n_runs, lyapunov_k)
    ru = n_runs * job.chunk_size
    flops = ru * update_flops(plan.ref_length, plan.batch, plan.hidden, task.n_in)
    key = dict(side="lyapunov_trace", algorithm="fig7", length=plan.ref_length, runs=n_runs)
    info = dict(runs_padded=job.n_padded, chunk_size=job.chunk_size)
    cases.append(_Case(dict(key, k=lyapunov_k), job, ru, flops, info))
  return cases


# --- the autodiff peer ---------------------------------------------------------------


def autodiff_params(params) -> dict[str, jax.Array]:
  """`rnn.Params` (or anything with its fields) as the peer's plain dict of arrays."""
  return {k: getattr(params, k) for k in ("w_in", "w_hh", "b", "w_out", "b_out")}


def autodiff_loss_and_grads(
  params: dict[str, jax.Array],
  inputs_TxBxI: jax.Array,
  targets_B: jax.Array,
  *,
  alpha: float = 0.0,
  bound: float = 1e-20,
) -> tuple[jax.Array, dict[str, jax.Array], jax.Array]:
  """The peer's gradient: `jax.grad` through a plain scan, Ω (original form) by autodiff.

  Args:
    params: `w_in [I, H]`, `w_hh [H, H]`, `b [H]`, `w_out [H, O]`, `b_out [O]`.
    inputs_TxBxI: time-major inputs of one fixed-length batch (every step valid).
    targets_B: class ids, read out from the last state.
    alpha: Ω's weight; 0 skips Ω altogether (SGD, SGD-C).
    bound: Ω skips a (t, b) entry whose `‖δʰ_t‖²` is below this.

  Returns:
    `(loss, grads, omega)`: `grads["w_hh"]` includes `alpha · ∂⁺Ω/∂W_hh`; `omega` is NaN
    when `alpha` is 0.
  """
  batch, hidden = inputs_TxBxI.shape[1], params["w_hh"].shape[0]
  with_omega = alpha != 0.0

  def loss_fn(p, probes):
    def cell(h, xs):
      u, probe = xs
      h = jnp.tanh(h @ p["w_hh"] + u @ p["w_in"] + p["b"][None])
      # ∂E/∂probe_t is ∂E/∂h_t: the adjoints Ω needs, without a hand-written backward.
      h = h if probe is None else h + probe
      return h, h

    h0 = jnp.zeros((batch, hidden), inputs_TxBxI.dtype)
    h_last, hs = jax.lax.scan(cell, h0, (inputs_TxBxI, probes))
    logits = h_last @ p["w_out"] + p["b_out"][None]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, targets_B).mean()
    return loss, hs

  if not with_omega:
    (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, None)
    return loss, grads, jnp.float32(jnp.nan)

  probes = jnp.zeros(inputs_TxBxI.shape[:2] + (hidden,), inputs_TxBxI.dtype)
  (loss, hs), (grads, dh) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
    params, probes
  )

  def omega_fn(w_hh):
    # Only the immediate derivative (eq. 10): adjoints and states are held constant.
    d, h = jax.lax.stop_gradient((dh, hs))
    back = (d * (1.0 - h * h)) @ w_hh.T  # (δʰ_t ⊙ σ'_t) W_hhᵀ
    num, den = jnp.sum(back * back, axis=-1), jnp.sum(d * d, axis=-1)
    kept = den >= bound
    ratio = num / jnp.where(kept, den, 1.0)
    terms = jnp.where(kept, (ratio - 1.0) ** 2, 0.0)
    return jnp.sum(terms) / jnp.maximum(jnp.sum(kept), 1)

  omega, omega_grad = jax.value_and_grad(omega_fn)(params["w_hh"])
  grads = dict(grads, w_hh=grads["w_hh"] + alpha * omega_grad)
  return loss, grads, omega


class _AutodiffTraining:
  """The autodiff peer for `n_runs` runs: `jit(vmap(chunk))`, sharded like the engine.

  The same initial weights (`rnn.init_params`, `basic_tanh`) and run keys as
  `_JaxTraining`; the data comes from the same on-device sampler, inside the chunk.
  """

  def __init__(self, plan: Plan, task, algorithm: str, length: int, n_runs: int):
    if algorithm not in ("sgd_c", "sgd_cr"):
      raise ValueError(f"the autodiff peer does SGD-C and SGD-CR, not {algorithm!r}")
    cfg = _config(plan, length, algorithm == "sgd_cr")
    alpha = float(cfg.alpha) if algorithm == "sgd_cr" else 0.0
    bound, batch, chunk_size = float(cfg.omega_bound), plan.batch, _chunk_size(plan, length)
    buffer = task.buffer_length(length)
    opt = optax.chain(optax.clip_by_global_norm(float(cfg.clip)), optax.sgd(float(cfg.lr)))

    def init(key):
      k_params, k_run = jax.random.split(key)
      params = autodiff_params(rnn.init_params(k_params, task.n_in, plan.hidden, task.n_out, _INIT))
      return params, opt.init(params), k_run

    def chunk(state):
      def update(carry, _):
        params, opt_state, key = carry
        key, k_data = jax.random.split(key)
        b = task.sample(k_data, batch, jnp.int32(length), buffer)
        loss, grads, _ = autodiff_loss_and_grads(
          params, b.inputs, b.targets, alpha=alpha, bound=bound
        )
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, key), loss

      return jax.lax.scan(update, state, None, length=chunk_size)

    self.n_runs, self.n_padded = n_runs, _padded(n_runs)
    self.chunk = jax.jit(jax.vmap(chunk), donate_argnums=0)
    keys = jax.random.split(jax.random.PRNGKey(0), self.n_padded)
    self.state = jax.device_put(jax.jit(jax.vmap(init))(keys), runs.runs_sharding())

  def __call__(self) -> None:
    self.state, _ = self.chunk(self.state)
    jax.block_until_ready(self.state)


def _sample_pool(task, length: int, batch: int, n_batches: int, seed: int = 1):
  """Batches drawn ahead of time with the task's own JAX sampler, as numpy arrays."""
  keys = jax.random.split(jax.random.PRNGKey(seed), n_batches)
  b = jax.vmap(lambda k: task.sample(k, batch, length, task.buffer_length(length)))(keys)
  return np.array(b.inputs), np.array(b.targets)  # writable copies for torch


class _TorchTraining:
  """One run trained with plain PyTorch, one update after another.

  `impl="loop"` writes the paper's recurrence as a Python loop (any algorithm, Ω
  included); `impl="nn_rnn"` uses `torch.nn.RNN` + `torch.nn.Linear` (no Ω).
  """

  def __init__(self, plan: Plan, task, algorithm: str, length: int, impl: str = "loop"):
    if impl == "nn_rnn" and algorithm == "sgd_cr":
      raise ValueError("torch.nn.RNN does not expose the per-step adjoints Ω needs")
    cfg = _config(plan, length, algorithm == "sgd_cr")
    self.algorithm, self.impl = algorithm, impl
    self.clip = None if algorithm == "sgd" else float(cfg.clip)
    self.alpha = float(cfg.alpha) if algorithm == "sgd_cr" else 0.0
    self.bound = float(cfg.omega_bound)
    inputs, targets = _sample_pool(task, length, plan.batch, 16)
    self.inputs = [torch.from_numpy(x) for x in inputs]  # [T, B, n_in] each
    self.targets = [torch.from_numpy(y).long() for y in targets]
    self.i = 0
    gen = torch.Generator().manual_seed(0)
    normal = lambda *shape: torch.randn(*shape, generator=gen) * 0.1  # basic_tanh
    h, n_in, n_out = plan.hidden, task.n_in, task.n_out
    if impl == "loop":
      self.w_in = normal(n_in, h).requires_grad_()
      self.w_hh = normal(h, h).requires_grad_()
      self.b = torch.zeros(h, requires_grad=True)
      self.w_out = normal(h, n_out).requires_grad_()
      self.b_out = torch.zeros(n_out, requires_grad=True)
      self.params = [self.w_in, self.w_hh, self.b, self.w_out, self.b_out]
    elif impl == "nn_rnn":
      self.rnn = torch.nn.RNN(n_in, h, nonlinearity="tanh")
      self.out = torch.nn.Linear(h, n_out)
      with torch.no_grad():
        for p in [*self.rnn.parameters(), *self.out.parameters()]:
          p.copy_(normal(*p.shape) if p.ndim == 2 else torch.zeros_like(p))
      self.params = [*self.rnn.parameters(), *self.out.parameters()]
    else:
      raise ValueError(f"unknown impl {impl!r}")
    self.opt = torch.optim.SGD(self.params, lr=float(cfg.lr))
    self.updates_per_block = 1

  def _loss_loop(self, u, y):
    # The input projection does not depend on the state: one matmul outside the loop.
    drive = u @ self.w_in + self.b
    h = torch.zeros(u.shape[1], self.w_hh.shape[0])
    hs = []
    for t in range(u.shape[0]):
      h = torch.tanh(h @ self.w_hh + drive[t])
      hs.append(h)
    loss = torch.nn.functional.cross_entropy(h @ self.w_out + self.b_out, y)
    return loss, hs

  def update(self) -> None:
    """One SGD / SGD-C / SGD-CR update on the next batch."""
    u, y = self.inputs[self.i % 16], self.targets[self.i % 16]
    self.i += 1
    self.opt.zero_grad(set_to_none=True)
    if self.impl == "nn_rnn":
      _, h_last = self.rnn(u)
      loss = torch.nn.functional.cross_entropy(self.out(h_last[0]), y)
      loss.backward()
    elif self.algorithm != "sgd_cr":
      loss, _ = self._loss_loop(u, y)
      loss.backward()
    else:
      loss, hs = self._loss_loop(u, y)
      # One backward pass gives the parameter gradient and every adjoint ∂E/∂h_t.
      grads = torch.autograd.grad(loss, self.params + hs)
      n = len(self.params)
      for p, g in zip(self.params, grads[:n]):
        p.grad = g
      dh = torch.stack(grads[n:])  # [T, B, H], constant for Ω (eq. 10)
      h_all = torch.stack(hs).detach()
      dx = dh * (1.0 - h_all * h_all)  # δʰ_t ⊙ σ'(x_t)
      # Original code's Ω: mean over kept (t, b) of (‖δx_t W_hhᵀ‖² / ‖δʰ_t‖² − 1)².
      num = (dx @ self.w_hh.T).pow(2).sum(-1)
      den = dh.pow(2).sum(-1)
      kept = den >= self.bound
      ratio = num / torch.where(kept, den, torch.ones_like(den))
      omega = torch.where(kept, (ratio - 1.0) ** 2, torch.zeros_like(ratio)).sum()
      omega = omega / kept.sum().clamp(min=1)
      (g_omega,) = torch.autograd.grad(omega, self.w_hh)
      self.w_hh.grad = self.w_hh.grad + self.alpha * g_omega
    if self.clip is not None:
      torch.nn.utils.clip_grad_norm_(self.params, self.clip)
    self.opt.step()

  def calibrate(self, target_s: float) -> None:
    """Warms up, then sizes a block to take about `target_s` seconds."""
    for _ in range(3):
      self.update()
    t0 = time.perf_counter()
    n = 0
    while n < 3 or time.perf_counter() - t0 < min(0.2, target_s):
      self.update()
      n += 1
    per_update = (time.perf_counter() - t0) / n
    self.updates_per_block = max(1, round(target_s / per_update))

  def __call__(self) -> None:
    for _ in range(self.updates_per_block):
      self.update()


# --- the batched PyTorch peers (benchmarks/torch_peers.py) ---------------------------------

_PEER_SIDES = {
  "torch_batched": "torch batched, 1 process",
  "torch_per_core": "torch batched, 1 process per core",
  "autodiff": "jax.grad",
}


def _peer_setup(plan: Plan, task, cell: str, algorithm: str, length: int, n_runs: int):
  """`(args, hparams)` of a batched torch peer of `n_runs` runs (`torch_peers.Batched`).

  Its runs start from the engine's initial weights (the same keys as `_JaxTraining`);
  its batches are drawn ahead of time by the task's sampler (not counted), 8 per run."""
  model = cells.get_model(cell)
  cfg = _config(plan, length, algorithm == "sgd_cr", cell=cell)
  hp = algorithms.hparams(algorithm, lr=cfg.lr, clip=cfg.clip, alpha=cfg.alpha, init=_INIT)

  @jax.jit
  def draw(keys, pool):
    k_params = jax.vmap(lambda k: jax.random.split(k)[0])(keys)  # as `Trainer.init` splits
    params = jax.vmap(lambda k: model.init(k, task.n_in, plan.hidden, task.n_out, hp))(k_params)
    sample = lambda k: task.sample(k, plan.batch, length, task.buffer_length(length))  # noqa: E731
    return params, jax.vmap(jax.vmap(sample))(pool)

  keys = jax.random.split(jax.random.PRNGKey(0), _padded(n_runs))[:n_runs]
  pool = jax.random.split(jax.random.PRNGKey(1), 8 * n_runs).reshape(8, n_runs, -1)
  params, b = jax.tree.map(np.asarray, draw(keys, pool))
  hparams = dict(
    lr=float(cfg.lr),
    clip=None if algorithm == "sgd" else float(cfg.clip),
    alpha=float(cfg.alpha) if algorithm == "sgd_cr" else 0.0,
    bound=float(cfg.omega_bound),
  )
  # inputs [P, R, T, B, I], targets [P, R, B]
  return (cell, torch_peers.to_peer(cell, params), b.inputs, b.targets), hparams


def _peer_cases(plan: Plan, task, cell: str, alg: str, length: int, n_runs: int, log) -> list:
  """The batched torch peers of one workload: in this process, and split over one
  1-thread process per core."""
  processes = os.cpu_count() if plan.torch_processes is None else plan.torch_processes
  log(f"torch peers: {cell} {alg} T={length} runs={n_runs}: initialising")
  args, hparams = _peer_setup(plan, task, cell, alg, length, n_runs)
  jobs = [("torch_batched", torch_peers.Batched(*args, **hparams))]
  if (processes or 0) >= 2:
    jobs.append(("torch_per_core", torch_peers.PerCore(*args, processes=processes, **hparams)))
  key = dict(cell=cell, algorithm=alg, length=length, runs=n_runs)
  return [_Case(dict(side=side, **key), job, 0, 0.0) for side, job in jobs]


class _Matmul:
  """`reps` float32 N×N products, on one device or one per device (sharded)."""

  def __init__(self, n: int, sharded: bool, reps: int = 2):
    self.reps = reps
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    if sharded:
      d = jax.device_count()
      self.products = d
      put = lambda x: jax.device_put(x, runs.runs_sharding())
      self.a = put(jax.random.normal(k1, (d, n, n), jnp.float32))
      self.b = put(jax.random.normal(k2, (d, n, n), jnp.float32))
      self.f = jax.jit(jnp.matmul)
    else:
      self.products = 1
      self.a = jax.random.normal(k1, (n, n), jnp.float32)
      self.b = jax.random.normal(k2, (n, n), jnp.float32)
      self.f = jax.jit(jnp.dot)
    self.flops = reps * self.products * 2.0 * n**3

  def __call__(self) -> None:
    out = None
    for _ in range(self.reps):
      out = self.f(self.a, self.b)
    jax.block_until_ready(out)


class _StepProducts:
  """The recurrence's product alone, as the engine runs it: `h ← tanh(h @ w_hh)`.

  `[B, H] × [H, H]` for every run at once (vmapped, sharded like the runs), as many steps
  per block as a training block has sequence steps. Training does two such products per
  step (forward and backward) plus one large weight-gradient product, so the GFLOP/s
  this reaches bounds what a training update can: it is the ceiling for products of
  this size on this machine, where the 2048² matmul is the ceiling for large ones.
  """

  def __init__(
    self, hidden: int, batch: int, steps: int, n_runs: int, activation: Callable = jnp.tanh
  ):
    self.n_padded = _padded(n_runs)
    self.steps = steps
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    h, b = hidden, batch
    put = lambda x: jax.device_put(x, runs.runs_sharding())
    self.w = put(jax.random.normal(k1, (self.n_padded, h, h), jnp.float32) / math.sqrt(h))
    self.h = put(jax.random.normal(k2, (self.n_padded, b, h), jnp.float32))

    def run(w, h0):
      step = lambda h, _: (activation(h @ w), None)
      return jax.lax.scan(step, h0, None, length=steps)[0]

    self.f = jax.jit(jax.vmap(run))
    self.flops = n_runs * steps * 2.0 * b * h * h

  def __call__(self) -> None:
    jax.block_until_ready(self.f(self.w, self.h))


# --- running and summarising -----------------------------------------------------------


def _build_cases(plan: Plan, log: Callable[[str], None]) -> tuple[list[_Case], list[str]]:
  notes = []
  task = get_task("temporal_order")
  cases: list[_Case] = []
  for size_sharded in (False, True):
    mm = _Matmul(plan.matmul_size, size_sharded)
    cases.append(
      _Case(
        dict(side="matmul", sharded=size_sharded, n=plan.matmul_size),
        mm,
        0,
        mm.flops,
        dict(products_per_call=mm.products, calls_per_block=mm.reps),
      )
    )
  step = _StepProducts(
    plan.hidden, plan.batch, _chunk_size(plan, plan.ref_length) * plan.ref_length, plan.ref_runs
  )
  cases.append(
    _Case(
      dict(side="step_product", runs=plan.ref_runs, batch=plan.batch, hidden=plan.hidden),
      step,
      0,
      step.flops,
      dict(runs_padded=step.n_padded, steps_per_block=step.steps),
    )
  )
  programs = _JaxPrograms(plan)
  for length in plan.lengths:
    flops = update_flops(length, plan.batch, plan.hidden, task.n_in)
    for alg in plan.algorithms:
      for n_runs in plan.run_counts:
        log(f"jax: {alg} T={length} runs={n_runs}: initialising")
        job = _JaxTraining(programs, alg, length, n_runs)
        ru = n_runs * _chunk_size(plan, length)
        cases.append(
          _Case(
            dict(side="jax", algorithm=alg, length=length, runs=n_runs),
            job,
            ru,
            ru * flops,
            dict(runs_padded=job.n_padded, chunk_size=_chunk_size(plan, length)),
          )
        )
  if plan.mixed_range is not None:
    # Mixed lengths: the same SGD-CR runs and lengths, in buckets and padded to the longest.
    lo, hi = plan.mixed_range
    mean = _mean_length(plan)
    flops = update_flops(mean, plan.batch, plan.hidden, task.n_in)
    for buckets in (plan.length_buckets, 1):
      log(f"jax: sgd_cr T in [{lo}, {hi}) buckets={buckets}: initialising")
      job = _JaxTraining(programs, "sgd_cr", hi, plan.ref_runs, lengths=(lo, hi), buckets=buckets)
      ru = plan.ref_runs * _chunk_size(plan, mean)
      cases.append(
        _Case(
          {
            "side": "mixed",
            "algorithm": "sgd_cr",
            "length": f"[{lo},{hi})",
            "runs": plan.ref_runs,
            "buckets": buckets,
          },
          job,
          ru,
          ru * flops,
          {"runs_padded": job.n_padded, "chunk_size": _chunk_size(plan, mean)},
        )
      )
  if plan.compaction_runs is not None:
    # Two thirds of a group decided: the program that still carries them against the one
    # `sweep` compacts the live runs into. Work counted: the live runs' updates.
    group, live = plan.compaction_runs
    length = plan.ref_length
    flops = update_flops(length, plan.batch, plan.hidden, task.n_in)
    compact = resident.compact_size(live, jax.device_count())
    for name, n_runs, padded in (("carried", group, None), ("compacted", live, compact)):
      log(f"jax: sgd_cr T={length} {live} live of {n_runs}: initialising")
      job = _JaxTraining(programs, "sgd_cr", length, n_runs, live=live, padded=padded)
      ru = live * _chunk_size(plan, length)
      cases.append(
        _Case(
          {
            "side": "compaction",
            "algorithm": "sgd_cr",
            "length": length,
            "runs": live,
            "program": name,
            "program_runs": job.n_padded,
          },
          job,
          ru,
          ru * flops,
          {"runs_padded": job.n_padded, "chunk_size": _chunk_size(plan, length)},
        )
      )
  cases += _lyapunov_trace_cases(plan, task, log)
  for length in plan.autodiff_lengths:
    for alg in (a for a in plan.algorithms if a in ("sgd_c", "sgd_cr")):
      log(f"autodiff: {alg} T={length} runs={plan.ref_runs}: initialising")
      job = _AutodiffTraining(plan, task, alg, length, plan.ref_runs)
      ru = plan.ref_runs * _chunk_size(plan, length)
      flops = update_flops(length, plan.batch, plan.hidden, task.n_in)
      cases.append(
        _Case(
          {"side": "autodiff", "algorithm": alg, "length": length, "runs": plan.ref_runs},
          job,
          ru,
          ru * flops,
          {"runs_padded": job.n_padded, "chunk_size": _chunk_size(plan, length)},
        )
      )
  peer_algs = [a for a in plan.algorithms if a in ("sgd_c", "sgd_cr")]
  if torch is not None:
    for length in plan.batched_lengths:
      for alg in peer_algs:
        cases += _peer_cases(plan, task, "rnn", alg, length, plan.ref_runs, log)
  # Every autodiff cell beside its peers (adjacent within a round). No flops counted:
  # `update_flops` is the paper RNN's.
  for cell in plan.cells:
    for length in plan.cell_lengths:
      for alg in plan.cell_algorithms:
        log(f"jax: {cell} {alg} T={length} runs={plan.cell_runs}: initialising")
        job = _JaxTraining(programs, alg, length, plan.cell_runs, cell=cell)
        ru = plan.cell_runs * _chunk_size(plan, length)
        key = dict(side="jax", cell=cell, algorithm=alg, length=length, runs=plan.cell_runs)
        info = dict(runs_padded=job.n_padded, chunk_size=_chunk_size(plan, length))
        cases.append(_Case(key, job, ru, 0.0, info))
        if torch is not None:
          cases += _peer_cases(plan, task, cell, alg, length, plan.cell_runs, log)
  if torch is None:
    notes.append(_TORCH_MISSING)
    log(_TORCH_MISSING)
  else:
    torch_jobs = [("torch", a, "loop") for a in plan.torch_algorithms]
    torch_jobs += [("torch_nn_rnn", a, "nn_rnn") for a in plan.torch_nn_rnn if a != "sgd_cr"]
    for length in plan.torch_lengths:
      flops = update_flops(length, plan.batch, plan.hidden, task.n_in)
      for side, alg, impl in torch_jobs:
        job = _TorchTraining(plan, task, alg, length, impl)
        cases.append(_Case(dict(side=side, algorithm=alg, length=length, runs=1), job, 0, 0.0))
  return cases, notes


def _finish_torch_case(case: _Case, plan: Plan, task) -> None:
  job = case.block
  job.calibrate(plan.torch_block_s)
  runs = case.key["runs"]
  flops = update_flops(case.key["length"], plan.batch, plan.hidden, task.n_in)
  case.run_updates = job.updates_per_block * runs
  # Flops are counted for the paper's RNN only (`update_flops`).
  case.flops = case.run_updates * flops if case.key.get("cell", "rnn") == "rnn" else 0.0
  workers = len(getattr(job, "workers", ()))
  case.info = dict(
    updates_per_block=job.updates_per_block,
    threads=1 if workers else torch.get_num_threads(),
    processes=workers or 1,
  )


# A timed block that never returns would hang the benchmark in silence: it happened once
# on 2 CPU devices (the main thread waiting for a result, XLA's threads idle). Past this
# many seconds, far beyond any block's compilation and run here, every thread's stack is
# printed to stderr and the process exits 1.
HANG_S = 1800.0


@contextlib.contextmanager
def watchdog(seconds: float = HANG_S):
  """Exits the process (status 1, every thread's stack on stderr, faulthandler's
  "Timeout" first) if the block runs past `seconds`; a C thread watches, so it fires
  even while the main thread is blocked inside XLA."""
  faulthandler.dump_traceback_later(seconds, exit=True)
  try:
    yield
  finally:
    faulthandler.cancel_dump_traceback_later()


def _timed(fn: Callable[[], Any], hang_s: float = HANG_S) -> tuple[float, float]:
  """Wall seconds and CPU seconds (every thread) that `fn()` takes: this process's, plus
  what `fn` returns, the CPU seconds of worker processes it waited for. Under `watchdog`:
  a block past `hang_s` ends the benchmark with its stacks instead of hanging it."""
  with watchdog(hang_s):
    t0, c0 = time.perf_counter(), time.process_time()
    elsewhere = fn() or 0.0
    return time.perf_counter() - t0, time.process_time() - c0 + elsewhere


def run_benchmark(plan: Plan, log: Callable[[str], None] = logging.info) -> dict[str, Any]:
  """Times every case of `plan`, interleaved round by round.

  Args:
    plan: what to time.
    log: receives progress lines.

  Returns:
    A JSON-able dict: `machine` (host, versions, devices, load), `plan`, `cases` (one
    entry per timed case with its per-round seconds, median/best rates and GFLOP/s),
    `summary` (`ratio_vs_torch`, `omega_overhead`, `matmul_fraction`,
    `ratio_vs_autodiff` at the reference point) and `ratios` (the same per length and run count), `notes`.
  """
  t_start = time.time()
  load_before = _loadavg()
  task = get_task("temporal_order")
  threads_before = None
  if torch is not None and plan.torch_threads is not None:
    threads_before = torch.get_num_threads()
    torch.set_num_threads(int(plan.torch_threads))
  cases: list[_Case] = []
  try:
    results = _run(plan, task, log, t_start, load_before, cases)
  finally:
    if threads_before is not None:
      torch.set_num_threads(threads_before)
    for case in cases:  # the worker processes of the one-process-per-core peers
      getattr(case.block, "close", lambda: None)()
  return results


def _run(
  plan: Plan, task, log, t_start: float, load_before: list[float], cases: list[_Case]
) -> dict[str, Any]:
  built, notes = _build_cases(plan, log)
  cases += built
  # Warm-up round: compiles the JAX programs, sizes the torch blocks.
  for case in cases:
    if case.key["side"].startswith("torch"):
      _finish_torch_case(case, plan, task)
    dt, _ = _timed(case.block)
    log(f"warm-up {_name(case.key)}: {dt:.2f} s")
  for r in range(plan.rounds):
    for case in cases:
      wall, cpu = _timed(case.block)
      case.seconds.append(wall)
      case.cpu_seconds.append(cpu)
    log(f"round {r + 1}/{plan.rounds} done ({time.time() - t_start:.0f} s)")
  for case in cases:
    if isinstance(case.block, _JaxTraining):
      case.info["stopped_runs"] = case.block.stopped_runs()

  results = dict(
    machine=_machine_info(load_before),
    plan=dataclasses.asdict(plan),
    cases=[_case_result(c) for c in cases],
    notes=notes,
  )
  results["ratios"] = _ratios(cases, plan)
  results["peers"] = _peer_ratios(cases)
  results["summary"] = _summary(results["ratios"], plan)
  results["summary"].update(_peer_summary(results["peers"], plan))
  results["machine"]["loadavg_after"] = _loadavg()
  results["wall_s"] = time.time() - t_start
  return results


def _name(key: dict) -> str:
  if key["side"] == "step_product":
    return f"step product [{key['batch']}x{key['hidden']}]·[{key['hidden']}x{key['hidden']}] runs={key['runs']}"
  if key["side"] == "matmul":
    return f"matmul {key['n']}{' sharded' if key['sharded'] else ''}"
  cell = f"{key['cell']} " if "cell" in key else ""
  k = f" lyapunov_k={key['k']}" if "k" in key else ""
  return f"{key['side']} {cell}{key['algorithm']} T={key['length']} runs={key['runs']}{k}"


def _case_result(c: _Case) -> dict[str, Any]:
  med, best = statistics.median(c.seconds), min(c.seconds)
  out = dict(c.key, **c.info, seconds=c.seconds, median_s=med, best_s=best)
  out["cpu_seconds"] = c.cpu_seconds
  out["gflops"] = c.flops / med / 1e9
  out["gflops_best"] = c.flops / best / 1e9
  if c.run_updates:
    out["run_updates_per_block"] = c.run_updates
    out["run_updates_per_s"] = c.run_updates / med
    out["run_updates_per_s_best"] = c.run_updates / best
    out["run_updates_per_cpu_s"] = c.run_updates / max(statistics.median(c.cpu_seconds), 1e-9)
  return out


def _per_round(c: _Case, flops: bool = False, cpu: bool = False) -> np.ndarray:
  work = c.flops if flops else c.run_updates
  return work / np.maximum(np.asarray(c.cpu_seconds if cpu else c.seconds), 1e-9)


def _ratios(cases: list[_Case], plan: Plan) -> list[dict[str, Any]]:
  """Within-round ratios (median over rounds) for every JAX case of the paper's RNN that
  has a partner (the batched peers' are `_peer_ratios`)."""
  find = lambda **k: next(
    (c for c in cases if "cell" not in c.key and all(c.key.get(a) == v for a, v in k.items())),
    None,
  )
  mm = [c for c in cases if c.key["side"] == "matmul"]
  ceiling = np.max([_per_round(c, flops=True) for c in mm], axis=0)  # flop/s per round
  ceiling_cpu = np.max([_per_round(c, flops=True, cpu=True) for c in mm], axis=0)
  step = find(side="step_product")
  med = lambda a: float(np.median(a))
  rows = []
  for c in cases:
    if c.key["side"] != "jax" or "cell" in c.key:  # the cells' rows are `_peer_ratios`'
      continue
    alg, length, runs = c.key["algorithm"], c.key["length"], c.key["runs"]
    row = dict(algorithm=alg, length=length, runs=runs)
    row["matmul_fraction"] = med(_per_round(c, flops=True) / ceiling)
    row["matmul_fraction_per_cpu_s"] = med(_per_round(c, flops=True, cpu=True) / ceiling_cpu)
    # The same GFLOP/s over what the recurrence's [B, H]·[H, H] products reach alone.
    row["step_product_fraction"] = (
      med(_per_round(c, flops=True) / _per_round(step, flops=True)) if step else None
    )
    t = find(side="torch", algorithm=alg, length=length)
    row["ratio_vs_torch"] = med(_per_round(c) / _per_round(t)) if t else None
    # Per CPU-second: robust to other processes' load, and blind to how many cores.
    row["ratio_vs_torch_per_cpu_s"] = (
      med(_per_round(c, cpu=True) / _per_round(t, cpu=True)) if t else None
    )
    t = find(side="torch_nn_rnn", algorithm=alg, length=length)
    row["ratio_vs_torch_nn_rnn"] = med(_per_round(c) / _per_round(t)) if t else None
    a = find(side="autodiff", algorithm=alg, length=length, runs=runs)
    row["ratio_vs_autodiff"] = med(_per_round(c) / _per_round(a)) if a else None
    row["ratio_vs_autodiff_per_cpu_s"] = (
      med(_per_round(c, cpu=True) / _per_round(a, cpu=True)) if a else None
    )
    if alg == "sgd_cr":
      base = find(side="jax", algorithm="sgd_c", length=length, runs=runs)
      # Time per SGD-CR update over time per SGD-C update.
      row["omega_overhead"] = med(_per_round(base) / _per_round(c)) if base else None
      row["omega_overhead_per_cpu_s"] = (
        med(_per_round(base, cpu=True) / _per_round(c, cpu=True)) if base else None
      )
    rows.append(row)
  # The engine's own savings: bucketed over padded lengths, compacted over carried runs.
  engine = {"kind": "engine"}
  for name, side, fast, slow in (
    ("mixed_length_speedup", "mixed", {"buckets": plan.length_buckets}, {"buckets": 1}),
    ("compaction_speedup", "compaction", {"program": "compacted"}, {"program": "carried"}),
    # Rates without the exponents over rates with them: the time they add, as a factor.
    ("lyapunov_trace_overhead", "lyapunov_trace", {"k": 0}, {"k": (plan.lyapunov_trace or [0])[0]}),
  ):
    f, sl = find(side=side, **fast), find(side=side, **slow)
    if f and sl:
      engine[name] = med(_per_round(f) / _per_round(sl))
      engine[f"{name}_per_cpu_s"] = med(_per_round(f, cpu=True) / _per_round(sl, cpu=True))
  rows.append(engine)
  return rows


def _peer_ratios(cases: list[_Case]) -> list[dict[str, Any]]:
  """For every engine workload with a peer (`_PEER_SIDES`, the same runs): each peer's
  rate and ratio, and the ratio over the strongest peer, wall-clock and per CPU-second.

  The strongest peer is the one with the highest median rate (per CPU-second: the highest
  median rate per CPU-second); its ratio is the median over rounds of the within-round
  ratio, as every ratio here."""
  cell_of = lambda key: key.get("cell", "rnn")  # noqa: E731
  med = lambda a: float(np.median(a))  # noqa: E731
  rows = []
  for c in cases:
    if c.key["side"] != "jax":
      continue
    k = c.key
    peers = [
      p
      for p in cases
      if p.key["side"] in _PEER_SIDES
      and cell_of(p.key) == cell_of(k)
      and all(p.key[a] == k[a] for a in ("algorithm", "length", "runs"))
    ]
    if not peers:
      continue
    row = dict(kind="peers", cell=cell_of(k), algorithm=k["algorithm"], length=k["length"])
    row.update(
      runs=k["runs"], engine=med(_per_round(c)), engine_per_cpu_s=med(_per_round(c, cpu=True))
    )
    for p in peers:
      side = p.key["side"]
      row[side] = med(_per_round(p))
      row[f"{side}_per_cpu_s"] = med(_per_round(p, cpu=True))
      row[f"ratio_vs_{side}"] = med(_per_round(c) / _per_round(p))
      row[f"ratio_vs_{side}_per_cpu_s"] = med(_per_round(c, cpu=True) / _per_round(p, cpu=True))
    strongest = max(peers, key=lambda p: row[p.key["side"]]).key["side"]
    row["strongest"], row["ratio_vs_strongest"] = strongest, row[f"ratio_vs_{strongest}"]
    strongest = max(peers, key=lambda p: row[f"{p.key['side']}_per_cpu_s"]).key["side"]
    row["strongest_per_cpu_s"] = strongest
    row["ratio_vs_strongest_per_cpu_s"] = row[f"ratio_vs_{strongest}_per_cpu_s"]
    rows.append(row)
  return rows


def _peer_summary(peers: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
  """The paper's RNN, SGD-CR at the reference point, against its strongest peer."""
  r = next(
    (
      r
      for r in peers
      if (r["cell"], r["algorithm"], r["length"], r["runs"])
      == ("rnn", "sgd_cr", plan.ref_length, plan.ref_runs)
    ),
    {},
  )
  return dict(
    ratio_vs_strongest=r.get("ratio_vs_strongest", math.nan),
    strongest_peer=r.get("strongest"),
    ratio_vs_strongest_per_cpu_s=r.get("ratio_vs_strongest_per_cpu_s", math.nan),
    strongest_peer_per_cpu_s=r.get("strongest_per_cpu_s"),
  )


def _summary(ratios: list[dict[str, Any]], plan: Plan) -> dict[str, float]:
  pick = lambda alg: next(
    (
      r
      for r in ratios
      if r.get("algorithm") == alg and r["length"] == plan.ref_length and r["runs"] == plan.ref_runs
    ),
    {},
  )
  cr = pick("sgd_cr")
  num = lambda v: math.nan if v is None else float(v)
  engine = next((r for r in ratios if r.get("kind") == "engine"), {})
  return dict(
    mixed_length_speedup=num(engine.get("mixed_length_speedup")),
    mixed_length_speedup_per_cpu_s=num(engine.get("mixed_length_speedup_per_cpu_s")),
    compaction_speedup=num(engine.get("compaction_speedup")),
    compaction_speedup_per_cpu_s=num(engine.get("compaction_speedup_per_cpu_s")),
    lyapunov_trace_overhead=num(engine.get("lyapunov_trace_overhead")),
    lyapunov_trace_overhead_per_cpu_s=num(engine.get("lyapunov_trace_overhead_per_cpu_s")),
    ratio_vs_torch=num(cr.get("ratio_vs_torch")),
    ratio_vs_torch_per_cpu_s=num(cr.get("ratio_vs_torch_per_cpu_s")),
    omega_overhead=num(cr.get("omega_overhead")),
    omega_overhead_per_cpu_s=num(cr.get("omega_overhead_per_cpu_s")),
    matmul_fraction=num(cr.get("matmul_fraction")),
    matmul_fraction_per_cpu_s=num(cr.get("matmul_fraction_per_cpu_s")),
    step_product_fraction=num(cr.get("step_product_fraction")),
    ratio_vs_autodiff=num(cr.get("ratio_vs_autodiff")),
    ratio_vs_autodiff_per_cpu_s=num(cr.get("ratio_vs_autodiff_per_cpu_s")),
    length=plan.ref_length,
    runs=plan.ref_runs,
  )


def summary_line(results: dict[str, Any]) -> str:
  """`ratio_vs_torch=… omega_overhead=… matmul_fraction=… mixed_length_speedup=…
  compaction_speedup=… ratio_vs_autodiff=… ratio_vs_strongest=… strongest_peer=…` (nan,
  or `-` for the peer, where not measured)."""
  s = results["summary"]
  return (
    f"ratio_vs_torch={s['ratio_vs_torch']:.2f} omega_overhead={s['omega_overhead']:.3f} "
    f"matmul_fraction={s['matmul_fraction']:.3f} "
    f"mixed_length_speedup={s['mixed_length_speedup']:.2f} "
    f"compaction_speedup={s['compaction_speedup']:.2f} "
    f"ratio_vs_autodiff={s['ratio_vs_autodiff']:.2f} "
    f"ratio_vs_strongest={s['ratio_vs_strongest']:.2f} strongest_peer={s['strongest_peer'] or '-'}"
  )


_ALG = {"sgd": "SGD", "sgd_c": "SGD-C", "sgd_cr": "SGD-CR"}


def format_table(results: dict[str, Any]) -> str:
  """The results as a plain-text table (run-updates/s are medians over rounds)."""
  m, cases = results["machine"], results["cases"]
  header = (
    f"{m['cpu']} | {m['cpu_count']} CPUs | jax {m['jax']} on {m['device_count']} "
    f"{m['platform']} device(s) | torch {m['torch'] or '-'} ({m['torch_threads'] or '-'} "
    f"threads) | load avg {m['loadavg_before'][0]:.1f} → {m['loadavg_after'][0]:.1f}"
  )
  lines = [header]
  for c in cases:
    if c["side"] == "matmul":
      kind = f"{c['products_per_call']} sharded" if c["sharded"] else "1 device"
      lines.append(
        f"matmul {c['n']}x{c['n']} f32 ({kind}): {c['gflops']:.1f} GFLOP/s "
        f"(best {c['gflops_best']:.1f})"
      )
    if c["side"] == "step_product":
      lines.append(
        f"recurrent step product [{c['batch']}x{c['hidden']}]·[{c['hidden']}x{c['hidden']}] "
        f"alone, {c['runs']} runs: {c['gflops']:.1f} GFLOP/s (best {c['gflops_best']:.1f})"
      )
  jax_runs = sorted({c["runs"] for c in cases if c["side"] == "jax" and "cell" not in c})
  has_nn = any(c["side"] == "torch_nn_rnn" for c in cases)
  has_ad = any(c["side"] == "autodiff" for c in cases)
  ratios = {
    (r["algorithm"], r["length"], r["runs"]): r for r in results["ratios"] if "algorithm" in r
  }
  ref_runs = results["plan"]["ref_runs"]
  head = ["T", "alg"] + [f"jax {n} run{'s' if n > 1 else ''}" for n in jax_runs]
  head += ["torch loop"] + (["torch nn.RNN"] if has_nn else [])
  head += [f"x torch@{ref_runs}", "(per CPU s)"]
  head += [f"autodiff@{ref_runs}", f"x autodiff@{ref_runs}", "(per CPU s)"] if has_ad else []
  head += [f"GFLOP/s@{ref_runs}", "of matmul", "(per CPU s)"]
  head += ["of step product"]
  head += ["CR/C time", "(per CPU s)"]
  rows = [head]
  keys = sorted(
    {
      (c["length"], c["algorithm"])
      for c in cases
      if c["side"] not in ("matmul", "step_product", "mixed", "compaction", "lyapunov_trace")
      and "cell" not in c
    },
    key=lambda k: (k[0], list(_ALG).index(k[1]) if k[1] in _ALG else 9),
  )
  rate = lambda side, alg, t, n: next(
    (
      f"{c['run_updates_per_s']:,.0f}"
      for c in cases
      if c["side"] == side
      and "cell" not in c
      and c["algorithm"] == alg
      and c["length"] == t
      and c["runs"] == n
    ),
    "-",
  )
  fmt = lambda v, f: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f.format(v)
  for t, alg in keys:
    r = ratios.get((alg, t, ref_runs), {})
    gf = next(
      (
        c["gflops"]
        for c in cases
        if c["side"] == "jax"
        and "cell" not in c
        and c["algorithm"] == alg
        and c["length"] == t
        and c["runs"] == ref_runs
      ),
      None,
    )
    row = [str(t), _ALG.get(alg, alg)] + [rate("jax", alg, t, n) for n in jax_runs]
    row += [rate("torch", alg, t, 1)] + ([rate("torch_nn_rnn", alg, t, 1)] if has_nn else [])
    row += [
      fmt(r.get("ratio_vs_torch"), "{:.1f}x"),
      fmt(r.get("ratio_vs_torch_per_cpu_s"), "({:.1f}x)"),
    ]
    if has_ad:
      row += [
        rate("autodiff", alg, t, ref_runs),
        fmt(r.get("ratio_vs_autodiff"), "{:.2f}x"),
        fmt(r.get("ratio_vs_autodiff_per_cpu_s"), "({:.2f}x)"),
      ]
    row += [
      fmt(gf, "{:.1f}"),
      fmt(r.get("matmul_fraction"), "{:.0%}"),
      fmt(r.get("matmul_fraction_per_cpu_s"), "({:.0%})"),
      fmt(r.get("step_product_fraction"), "{:.0%}"),
      fmt(r.get("omega_overhead"), "{:.2f}"),
      fmt(r.get("omega_overhead_per_cpu_s"), "({:.2f})"),
    ]
    rows.append(row)
  widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
  lines.append(
    "run-updates per second (median over rounds); ratios are within-round medians, the "
    "bracketed ones per CPU-second:"
  )
  for row in rows:
    lines.append("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
  engine = next((r for r in results["ratios"] if r.get("kind") == "engine"), {})
  for c in cases:
    if c["side"] == "mixed":
      lines.append(
        f"mixed lengths {c['length']}, SGD-CR, {c['runs']} runs, {c['buckets']} length "
        f"bucket(s): {c['run_updates_per_s']:,.0f} run-updates/s"
      )
    if c["side"] == "compaction":
      lines.append(
        f"{c['runs']} live SGD-CR runs at T={c['length']} in a {c['program_runs']}-run "
        f"program ({c['program']}): {c['run_updates_per_s']:,.0f} live run-updates/s"
      )
    if c["side"] == "lyapunov_trace":
      lines.append(
        f"Figure 7 sweep step at T={c['length']}, {c['runs']} runs, chunk {c['chunk_size']} "
        f"+ screen, top-{c['k']} exponents traced: {c['run_updates_per_s']:,.0f} run-updates/s"
      )
  for name in ("mixed_length_speedup", "compaction_speedup", "lyapunov_trace_overhead"):
    if name in engine:
      lines.append(
        f"{name}: {engine[name]:.2f}x ({engine[name + '_per_cpu_s']:.2f}x per CPU-second)"
      )
  lines += _format_peers(results)
  lines += [f"note: {n}" for n in results["notes"]]
  return "\n".join(lines)


def _format_peers(results: dict[str, Any]) -> list[str]:
  """The engine against each batched peer and the strongest one (`_peer_ratios`)."""
  rows = results.get("peers") or []
  if not rows:
    return []
  sides = [s for s in _PEER_SIDES if any(s in r for r in rows)]
  procs = next((c["processes"] for c in results["cases"] if c["side"] == "torch_per_core"), None)
  label = lambda s: _PEER_SIDES[s] + (f" ({procs})" if s == "torch_per_core" else "")  # noqa: E731
  head = ["cell", "alg", "T", "runs", "engine"] + [label(s) for s in sides]
  head += ["strongest", "x strongest", "strongest per CPU s", "(x per CPU s)"]
  table = [head]
  fmt = lambda v, f: "-" if v is None else f.format(v)  # noqa: E731
  for r in rows:
    row = [r["cell"], _ALG.get(r["algorithm"], r["algorithm"]), str(r["length"]), str(r["runs"])]
    row += [f"{r['engine']:,.0f}"] + [fmt(r.get(s), "{:,.0f}") for s in sides]
    row += [_PEER_SIDES[r["strongest"]], f"{r['ratio_vs_strongest']:.2f}x"]
    row += [_PEER_SIDES[r["strongest_per_cpu_s"]], f"({r['ratio_vs_strongest_per_cpu_s']:.2f}x)"]
    table.append(row)
  widths = [max(len(row[i]) for row in table) for i in range(len(head))]
  lines = [
    "the engine against its batched peers, run-updates per second (median over rounds); "
    "x strongest: within-round median ratio over the fastest peer, bracketed: over the "
    "most efficient peer per CPU-second:"
  ]
  for row in table:
    lines.append("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
  return lines


def _loadavg() -> list[float]:
  try:
    return list(os.getloadavg())
  except OSError:
    return [math.nan] * 3


def _cpu_name() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _machine_info(load_before: list[float]) -> dict[str, Any]:
  import jaxlib

  devices = jax.devices()
  return dict(
    host=platform.node(),
    os=platform.platform(),
    cpu=_cpu_name(),
    cpu_count=os.cpu_count(),
    python=sys.version.split()[0],
    jax=jax.__version__,
    jaxlib=jaxlib.__version__,
    numpy=np.__version__,
    torch=None if torch is None else torch.__version__,
    torch_threads=None if torch is None else torch.get_num_threads(),
    platform=devices[0].platform,
    device_count=len(devices),
    device_kind=devices[0].device_kind,
    xla_flags=os.environ.get("XLA_FLAGS", ""),
    loadavg_before=load_before,
  )


def _json_safe(x):
  if isinstance(x, float) and not math.isfinite(x):
    return None
  if isinstance(x, dict):
    return {k: _json_safe(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_json_safe(v) for v in x]
  return x


def write_json(results: dict[str, Any], path: str) -> None:
  """Writes `results` as JSON (non-finite numbers become null)."""
  with open(path, "w") as f:
    json.dump(_json_safe(results), f, indent=2)
    f.write("\n")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _QUICK.value and _PEERS.value:
    raise app.UsageError("--quick and --peers are two plans: choose one")
  plan = QUICK if _QUICK.value else PEERS if _PEERS.value else FULL
  if _ROUNDS.value is not None:
    plan = dataclasses.replace(plan, rounds=_ROUNDS.value)
  plan = dataclasses.replace(plan, torch_threads=_TORCH_THREADS.value or None)
  if _CELLS.value is not None:
    autodiff = [c for c in cells.CELLS if c != "rnn"]  # the paper's RNN is always timed
    if unknown := sorted(set(_CELLS.value) - set(autodiff)):
      raise app.UsageError(f"--cells: unknown {unknown}; choose from {', '.join(autodiff)}")
    plan = dataclasses.replace(plan, cells=tuple(_CELLS.value))
  results = run_benchmark(plan)
  if _OUT.value:
    write_json(results, _OUT.value)
    logging.info("wrote %s", _OUT.value)
  print(format_table(results))
  print(summary_line(results), flush=True)


if __name__ == "__main__":
  # Flags are defined only when run as a binary, so one benchmark can import the other.
  _QUICK = flags.DEFINE_bool(
    "quick", False, "Only T=50, 15 runs, SGD-C and SGD-CR, and the LSTM at T=100 (+ matmul)."
  )
  _PEERS = flags.DEFINE_bool(
    "peers",
    False,
    "Only the comparison with the peers: the paper's RNN at T=50, every cell at T=100.",
  )
  _CELLS = flags.DEFINE_list(
    "cells", None, "The autodiff cells timed against their peers (default: the plan's)."
  )
  _OUT = flags.DEFINE_string("out", None, "Write every number as JSON to this file.")
  _ROUNDS = flags.DEFINE_integer("rounds", None, "Timed rounds (default: the plan's).")
  _TORCH_THREADS = flags.DEFINE_integer(
    "torch_threads", 1, "torch.set_num_threads while torch is timed (0: torch's default)."
  )
  runtime.setup()  # the experiments' devices and compilation cache (experiments/runtime.py)
  app.run(main)
