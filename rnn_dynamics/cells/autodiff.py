"""Any `Cell` as a trainable `Model`: the unroll in `lax.scan`, gradients by autodiff, Ω
from the adjoints autodiff saves.

The BPTT adjoints `δ_t = ∂E/∂c_t` come out of the same backward pass as the parameter
gradient: the loss is written as a function of a zero perturbation added to every carry,
and its gradient with respect to that perturbation is `δ_t`. Ω then needs only the VJP of
the transition at the saved carries (`regularizers.omega_of_transition`), evaluated for all
steps at once: no second scan.

Past a sequence's end the carry is held fixed (as in `rnn.unroll`), so the readout of
`last_*` heads reads each sequence's own last state and padded steps pass the adjoint
through unchanged; Ω never counts them.

The Lyapunov exponents of any cell (`Model.exponents`) come from Jacobian-vector products
of its step on the carry flattened to one vector per sequence (`lyapunov.jvp_tangent`):
`(c, h)` of an LSTM is one `2H` state, the exponents those of the whole carry.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from rnn_dynamics import heads, regularizers
from rnn_dynamics.analysis import lyapunov
from rnn_dynamics.cells.base import Cell, CellParams, Model, OmegaSettings, Update
from rnn_dynamics.tasks.base import Batch, Head, float_dtype

__all__ = ["Unrolled", "exponents", "loss_and_adjoints", "model", "unroll"]


def _where(valid_B: jax.Array, new: Any, old: Any) -> Any:
  def pick(a, b):
    return jnp.where(valid_B.reshape(valid_B.shape + (1,) * (a.ndim - 1)), a, b)

  return jax.tree.map(pick, new, old)


class Unrolled(NamedTuple):
  """The forward pass of a cell over a batch.

  Attributes:
    carry0: the carry before the first step.
    carries: `[T, ...]` the carry after every step (held past each sequence's end).
    last: the carry after the last step (each sequence's own last state).
    drives: `[T, B, D]` the input drive of every step.
  """

  carry0: Any
  carries: Any
  last: Any
  drives: jax.Array


def unroll(
  cell: Cell,
  params: Any,
  inputs_TxBxI: jax.Array,
  mask_TxB: jax.Array,
  *,
  perturbation: Any = None,
  scan_unroll: int = 1,
) -> Unrolled:
  """Runs `cell` over a time-major batch; `perturbation` (`[T, ...]` like the carries, or
  None) is added to every carry, so that its gradient is the adjoint `∂E/∂c_t`."""
  prepared = cell.prepare(params)
  drives = cell.drive(prepared, inputs_TxBxI)
  carry0 = cell.initial_carry(prepared, inputs_TxBxI.shape[1], inputs_TxBxI.dtype)

  def body(carry, xs):
    drive, valid, eps = xs
    new = _where(valid, cell.step(prepared, carry, drive), carry)
    if eps is not None:
      new = jax.tree.map(jnp.add, new, eps)
    return new, new

  last, carries = jax.lax.scan(body, carry0, (drives, mask_TxB, perturbation), unroll=scan_unroll)
  return Unrolled(carry0, carries, last, drives)


def _features(cell: Cell, prepared: Any, carries: Any, last: Any):
  return jax.vmap(lambda c: cell.features(prepared, c))(carries), cell.features(prepared, last)


def _zeros_like_carries(cell: Cell, params: Any, inputs_TxBxI: jax.Array) -> Any:
  shapes = jax.eval_shape(
    lambda p, u: unroll(cell, p, u, jnp.ones(u.shape[:2], bool)).carries, params, inputs_TxBxI
  )
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def loss_and_adjoints(
  cell: Cell, params: CellParams, batch: Batch, head: Head, *, scan_unroll: int = 1
) -> tuple[jax.Array, jax.Array, CellParams, Any, Unrolled]:
  """`(loss, error, grads, adjoints, unrolled)` from one forward and one backward pass;
  `adjoints` are `∂E/∂c_t`, `[T, ...]` like the carries."""

  def loss(p: CellParams, perturbation):
    out = unroll(
      cell, p.cell, batch.inputs, batch.mask, perturbation=perturbation, scan_unroll=scan_unroll
    )
    h_TxBxF, h_last = _features(cell, cell.prepare(p.cell), out.carries, out.last)
    value, error = heads.readout_loss(p, h_TxBxF, h_last, batch, head)
    return value, (error, out)

  zeros = _zeros_like_carries(cell, params.cell, batch.inputs)
  (value, (error, out)), (grads, adjoints) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
    params, zeros
  )
  return value, error, grads, adjoints, out


def _carries_before(out: Unrolled) -> Any:
  """`c_{t-1}` beside step t: the initial carry, then every carry but the last."""
  return jax.tree.map(lambda c0, cs: jnp.concatenate([c0[None], cs[:-1]]), out.carry0, out.carries)


def exponents(
  cell: Cell, params: Any, inputs_TxBxI: jax.Array, mask_TxB: jax.Array, k: int, warmup: int
) -> jax.Array:
  """`[B, K]`: the top-k Lyapunov exponents of each sequence's trajectory of `cell`
  (parameters `params`, the cell's own), from its initial carry; padded steps hold the
  state and count for nothing (`lyapunov.lyapunov_spectrum`)."""
  prepared = cell.prepare(params)
  drives = cell.drive(prepared, inputs_TxBxI)
  carry0 = cell.initial_carry(prepared, inputs_TxBxI.shape[1], inputs_TxBxI.dtype)
  _, unravel = ravel_pytree(jax.tree.map(lambda a: a[0], carry0))
  flat = lambda carry: ravel_pytree(carry)[0]

  def step(h_H, d_D):
    # One sequence as a batch of one: the cell's step is written for batches.
    one = jax.tree.map(lambda a: a[None], unravel(h_H))
    return flat(jax.tree.map(lambda a: a[0], cell.step(prepared, one, d_D[None])))

  tangent = lyapunov.jvp_tangent(step)
  one_sequence = lambda h0, ds, valid: (
    lyapunov.lyapunov_spectrum(tangent, h0, ds, k, warmup=warmup, valid_T=valid).exponents_K
  )
  return jax.vmap(one_sequence, in_axes=(0, 1, 1))(jax.vmap(flat)(carry0), drives, mask_TxB)


def model(cell: Cell) -> Model:
  """The `Model` of a cell with a linear readout (`Cell.readout_std`), trained by
  autodiff."""

  def init(key: jax.Array, n_in: int, n_hidden: int, n_out: int, hp) -> CellParams:
    del hp  # the cell has its own initialisation
    k_cell, k_out = jax.random.split(key)
    n_features = cell.n_features(n_hidden)
    dtype = float_dtype()
    if cell.readout_std is None:
      w_out = jax.nn.initializers.lecun_normal()(k_out, (n_features, n_out), dtype)
    else:
      w_out = cell.readout_std * jax.random.normal(k_out, (n_features, n_out), dtype)
    return CellParams(cell.init(k_cell, n_in, n_hidden), w_out, jnp.zeros((n_out,), dtype))

  def loss_and_grads(
    params: CellParams, hp, batch: Batch, head: Head, omega: OmegaSettings, scan_unroll: int = 1
  ) -> Update:
    del hp
    value, error, grads, adjoints, out = loss_and_adjoints(
      cell, params, batch, head, scan_unroll=scan_unroll
    )
    if not omega.enabled:
      return Update(value, grads, jnp.float32(jnp.nan), error)

    def transition(raw, carries_before):
      prepared = cell.prepare(raw)
      drives = cell.drive(prepared, batch.inputs)
      return jax.vmap(lambda c, d: cell.step(prepared, c, d))(carries_before, drives)

    om, omega_grad, _ = regularizers.omega_of_transition(
      transition,
      params.cell,
      _carries_before(out),
      adjoints,
      batch.mask,
      form=omega.form,
      bound=omega.bound,
    )
    cell_grads = jax.tree.map(lambda g, o: g + omega.alpha * o, grads.cell, omega_grad)
    return Update(value, grads.replace(cell=cell_grads), om, error)

  def sequence_mistakes(params: CellParams, hp, batch: Batch, head: Head) -> jax.Array:
    del hp
    out = unroll(cell, params.cell, batch.inputs, batch.mask)
    h_TxBxF, h_last = _features(cell, cell.prepare(params.cell), out.carries, out.last)
    h = h_last if head.startswith("last") else h_TxBxF
    return heads.wrong(head, heads.readout(params, h), batch.targets, batch.mask)

  recurrent = None
  if cell.recurrent_matrix is not None:
    recurrent = lambda params: cell.recurrent_matrix(cell.prepare(params.cell))

  def model_exponents(params: CellParams, hp, inputs_TxBxI, mask_TxB, k: int, warmup: int):
    del hp
    return exponents(cell, params.cell, inputs_TxBxI, mask_TxB, k, warmup)

  return Model(
    cell.name,
    init,
    loss_and_grads,
    sequence_mistakes,
    recurrent,
    cell.decay_path,
    exponents=model_exponents,
  )
