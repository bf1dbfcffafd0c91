"""The paper's recurrent network: parameters, initialisations, unrolling and exact BPTT.

The state is the pre-activation, as in the paper's eq. (2)/(11),
`x_t = W_rec σ(x_{t-1}) + W_in u_t + b`. Arrays use the row-vector convention of the
original code, `x_t = σ(x_{t-1}) @ w_hh + u_t @ w_in + b`, so `W_rec = w_hhᵀ` (same
spectrum). `h_t = σ(x_t)` and `h_{-1} = 0`.

The unit non-linearity is data, not code: `σ(x) = scale · tanh(slope · x) + shift` gives
tanh with (1, 1, 0) and the logistic sigmoid with (½, ½, ½). Runs with tanh and sigmoid
units therefore share one compiled program and can be vmapped together.

`loss_and_grads` is a hand-written backward pass over the same scan: it returns the loss,
the parameter gradient and the BPTT adjoints `∂E/∂x_t` and `∂E/∂h_t` from one forward and
one backward sweep. Weight gradients are then single `[T·B, H]` matmuls, which is what
makes the per-update cost low on CPUs. Tests check it against `jax.grad` and finite
differences.

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, ICML, §2 eqs. (2)-(5), (11).
"""

from __future__ import annotations

from typing import NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from rnn_dynamics import heads
from rnn_dynamics.tasks.base import Batch, Head, float_dtype

__all__ = [
  "INITS",
  "SIGMOID",
  "TANH",
  "Params",
  "Unit",
  "Unroll",
  "activation",
  "activation_and_derivative",
  "autonomous_map",
  "derivative_from_output",
  "init_id",
  "init_params",
  "loss_and_grads",
  "loss_fn",
  "sequence_mistakes",
  "spectral_radius",
  "step",
  "unit_for_init",
  "unroll",
]


@flax.struct.dataclass
class Params:
  """RNN parameters (row-vector convention, see module docstring).

  Attributes:
    w_in: `[n_in, H]` input weights (`W_in`ᵀ, the original code's `W_uh`).
    w_hh: `[H, H]` recurrent weights (`W_rec`ᵀ).
    b: `[H]` hidden bias.
    w_out: `[H, n_out]` readout weights (`W_hy`).
    b_out: `[n_out]` readout bias.
  """

  w_in: jax.Array
  w_hh: jax.Array
  b: jax.Array
  w_out: jax.Array
  b_out: jax.Array


@flax.struct.dataclass
class Unit:
  """A unit non-linearity `σ(x) = scale · tanh(slope · x) + shift`, carried as data."""

  scale: jax.Array
  slope: jax.Array
  shift: jax.Array


TANH = Unit(scale=1.0, slope=1.0, shift=0.0)
SIGMOID = Unit(scale=0.5, slope=0.5, shift=0.5)  # σ(x) = ½ tanh(x/2) + ½


def activation(unit: Unit, x: jax.Array) -> jax.Array:
  """`σ(x)` for the unit type."""
  return unit.scale * jnp.tanh(unit.slope * x) + unit.shift


def activation_and_derivative(unit: Unit, x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """`σ(x)` and `σ'(x)` from one tanh evaluation."""
  t = jnp.tanh(unit.slope * x)
  return unit.scale * t + unit.shift, unit.scale * unit.slope * (1.0 - t * t)


def derivative_from_output(unit: Unit, h: jax.Array) -> jax.Array:
  """`σ'(x)` from `h = σ(x)`: with `t = tanh(slope·x) = (h − shift)/scale`,
  `σ' = scale·slope·(1 − t)(1 + t)` (e.g. `h(1 − h)` for the sigmoid)."""
  t = (h - unit.shift) / unit.scale
  return unit.scale * unit.slope * (1.0 - t) * (1.0 + t)


def step(params: Params, unit: Unit, x_prev: jax.Array, u: jax.Array) -> jax.Array:
  """One transition of a single example, `x_t = σ(x_{t-1}) @ w_hh + u_t @ w_in + b`.

  The function the analysis tools differentiate (`jax.jacrev(step, argnums=2)` is
  `∂x_t/∂x_{t-1}` in this convention, i.e. `W_recᵀ`-shaped rows times `σ'`).
  """
  return activation(unit, x_prev) @ params.w_hh + u @ params.w_in + params.b


def autonomous_map(params: Params, unit: Unit, x: jax.Array) -> jax.Array:
  """`F(x) = σ(x) @ w_hh + b`: the input-free dynamics whose fixed points are attractors."""
  return activation(unit, x) @ params.w_hh + params.b


# --- initialisations (docs/reference.md §1) -------------------------------------------------------


class InitSpec(NamedTuple):
  """One of the original code's initialisations: units, weight scale, sparsity, radius."""

  unit: Unit
  scale: float
  nonzeros_per_row: int | None = None
  spectral_radius: float | None = None


INITS: dict[str, InitSpec] = {
  "sigmoid": InitSpec(SIGMOID, 0.01),
  "basic_tanh": InitSpec(TANH, 0.1),
  "smart_tanh": InitSpec(TANH, 0.01, nonzeros_per_row=15, spectral_radius=0.95),
}
_INIT_NAMES = tuple(INITS)


def init_id(name: str) -> int:
  """Integer code of an initialisation, so the choice can be vmapped as data."""
  if name not in INITS:
    raise ValueError(f"unknown initialisation {name!r}; choose one of {sorted(INITS)}")
  return _INIT_NAMES.index(name)


def unit_for_init(init: jax.typing.ArrayLike | str) -> Unit:
  """The unit type of an initialisation, given by name or by (possibly traced) id."""
  if isinstance(init, str):
    return INITS[init].unit
  table = jnp.asarray(
    [[s.unit.scale, s.unit.slope, s.unit.shift] for s in INITS.values()], float_dtype()
  )
  row = table[jnp.asarray(init)]
  return Unit(scale=row[0], slope=row[1], shift=row[2])


def _spectral_radius_host(w: np.ndarray) -> np.ndarray:
  return np.max(np.abs(np.linalg.eigvals(np.asarray(w, dtype=np.float64))), axis=-1).astype(w.dtype)


def spectral_radius(w: jax.Array) -> jax.Array:
  """Largest eigenvalue modulus of a square matrix (or a stack of them).

  Non-symmetric eigenvalues have no GPU/TPU kernel in XLA, so this runs LAPACK on the
  host through `jax.pure_callback`; it works under `jit` and `vmap` on every backend.
  """
  out = jax.ShapeDtypeStruct(w.shape[:-2], w.dtype)
  return jax.pure_callback(_spectral_radius_host, out, w, vmap_method="expand_dims")


def _init_one(key: jax.Array, spec: InitSpec, n_in: int, n_hidden: int, n_out: int):
  k_in, k_hh, k_out, k_mask = jax.random.split(key, 4)
  dtype = float_dtype()
  normal = lambda k, shape: spec.scale * jax.random.normal(k, shape, dtype)
  w_hh = normal(k_hh, (n_hidden, n_hidden))
  if spec.nonzeros_per_row is not None:
    # Keep `nonzeros_per_row` random entries in every row (a random permutation per row,
    # as in the original code), then rescale to the target spectral radius.
    ranks = jnp.argsort(jax.random.uniform(k_mask, (n_hidden, n_hidden)), axis=1)
    w_hh = jnp.where(ranks < spec.nonzeros_per_row, w_hh, 0.0)
  if spec.spectral_radius is not None:
    w_hh = w_hh * (spec.spectral_radius / spectral_radius(w_hh))
  return Params(
    w_in=normal(k_in, (n_in, n_hidden)),
    w_hh=w_hh,
    b=jnp.zeros((n_hidden,), dtype),
    w_out=normal(k_out, (n_hidden, n_out)),
    b_out=jnp.zeros((n_out,), dtype),
  )


def init_params(
  key: jax.Array, n_in: int, n_hidden: int, n_out: int, init: str | jax.typing.ArrayLike
) -> Params:
  """Parameters for one of the initialisations of docs/reference.md §1 (biases zero).

  Args:
    key: PRNG key.
    n_in, n_hidden, n_out: sizes.
    init: a name in `INITS`, or its integer id (`init_id`), which may be traced: then
      every initialisation is drawn from the same key and the right one selected, so a
      vmapped sweep can mix initialisations.
  """
  if isinstance(init, str):
    if init not in INITS:
      raise ValueError(f"unknown initialisation {init!r}; choose one of {sorted(INITS)}")
    return _init_one(key, INITS[init], n_in, n_hidden, n_out)
  candidates = [_init_one(key, s, n_in, n_hidden, n_out) for s in INITS.values()]
  return jax.tree.map(lambda *xs: jnp.stack(xs)[jnp.asarray(init)], *candidates)


# --- forward ---------------------------------------------------------------------------


class Unroll(NamedTuple):
  """Everything the forward pass keeps for the backward pass and for analysis.

  Attributes:
    h_TxBxH: `σ(x_t)`, frozen after each sequence ends.
    dsigma_TxBxH: `σ'(x_t)` (zero on padded steps).
    h_last_BxH: the state at each sequence's last valid step.
  """

  h_TxBxH: jax.Array
  dsigma_TxBxH: jax.Array
  h_last_BxH: jax.Array


def _initial_state(params: Params, inputs_TxBxI: jax.Array, h0_BxH: jax.Array | None):
  if h0_BxH is None:
    batch, hidden = inputs_TxBxI.shape[1], params.w_hh.shape[0]
    return jnp.zeros((batch, hidden), inputs_TxBxI.dtype)
  return jnp.asarray(h0_BxH, inputs_TxBxI.dtype)


def unroll(
  params: Params,
  unit: Unit,
  inputs_TxBxI: jax.Array,
  mask_TxB: jax.Array,
  *,
  h0_BxH: jax.Array | None = None,
  scan_unroll: int = 1,
) -> Unroll:
  """Runs the recurrence with `lax.scan`; past a sequence's end its state is held fixed.

  Args:
    params: parameters.
    unit: unit non-linearity.
    inputs_TxBxI: time-major inputs.
    mask_TxB: valid steps (a prefix of each column).
    h0_BxH: the state `h_{-1} = σ(x_{-1})` the sequences start from (default zeros).
      Truncated BPTT passes the last state of the previous segment here, so chained
      segments compute exactly the forward pass of the whole sequence.
    scan_unroll: steps per loop iteration of the scan (`lax.scan(unroll=...)`); a
      speed knob only (accelerators may prefer more than 1), results are unchanged.
  """
  # The input projection does not depend on the state: one big matmul outside the scan.
  drive_TxBxH = inputs_TxBxI @ params.w_in + params.b[None, None, :]

  def body(h_prev, xs):
    drive, valid = xs
    h = jnp.where(valid[:, None], activation(unit, h_prev @ params.w_hh + drive), h_prev)
    return h, h

  h0 = _initial_state(params, inputs_TxBxI, h0_BxH)
  # One stacked output only: on CPU every extra per-step output of a scan costs about as
  # much as the step's matmul, so σ' is recomputed from h afterwards, all steps at once.
  h_last, hs = jax.lax.scan(body, h0, (drive_TxBxH, mask_TxB), unroll=scan_unroll)
  dsigmas = jnp.where(mask_TxB[..., None], derivative_from_output(unit, hs), 0.0)
  return Unroll(hs, dsigmas, h_last)


def sequence_mistakes(params: Params, unit: Unit, batch: Batch, head: Head) -> jax.Array:
  """`[B]` bool, the sequences a model gets wrong (discrete heads only): what the
  success test counts, as integers, so that exactly 1 % never passes as < 1 %."""
  out = unroll(params, unit, batch.inputs, batch.mask)
  h = out.h_last_BxH if heads.is_last(head) else out.h_TxBxH
  return heads.wrong(head, heads.readout(params, h), batch.targets, batch.mask)


def loss_fn(
  params: Params, unit: Unit, batch: Batch, head: Head, *, h0_BxH: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
  """(loss, error) of a batch: the reference forward that `jax.grad` can differentiate.

  `h0_BxH` is the initial state (default zeros), as in `unroll`.
  """
  out = unroll(params, unit, batch.inputs, batch.mask, h0_BxH=h0_BxH)
  return heads.readout_loss(params, out.h_TxBxH, out.h_last_BxH, batch, head)


class Adjoints(NamedTuple):
  """BPTT adjoints of one batch, saved by the backward pass.

  Attributes:
    dx_TxBxH: `∂E/∂x_t` (zero on padded steps) — the paper's δ_t.
    dh_TxBxH: `∂E/∂h_t`, the total error signal reaching `h_t` (the original code's
      adjoint), including what flows through padded steps.
    back_TxBxH: `δ_t w_hhᵀ = dx_t @ w_hh.T`, the error signal step t sends back through
      the recurrence (to `h_{t-1}`), as the backward scan computed it.
    dh_sq_TxB: `‖∂E/∂h_t‖²`.
    back_sq_TxB: `‖δ_t w_hhᵀ‖²`.
    back_act_sq_TxB: `‖(δ_t w_hhᵀ) ⊙ σ'(x_{t-1})‖²` (0 at t = 0), i.e. `‖δ_t ∂x_t/∂x_{t-1}‖²`.

  The backward scan stacks `back` (its one per-step product) and three squared norms
  (cheap per-step scalars); `dh` and `dx` are rebuilt from them element-wise, exactly as
  the scan computed them. Ω's gradient needs `back` and the norms
  (`rnn_dynamics.regularizers`).
  """

  dx_TxBxH: jax.Array
  dh_TxBxH: jax.Array
  back_TxBxH: jax.Array
  dh_sq_TxB: jax.Array
  back_sq_TxB: jax.Array
  back_act_sq_TxB: jax.Array


class Forward(NamedTuple):
  """What `loss_and_grads` keeps besides the gradient (`h_prev_TxBxH` is `h_{t-1}`
  beside step t, the left factor of the `w_hh` gradient)."""

  loss: jax.Array
  error: jax.Array
  unroll: Unroll
  adjoints: Adjoints
  h_prev_TxBxH: jax.Array


def loss_and_grads(
  params: Params,
  unit: Unit,
  batch: Batch,
  head: Head,
  *,
  h0_BxH: jax.Array | None = None,
  scan_unroll: int = 1,
) -> tuple[jax.Array, Params, Forward]:
  """Loss, exact parameter gradient and the BPTT adjoints from one forward/backward sweep.

  Args:
    params: parameters.
    unit: unit non-linearity.
    batch: time-major batch.
    head: readout head.
    h0_BxH: initial state (default zeros), held constant: truncated BPTT carries the
      previous segment's last state in here and the gradient stops at it.
    scan_unroll: steps per loop iteration of both scans (a speed knob, as in `unroll`).

  Returns:
    `(loss, grads, forward)` where `forward` carries the error, the unroll (states and
    `σ'`) and the adjoints, everything Ω needs (`rnn_dynamics.regularizers`).
  """
  inputs, mask = batch.inputs, batch.mask
  h0 = _initial_state(params, inputs, h0_BxH)
  out = unroll(params, unit, inputs, mask, h0_BxH=h0, scan_unroll=scan_unroll)
  # The readout is not recurrent: plain autodiff gives its gradient and the direct
  # error signal injected into the hidden states.
  (loss, error), readout_vjp = jax.vjp(
    lambda p, hs, hl: heads.readout_loss(p, hs, hl, batch, head),
    params,
    out.h_TxBxH,
    out.h_last_BxH,
  )
  g_readout, inject_TxBxH, inject_last = readout_vjp((jnp.ones_like(loss), jnp.zeros_like(error)))
  if heads.is_last(head):
    # h_last is the carry after the final step (held fixed past each sequence's end),
    # so its error signal enters the backward scan at the top.
    carry0 = inject_last
  else:
    carry0 = jnp.zeros_like(inject_last)
  w_hh_t = params.w_hh.T

  # σ'(x_{t-1}) beside step t, for the norm of what step t sends back to x_{t-1}.
  dsigma_prev = jnp.concatenate([jnp.zeros_like(out.dsigma_TxBxH[:1]), out.dsigma_TxBxH[:-1]])

  def body(carried, xs):
    inject, dsigma, dsigma_before, valid = xs
    dh = carried + inject
    dx = dh * dsigma  # dsigma is zero on padded steps
    back = dx @ w_hh_t
    sq = lambda a: jnp.sum(a * a, axis=-1)
    # A padded step copies h_{t-1} forward, so its adjoint passes straight back.
    carried = jnp.where(valid[:, None], back, dh)
    return carried, (back, sq(dh), sq(back), sq(back * dsigma_before))

  # Per-step outputs are few and small on purpose: on CPU each stacked [B, H] output of a
  # scan costs about as much as the step's matmul, a [B] norm almost nothing. `back` is
  # the one stacked output: `dx` follows from it element-wise, and Ω's gradient needs it.
  _, (back_TxBxH, dh_sq, back_sq, back_act_sq) = jax.lax.scan(
    body,
    carry0,
    (inject_TxBxH, out.dsigma_TxBxH, dsigma_prev, mask),
    reverse=True,
    unroll=scan_unroll,
  )
  # dh_t = inject_t + (what step t+1 sends back if it is valid, else the pass-through
  # signal, which for a prefix mask is the readout's injection at the end): the same sum
  # the scan formed, so `dx` below is bit for bit the scan's.
  next_valid = jnp.concatenate([mask[1:], jnp.zeros_like(mask[:1])], axis=0)[..., None]
  next_back = jnp.concatenate([back_TxBxH[1:], jnp.zeros_like(back_TxBxH[:1])], axis=0)
  dh_TxBxH = jnp.where(next_valid, next_back, carry0[None]) + inject_TxBxH
  dx_TxBxH = dh_TxBxH * out.dsigma_TxBxH
  adjoints = Adjoints(dx_TxBxH, dh_TxBxH, back_TxBxH, dh_sq, back_sq, back_act_sq)
  h_prev_TxBxH = jnp.concatenate([h0[None], out.h_TxBxH[:-1]], axis=0)
  flat = lambda a: a.reshape(-1, a.shape[-1])
  dx_flat = flat(dx_TxBxH)
  grads = Params(
    w_in=flat(inputs).T @ dx_flat,
    w_hh=flat(h_prev_TxBxH).T @ dx_flat,
    b=jnp.sum(dx_flat, axis=0),
    w_out=g_readout.w_out,
    b_out=g_readout.b_out,
  )
  return loss, grads, Forward(loss, error, out, adjoints, h_prev_TxBxH)
