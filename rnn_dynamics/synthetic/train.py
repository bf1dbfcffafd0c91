"""`make_train`: one training run as pure functions of a PRNG key and hyper-parameters.

A run's whole state (parameters, optimizer state, PRNG key, counters, flags) is one
pytree, so a sweep is `jax.vmap` over keys and hyper-parameter arrays, and whole chunks of
updates run inside one compiled call (`lax.scan`). SGD, SGD-C, SGD-CR, SGD-CF and element-wise
clipping are hyper-parameter settings of the same program, not forks (the table is
`rnn_dynamics.algorithms`); gradient flossing (`rnn_dynamics.flossing`) is added to the
gradient of the runs that have a weight, on the updates its schedule picks.

The original code's non-finite guard (`clipping.nonfinite_fallback`) follows
`config.nonfinite_guard`: "original" (the default) guards norm-clipped runs only, as the
authors' code did (its guard sits inside the clipping branch, so plain SGD's explosions
were its own); "always" guards every run (a more robust SGD than the paper's); "never".

With lengths drawn in `[min_length, max_length)`, every update draws ONE length shared by
all runs of a program, from a schedule fixed by `config.seed` and the update's index (so
a run's trajectory does not depend on which other runs share its program), and runs the
forward and backward scans only over a buffer for that length: the lengths are bucketed
(`config.length_buckets`) and each bucket is its own branch of a `lax.switch` on an
unbatched index, so the cost follows the drawn length instead of `max_length`. Each run's
data still comes from its own key; only the length sequence is common to all runs, as in a
paired design. Evaluation draws one length per sequence, as before.

A run that is solved or has diverged (non-finite loss or parameters) stops changing while
the others go on: its updates are masked out, its metrics read NaN.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, Algorithm 1, §3.3, §4.1.
  Lu et al. (2022), Discovered policy optimisation (purejaxrl's `make_train` pattern).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from rnn_dynamics import cells, clipping, flossing
from rnn_dynamics.algorithms import ALGORITHMS, GUARD_MODES, HParams, guard_enabled, make_optimizer
from rnn_dynamics.analysis import lyapunov
from rnn_dynamics.tasks import Task, get_task, sample_per_sequence_lengths

__all__ = [
  "ALGORITHMS",
  "GUARD_MODES",
  "HParams",
  "RunState",
  "Trainer",
  "guard_enabled",
  "length_buckets",
  "make_optimizer",
  "make_train",
  "success_limit",
]


@flax.struct.dataclass
class RunState:
  """Everything one run carries from chunk to chunk (a checkpoint is exactly this).

  Attributes:
    params: model parameters.
    opt_state: optax state (holds the clipping statistics of the last update).
    key: the run's PRNG key; all randomness (data, lengths, evaluation) derives from it,
      so a run is reproducible from any chunk boundary.
    step: updates done.
    done: True once solved, diverged or out of budget; frozen from then on.
    solved: passed the success test.
    diverged: hit a non-finite loss or parameter.
    solved_at: `step` when solved (-1 otherwise).
  """

  params: Any
  opt_state: Any
  key: jax.Array
  step: jax.Array
  done: jax.Array
  solved: jax.Array
  diverged: jax.Array
  solved_at: jax.Array


class ChunkMetrics(NamedTuple):
  """Per-update metrics of one chunk (`[K]` per run; NaN where the run was frozen)."""

  loss: jax.Array
  grad_norm: jax.Array  # pre-clip global norm, Ω's gradient included (Algorithm 1)
  clipped: jax.Array
  fallback: jax.Array  # 1 where the non-finite guard replaced the step
  omega: jax.Array
  error: jax.Array  # training-batch error
  length: jax.Array  # nominal length drawn for the update


class Trainer(NamedTuple):
  """The pure functions of one run (vmap them for a sweep).

  Attributes:
    task: the task.
    model: the network (`rnn_dynamics.cells`).
    init: `init(key, hparams) -> RunState`.
    chunk: `chunk(state, hparams, chunk_index=0) -> (state, ChunkMetrics)`,
      `config.chunk_size` updates in one `lax.scan`; `chunk_index` (an unbatched
      integer: `in_axes=None` under vmap) picks the chunk's lengths from the shared
      schedule.
    evaluate: `evaluate(params, hparams, key, n_sequences, length=None) -> error`, the
      error rate on fresh sequences (static `n_sequences`; `length` fixes the nominal
      length, else each sequence draws its own as in training).
    count_mistakes: `count_mistakes(params, hparams, key, n_sequences, length=None) ->
      (mistakes, sequences)`, the same test as integer counts per nominal length
      (`[max_length - min_length]` for mixed lengths, else `[1]`), so the success test
      compares counts and can report the worst length.
    exponents: `exponents(params, hparams, key, n_sequences, k) -> [k]`, the top-k
      Lyapunov exponents of the network driven by `n_sequences` fresh sequences of the
      longest training length (each sequence's, sorted, then averaged; the first quarter
      of the steps is warm-up, `lyapunov.training_warmup`); static `n_sequences`, `k`.
  """

  task: Task
  model: cells.Model
  init: Callable[..., RunState]
  chunk: Callable[..., tuple[RunState, ChunkMetrics]]
  evaluate: Callable[..., jax.Array]
  count_mistakes: Callable[..., tuple[jax.Array, jax.Array]]
  exponents: Callable[..., jax.Array]


def _length_bounds(config) -> tuple[int, int]:
  lo, hi = int(config.min_length), int(config.max_length)
  if lo < 1 or hi < lo:
    raise ValueError(f"need 1 <= min_length <= max_length, got min_length={lo}, max_length={hi}")
  return lo, hi


def length_buckets(lo: int, hi: int, n_buckets: int) -> tuple[int, ...]:
  """The longest length of each bucket, ascending, for lengths drawn in `[lo, hi)`.

  `n_buckets` (at most `hi - lo`) buckets of (nearly) equal width; a fixed length
  (`lo == hi`) is one bucket. Each bucket is compiled with a buffer for its longest
  length, so the padding a drawn length carries is under one bucket's width.
  """
  if lo == hi:
    return (lo,)
  n = max(1, min(int(n_buckets), hi - lo))
  return tuple(lo - 1 + -(-(hi - lo) * (b + 1) // n) for b in range(n))


def success_limit(config: ml_collections.ConfigDict, n_sequences: int) -> int:
  """The most mistakes out of `n_sequences` that still pass the success test.

  The paper's test is an error under `config.success_error` (1 %): k mistakes pass when
  `k < success_error · n`, decided exactly in rationals (100 of 10,000 fail). With
  `config.zero_mistake_stop` the test is the original code's: no mistake at all.
  """
  if config.get("zero_mistake_stop", False):
    return 0
  bound = Fraction(str(config.success_error)) * int(n_sequences)
  return math.ceil(bound) - 1


def _where_tree(cond, new, old):
  return jax.tree.map(lambda a, b: jnp.where(cond, a, b), new, old)


def _make_count_mistakes(
  config: ml_collections.ConfigDict, task: Task, model: cells.Model, lo: int, hi: int
):
  """`Trainer.count_mistakes` for lengths in `[lo, hi)` (see `Trainer`)."""
  buffer = task.buffer_length(hi)

  def count_mistakes(params, hp: HParams, key, n_sequences: int, length=None):
    block = min(int(config.eval_batch), n_sequences)
    if n_sequences % block:
      raise ValueError(f"n_sequences={n_sequences} must be a multiple of eval_batch={block}")
    fixed = length is not None or lo == hi
    eval_buffer = task.buffer_length(int(length)) if length is not None else buffer
    n_bins = 1 if fixed else hi - lo

    def one_block(k):
      k_len, k_data = jax.random.split(k)
      if fixed:
        nominal = jnp.int32(length if length is not None else lo)
        batch = task.sample(k_data, block, nominal, eval_buffer)
        bins = jnp.zeros((block,), jnp.int32)
      else:
        # One length per sequence, drawn as in training: the test covers the whole range
        # (one length per block would test only n_sequences / eval_batch lengths).
        lengths = jax.random.randint(k_len, (block,), lo, hi, dtype=jnp.int32)
        batch = sample_per_sequence_lengths(task, k_data, lengths, eval_buffer)
        bins = lengths - lo
      wrong = model.sequence_mistakes(params, hp, batch, task.head).astype(jnp.int32)
      zeros = jnp.zeros((n_bins,), jnp.int32)
      return zeros.at[bins].add(wrong), zeros.at[bins].add(1)

    mistakes, counts = jax.lax.map(one_block, jax.random.split(key, n_sequences // block))
    return jnp.sum(mistakes, axis=0), jnp.sum(counts, axis=0)

  return count_mistakes


def _apply_if_active(state: RunState, key, loss, params, opt_state, om, error, length):
  """The update's new state and metrics: a decided run (done) keeps its state and reads
  NaN; a non-finite loss or parameter marks the run diverged (and done) instead."""
  active = ~state.done
  finite = jnp.isfinite(loss) & clipping.all_finite(params)
  moved = active & finite
  stats = clipping.clipping_stats(opt_state)
  nan = jnp.float32(jnp.nan)
  as_rate = lambda flag: jnp.where(active, flag.astype(jnp.float32), nan)
  metrics = ChunkMetrics(
    loss=jnp.where(active, loss, nan),
    grad_norm=jnp.where(active, stats["grads/norm_preclip"], nan),
    clipped=as_rate(stats["grads/clipped"]),
    fallback=as_rate(stats["grads/nonfinite"]),
    omega=jnp.where(active, om, nan),
    error=jnp.where(active, error, nan),
    length=jnp.asarray(length, jnp.int32),
  )
  diverged = state.diverged | (active & ~finite)
  new_state = RunState(
    params=_where_tree(moved, params, state.params),
    opt_state=_where_tree(moved, opt_state, state.opt_state),
    # A decided run's key stops too: its final test then does not depend on how long
    # the rest of its group ran (nor on compaction).
    key=jnp.where(active, key, state.key),
    step=state.step + active.astype(jnp.int32),
    done=state.done | diverged,
    solved=state.solved,
    diverged=diverged,
    solved_at=state.solved_at,
  )
  return new_state, metrics


class _Setup(NamedTuple):
  """What `make_train` reads from its config, once (validated in this order)."""

  lo: int  # training lengths drawn in [lo, hi); lo == hi: a fixed length
  hi: int
  batch_size: int
  chunk_size: int
  omega_on: bool  # static: programs where every run has α = 0 can skip Ω entirely
  omega_form: str
  omega_bound: float
  scan_unroll: int
  floss: flossing.FlossSettings
  buckets: tuple[int, ...]  # `length_buckets`: one branch of the update each
  schedule_key: jax.Array  # the shared length schedule's (`config.seed`)


def _setup_of(config: ml_collections.ConfigDict) -> _Setup:
  lo, hi = _length_bounds(config)
  return _Setup(
    lo=lo,
    hi=hi,
    batch_size=int(config.batch_size),
    chunk_size=int(config.chunk_size),
    omega_on=bool(config.get("omega_enabled", True)),
    omega_form=config.omega_form,
    omega_bound=float(config.omega_bound),
    scan_unroll=int(config.get("scan_unroll", 1)),
    floss=flossing.settings_of(config, lo),
    buckets=length_buckets(lo, hi, int(config.get("length_buckets", 8))),
    # One length schedule per experiment, the same for every run of a program.
    schedule_key=jax.random.fold_in(jax.random.PRNGKey(int(config.get("seed", 0))), 0x1E),
  )


def _make_update(config: ml_collections.ConfigDict, task: Task, model: cells.Model, setup: _Setup):
  """`update(state, hp, length, index) -> (state, ChunkMetrics)`: one update on a batch
  of nominal length `length` (shared by all runs), in its length bucket's branch; `index`
  is its place in the group's updates (unbatched: flossing's schedule), or None."""

  def update_at(state: RunState, hp: HParams, length, index, buffer_len: int):
    """The update with a buffer of `buffer_len` steps (one bucket's branch)."""
    key, _, k_data = jax.random.split(state.key, 3)
    batch = task.sample(k_data, setup.batch_size, length, buffer_len)
    omega = cells.OmegaSettings(hp.alpha, setup.omega_on, setup.omega_form, setup.omega_bound)
    out = model.loss_and_grads(state.params, hp, batch, task.head, omega, setup.scan_unroll)
    grads = out.grads
    if setup.floss.enabled:
      if hp.floss is None:
        raise ValueError("floss_enabled needs each run's flossing weight (HParams.floss)")
      grads, _ = flossing.add_flossing_grad(
        grads, model, state.params, hp, batch, hp.floss, setup.floss, index
      )
    opt = make_optimizer(config, hp, model.decay_path)
    updates, opt_state = opt.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return _apply_if_active(state, key, out.loss, params, opt_state, out.omega, out.error, length)

  branches = [functools.partial(update_at, buffer_len=task.buffer_length(b)) for b in setup.buckets]

  def update(state: RunState, hp: HParams, length, index) -> tuple[RunState, ChunkMetrics]:
    if len(branches) == 1:
      return branches[0](state, hp, length, index)
    # `length` is the same for every run, so under vmap the index stays unbatched and
    # the switch runs one branch: the scans cost the bucket's length, not max_length.
    bucket = jnp.searchsorted(jnp.asarray(setup.buckets, jnp.int32), length)
    return jax.lax.switch(bucket, branches, state, hp, length, index)

  return update


def _make_chunk(setup: _Setup, update):
  """`Trainer.chunk`: `setup.chunk_size` calls of `update` in one `lax.scan`, on the lengths
  and update indices the chunk's index picks."""
  lo, hi, chunk_size = setup.lo, setup.hi, setup.chunk_size

  def lengths_of_chunk(chunk_index) -> jax.Array:
    """`[chunk_size]` nominal lengths of the chunk's updates, shared by all runs."""
    if lo == hi:
      return jnp.full((chunk_size,), lo, jnp.int32)
    k = jax.random.fold_in(setup.schedule_key, chunk_index)
    return jax.random.randint(k, (chunk_size,), lo, hi, dtype=jnp.int32)

  def indices_of_chunk(chunk_index) -> jax.Array | None:
    """`[chunk_size]` the chunk's updates' places in the group (flossing's schedule: every
    live run of a group has done exactly these many updates), None where unused."""
    if not setup.floss.enabled:
      return None
    first = jnp.asarray(chunk_index, jnp.int32) * chunk_size
    return first + jnp.arange(chunk_size, dtype=jnp.int32)

  def chunk(state: RunState, hp: HParams, chunk_index=0) -> tuple[RunState, ChunkMetrics]:
    indices = indices_of_chunk(chunk_index)
    if lo == hi:
      # Fixed length: the one bucket (the length traced, as the samplers expect).
      step = lambda s, i: update(s, hp, jnp.int32(lo), i)
      return jax.lax.scan(step, state, indices, length=chunk_size)
    step = lambda s, xs: update(s, hp, *xs)
    return jax.lax.scan(step, state, (lengths_of_chunk(chunk_index), indices))

  return chunk


def _make_exponents(task: Task, model: cells.Model, lo: int, hi: int):
  """`Trainer.exponents` for lengths in `[lo, hi)` (see `Trainer`)."""
  # The traces' exponents: the longest length trained, the dynamics over the most steps.
  trace_length = lo if lo == hi else hi - 1

  def exponents(params, hp: HParams, key, n_sequences: int, k: int) -> jax.Array:
    buffer = task.buffer_length(trace_length)
    batch = task.sample(key, n_sequences, jnp.int32(trace_length), buffer)
    warmup = lyapunov.training_warmup(trace_length)
    return jnp.mean(model.exponents(params, hp, batch.inputs, batch.mask, k, warmup), axis=0)

  return exponents


def make_train(config: ml_collections.ConfigDict) -> Trainer:
  """Builds the pure training functions for one task and model size.

  `config` fields used: `task`, `n_hidden`, `batch_size`, `min_length`, `max_length`,
  `nonfinite_guard` (`GUARD_MODES`), `omega_form`,
  `omega_bound`, `chunk_size`, `screen_size`, `eval_size`, `eval_batch`, `success_error`,
  `max_updates`; optional `cell` (default "rnn", the paper's network: `cells.CELLS`),
  `momentum`, `omega_enabled` (default True: Ω is computed, and
  logged, for every run; False skips it, for programs where every α is 0), `seed` (the
  shared length schedule), `length_buckets` (default 8), `scan_unroll` (default 1),
  `zero_mistake_stop` (default False), and gradient flossing's `floss_enabled` (default
  False: nothing is computed, whatever the runs' weights) with its settings
  (`flossing.settings_of`).
  """
  task = get_task(config.task)
  model = cells.get_model(config.get("cell", "rnn"))
  setup = _setup_of(config)

  def init(key: jax.Array, hp: HParams) -> RunState:
    k_params, k_run = jax.random.split(key)
    params = model.init(k_params, task.n_in, config.n_hidden, task.n_out, hp)
    opt_state = make_optimizer(config, hp, model.decay_path).init(params)
    false = jnp.bool_(False)
    return RunState(params, opt_state, k_run, jnp.int32(0), false, false, false, jnp.int32(-1))

  chunk = _make_chunk(setup, _make_update(config, task, model, setup))
  count_mistakes = _make_count_mistakes(config, task, model, setup.lo, setup.hi)

  def evaluate(params, hp: HParams, key, n_sequences: int, length=None) -> jax.Array:
    mistakes, _ = count_mistakes(params, hp, key, n_sequences, length)
    return jnp.sum(mistakes) / n_sequences

  exponents = _make_exponents(task, model, setup.lo, setup.hi)
  return Trainer(task, model, init, chunk, evaluate, count_mistakes, exponents)
