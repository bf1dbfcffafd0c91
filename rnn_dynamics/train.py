"""`make_train`: one training run as pure functions of a PRNG key and hyper-parameters.

A run's whole state (parameters, optimizer state, PRNG key, counters, flags) is one
pytree, so a sweep is `jax.vmap` over keys and hyper-parameter arrays, and whole chunks of
updates run inside one compiled call (`lax.scan`). SGD, SGD-C, SGD-CR and element-wise
clipping are hyper-parameter settings of the same program, not forks:

| algorithm | clip threshold | α |
|---|---|---|
| SGD | ∞ | 0 |
| SGD-C | c | 0 |
| SGD-CR | c | α |

A run that is solved or has diverged (non-finite loss or parameters) stops changing while
the others go on: its updates are masked out, its metrics read NaN.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, Algorithm 1, §3.3, §4.1.
  Lu et al. (2022), Discovered policy optimisation (purejaxrl's `make_train` pattern).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from rnn_dynamics import clipping, rnn
from rnn_dynamics.regularizers import omega_and_grad
from rnn_dynamics.tasks import Task, get_task, sample_per_sequence_lengths

__all__ = [
  "ALGORITHMS",
  "HParams",
  "RunState",
  "Trainer",
  "algorithm_hparams",
  "make_train",
  "make_optimizer",
]

# Clip threshold and whether Ω is on, per named algorithm (SPEC §2, §4).
ALGORITHMS = ("sgd", "sgd_c", "sgd_cr", "sgd_elementwise")


@flax.struct.dataclass
class HParams:
  """Per-run hyper-parameters, all arrays so they can be vmapped and swept.

  Attributes:
    lr: learning rate.
    clip: clipping threshold (∞ disables clipping).
    alpha: Ω weight (0 disables Ω's gradient; Ω is still measured).
    init: initialisation id (`rnn.init_id`), which also fixes the unit type.
    elementwise: None (the default): every run clips as `config.clipping` says. A
      boolean array: the kind is chosen per run (True: each entry to `[-clip, clip]`,
      False: the global norm to `clip`), so norm- and element-wise-clipped runs share
      one vmapped program (`algorithm_hparams(..., elementwise_clip=c)`).
  """

  lr: jax.Array
  clip: jax.Array
  alpha: jax.Array
  init: jax.Array
  elementwise: jax.Array | None = None


def algorithm_hparams(
  algorithm: str,
  *,
  lr: float,
  clip: float,
  alpha: float,
  init: str,
  elementwise_clip: float | None = None,
) -> HParams:
  """The hyper-parameters that make an algorithm out of the shared program.

  Args:
    algorithm: one of `ALGORITHMS`.
    lr: learning rate.
    clip: norm-clipping threshold (SGD-C, SGD-CR; and `sgd_elementwise`'s bound when
      `elementwise_clip` is None and `config.clipping == 'elementwise'`).
    alpha: Ω weight (SGD-CR only).
    init: initialisation name.
    elementwise_clip: None (default): the clipping kind is the program's
      (`config.clipping`). A number: the kind is chosen per run, so every algorithm can
      share one program: `sgd_elementwise` clips each entry to this bound, the others
      clip the norm as above (see `HParams.elementwise`).
  """
  if algorithm not in ALGORITHMS:
    raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {ALGORITHMS}")
  per_entry = algorithm == "sgd_elementwise" and elementwise_clip is not None
  return HParams(
    lr=jnp.float32(lr),
    clip=jnp.float32(math.inf if algorithm == "sgd" else elementwise_clip if per_entry else clip),
    alpha=jnp.float32(alpha if algorithm == "sgd_cr" else 0.0),
    init=jnp.int32(rnn.init_id(init)),
    elementwise=None if elementwise_clip is None else jnp.bool_(per_entry),
  )


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

  params: rnn.Params
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
  omega: jax.Array
  error: jax.Array  # training-batch error
  length: jax.Array  # nominal length drawn for the update


class Trainer(NamedTuple):
  """The pure functions of one run (vmap them for a sweep).

  Attributes:
    task: the task.
    init: `init(key, hparams) -> RunState`.
    chunk: `chunk(state, hparams) -> (state, ChunkMetrics)`, `config.chunk_size`
      updates in one `lax.scan`.
    evaluate: `evaluate(params, hparams, key, n_sequences, length=None) -> error`, the
      error rate on fresh sequences (static `n_sequences`; `length` fixes the nominal
      length, else each sequence draws its own as in training).
    train: `train(key, hparams) -> (RunState, screen_errors)`: the whole run, chunks
      until solved, diverged or `max_updates` — the pure, single-call form.
  """

  task: Task
  init: Callable[..., RunState]
  chunk: Callable[..., tuple[RunState, ChunkMetrics]]
  evaluate: Callable[..., jax.Array]
  train: Callable[..., tuple[RunState, jax.Array]]


def make_optimizer(config: ml_collections.ConfigDict, hp: HParams) -> optax.GradientTransformation:
  """Non-finite guard → clipping → SGD, with the run's (possibly traced) thresholds."""
  parts = []
  if config.nonfinite_guard:
    parts.append(clipping.nonfinite_fallback())
  if hp.elementwise is not None:
    parts.append(clipping.clip_norm_or_elementwise(hp.clip, hp.elementwise))
  elif config.clipping == "norm":
    parts.append(clipping.clip_by_global_norm_with_stats(hp.clip))
  elif config.clipping == "elementwise":
    parts.append(clipping.clip_elementwise(hp.clip))
  else:
    raise ValueError(f"config.clipping must be 'norm' or 'elementwise', got {config.clipping!r}")
  parts.append(optax.sgd(hp.lr, momentum=config.get("momentum") or None))
  return optax.chain(*parts)


def _length_bounds(config) -> tuple[int, int]:
  lo, hi = int(config.min_length), int(config.max_length)
  if lo < 1 or hi < lo:
    raise ValueError(
      f"need 1 <= min_length <= max_length, got min_length={lo}, max_length={hi}"
    )
  return lo, hi


def _draw_length(key: jax.Array, lo: int, hi: int) -> jax.Array:
  # The original code: fixed when equal, else uniform in [min_length, max_length).
  if lo == hi:
    return jnp.int32(lo)
  return jax.random.randint(key, (), lo, hi, dtype=jnp.int32)


def _where_tree(cond, new, old):
  return jax.tree.map(lambda a, b: jnp.where(cond, a, b), new, old)


def _all_finite(tree) -> jax.Array:
  return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def make_train(config: ml_collections.ConfigDict) -> Trainer:
  """Builds the pure training functions for one task and model size.

  `config` fields used: `task`, `n_hidden`, `batch_size`, `min_length`, `max_length`,
  `clipping` ('norm' | 'elementwise'), `nonfinite_guard`, `omega_form`, `omega_bound`,
  `chunk_size`, `screen_size`, `eval_size`, `eval_batch`, `success_error`,
  `max_updates`; optional `momentum`, `omega_enabled` (default True: Ω is computed, and
  logged, for every run; False skips it, for programs where every α is 0).
  """
  task = get_task(config.task)
  lo, hi = _length_bounds(config)
  buffer = task.buffer_length(hi)
  batch_size = int(config.batch_size)
  chunk_size = int(config.chunk_size)
  omega_form, omega_bound = config.omega_form, float(config.omega_bound)
  # Static switch: programs where every run has α = 0 can skip Ω entirely.
  with_omega = bool(config.get("omega_enabled", True))

  def init(key: jax.Array, hp: HParams) -> RunState:
    k_params, k_run = jax.random.split(key)
    params = rnn.init_params(k_params, task.n_in, config.n_hidden, task.n_out, hp.init)
    opt_state = make_optimizer(config, hp).init(params)
    false = jnp.bool_(False)
    return RunState(params, opt_state, k_run, jnp.int32(0), false, false, false, jnp.int32(-1))

  def update(state: RunState, hp: HParams) -> tuple[RunState, ChunkMetrics]:
    unit = rnn.unit_for_init(hp.init)
    key, k_len, k_data = jax.random.split(state.key, 3)
    length = _draw_length(k_len, lo, hi)
    batch = task.sample(k_data, batch_size, length, buffer)
    loss, grads, fwd = rnn.loss_and_grads(state.params, unit, batch, task.head)
    if with_omega:
      om, om_grad, _ = omega_and_grad(
        state.params.w_hh,
        fwd.adjoints,
        fwd.unroll.dsigma_TxBxH,
        batch.mask,
        form=omega_form,
        bound=omega_bound,
      )
      # Only W_rec gets Ω's immediate gradient (eq. 10); clipping sees the sum.
      grads = grads.replace(w_hh=grads.w_hh + hp.alpha * om_grad)
    else:
      om = jnp.float32(jnp.nan)
    opt = make_optimizer(config, hp)
    updates, opt_state = opt.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)

    active = ~state.done
    finite = jnp.isfinite(loss) & _all_finite(params)
    moved = active & finite
    stats = clipping.clipping_stats(opt_state)
    nan = jnp.float32(jnp.nan)
    metrics = ChunkMetrics(
      loss=jnp.where(active, loss, nan),
      grad_norm=jnp.where(active, stats["grads/norm_preclip"], nan),
      clipped=jnp.where(active, stats["grads/clipped"].astype(jnp.float32), nan),
      omega=jnp.where(active, om, nan),
      error=jnp.where(active, fwd.error, nan),
      length=length,
    )
    diverged = state.diverged | (active & ~finite)
    new_state = RunState(
      params=_where_tree(moved, params, state.params),
      opt_state=_where_tree(moved, opt_state, state.opt_state),
      key=key,
      step=state.step + active.astype(jnp.int32),
      done=state.done | diverged,
      solved=state.solved,
      diverged=diverged,
      solved_at=state.solved_at,
    )
    return new_state, metrics

  def chunk(state: RunState, hp: HParams) -> tuple[RunState, ChunkMetrics]:
    return jax.lax.scan(lambda s, _: update(s, hp), state, None, length=chunk_size)

  def evaluate(params, hp: HParams, key, n_sequences: int, length=None) -> jax.Array:
    unit = rnn.unit_for_init(hp.init)
    block = min(int(config.eval_batch), n_sequences)
    if n_sequences % block:
      raise ValueError(f"n_sequences={n_sequences} must be a multiple of eval_batch={block}")
    fixed = length is not None
    eval_buffer = task.buffer_length(int(length)) if fixed else buffer

    def one_block(k):
      k_len, k_data = jax.random.split(k)
      if fixed or lo == hi:
        batch = task.sample(k_data, block, jnp.int32(length if fixed else lo), eval_buffer)
      else:
        # One length per sequence, drawn as in training: the test covers the whole range
        # (one length per block would test only n_sequences / eval_batch lengths).
        lengths = jax.random.randint(k_len, (block,), lo, hi, dtype=jnp.int32)
        batch = sample_per_sequence_lengths(task, k_data, lengths, eval_buffer)
      return rnn.loss_fn(params, unit, batch, task.head)[1]

    errors = jax.lax.map(one_block, jax.random.split(key, n_sequences // block))
    return jnp.mean(errors)

  def train(key: jax.Array, hp: HParams) -> tuple[RunState, jax.Array]:
    n_chunks = -(-int(config.max_updates) // chunk_size)

    def body(i, carry):
      state, screens = carry
      state, _ = chunk(state, hp)
      k_screen, k_full = jax.random.split(jax.random.fold_in(state.key, 1))
      screen = evaluate(state.params, hp, k_screen, int(config.screen_size))
      candidate = ~state.done & (screen < config.success_error)
      # Under vmap `cond` becomes a select: the sweep driver (`rnn_dynamics.sweep`)
      # confirms candidates on the host instead, which is much cheaper.
      full = jax.lax.cond(
        candidate,
        lambda: evaluate(state.params, hp, k_full, int(config.eval_size)),
        lambda: jnp.float32(1.0),
      )
      solved = candidate & (full < config.success_error)
      state = state.replace(
        solved=state.solved | solved,
        solved_at=jnp.where(solved, state.step, state.solved_at),
        done=state.done | solved,
      )
      return state, screens.at[i].set(screen)

    state = init(key, hp)
    return jax.lax.fori_loop(0, n_chunks, body, (state, jnp.full((n_chunks,), jnp.nan)))

  return Trainer(task, init, chunk, evaluate, train)
