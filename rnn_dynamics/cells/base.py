"""What a recurrent cell is to the synthetic trainer: `Cell` (the transition) and `Model`
(what one update needs from a network: its initial parameters, loss and gradients with Ω,
the sequences it gets wrong).

A `Cell` is a transition `c_t = step(params, c_{t-1}, d_t)` on a carry `c` (a pytree of
`[B, ...]` arrays: `h` for a plain RNN, `(c, h)` for an LSTM, `(re, im)` for a complex
diagonal recurrence) driven by `d_t = drive(params, u)_t`, and the features a linear
readout reads from the carry. Every cell but the paper's RNN trains by autodiff through
the same `lax.scan` (`rnn_dynamics.cells.autodiff`); the paper's RNN keeps its
hand-written BPTT (`rnn_dynamics.cells.paper`).

The carry is the state whose Jacobian `∂c_t/∂c_{t-1}` Ω constrains
(docs/reference.md §2), so a cell's choice of carry is part of its definition: the plain
RNN cells carry the pre-activation `x_t`, as the paper's eq. (11) does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.struct
import jax

from rnn_dynamics.clipping import DecayPath

__all__ = ["Cell", "CellParams", "Model", "OmegaSettings", "Update", "identity_prepare"]


def identity_prepare(params: Any) -> Any:
  return params


def _identity_drive(params: Any, inputs_TxBxI: jax.Array) -> jax.Array:
  del params
  return inputs_TxBxI


class Cell(NamedTuple):
  """A recurrent transition, as pure functions of its parameters.

  Attributes:
    name: registry name.
    init: `init(key, n_in, n_hidden) -> params`, the cell's own parameters.
    initial_carry: `initial_carry(params, batch_size, dtype) -> carry`, the state before
      the first step (`[B, ...]` leaves).
    step: `step(prepared, carry, d_BxD) -> carry`, one transition of a batch.
    features: `features(prepared, carry) -> [B, F]`, what the readout reads.
    n_features: `n_features(n_hidden) -> F`.
    prepare: `prepare(params) -> prepared`, work done once per sequence rather than per
      step (e.g. expRNN's matrix exponential); differentiated through.
    drive: `drive(prepared, inputs_TxBxI) -> [T, B, D]`, the input's contribution to
      every step at once, outside the scan (one big matmul instead of T small ones).
    recurrent_matrix: `recurrent_matrix(prepared) -> [H, H]` whose spectral radius the
      traces log, or None where a cell has no single one (gated cells).
    readout_std: the standard deviation of the readout's weights, or None for
      LeCun-normal (flax `nn.Dense`'s default); its bias starts at 0.
    decay_path: the parameters the non-finite guard's fallback step shrinks, its
      recurrent weights (`clipping.nonfinite_fallback`): a leaf name, a key-path
      predicate, or None where the cell has no recurrent weight matrix to shrink (the
      fallback then skips the update).
  """

  name: str
  init: Callable[..., Any]
  initial_carry: Callable[..., Any]
  step: Callable[..., Any]
  features: Callable[..., jax.Array]
  n_features: Callable[[int], int]
  prepare: Callable[[Any], Any] = identity_prepare
  drive: Callable[..., jax.Array] = _identity_drive
  recurrent_matrix: Callable[[Any], jax.Array] | None = None
  readout_std: float | None = None
  decay_path: DecayPath = "w_hh"


@flax.struct.dataclass
class CellParams:
  """A cell's parameters and its linear readout (`w_out`, `b_out`, as in `rnn.Params`,
  so `rnn.readout` and the heads' losses apply unchanged)."""

  cell: Any
  w_out: jax.Array
  b_out: jax.Array


class OmegaSettings(NamedTuple):
  """How an update treats Ω: its weight (traced, per run), the static switch that skips
  it for programs where every α is 0, its form and bound (`rnn_dynamics.regularizers`)."""

  alpha: jax.Array
  enabled: bool
  form: str
  bound: float


class Update(NamedTuple):
  """What one update's loss and gradient pass returns (`Model.loss_and_grads`)."""

  loss: jax.Array
  grads: Any  # the error gradient with α ∂⁺Ω/∂θ added
  omega: jax.Array  # NaN where Ω is disabled
  error: jax.Array  # the training batch's error rate


class Model(NamedTuple):
  """A network as the synthetic trainer uses it.

  Attributes:
    name: the cell's name.
    init: `init(key, n_in, n_hidden, n_out, hp) -> params`; `hp.init` picks the paper
      RNN's initialisation and is ignored by cells that have their own.
    loss_and_grads: `loss_and_grads(params, hp, batch, head, omega, scan_unroll) ->
      Update`.
    sequence_mistakes: `sequence_mistakes(params, hp, batch, head) -> [B] bool`.
    recurrent_matrix: `recurrent_matrix(params) -> [H, H]` for the ρ trace, or None.
    decay_path: the leaves of `params` the non-finite guard decays (`Cell.decay_path`).
    exponents: `exponents(params, hp, inputs_TxBxI, mask_TxB, k, warmup) -> [B, K]`, the
      top-k Lyapunov exponents of each sequence's trajectory from the initial carry
      (sorted, natural log per step; `rnn_dynamics.analysis.lyapunov`), differentiable in
      `params`: what the traces log and gradient flossing pushes towards 0 (`k` and
      `warmup` static).
  """

  name: str
  init: Callable[..., Any]
  loss_and_grads: Callable[..., Update]
  sequence_mistakes: Callable[..., jax.Array]
  recurrent_matrix: Callable[[Any], jax.Array] | None
  decay_path: DecayPath = "w_hh"
  exponents: Callable[..., jax.Array] | None = None
