"""Plain recurrent cells, `x_t = f(x_{t-1}) W + u_t W_in + b` with the pre-activation as
the carry (the paper's eq. (11) state), trained by autodiff.

* `tanh` — the paper's network with tanh units as a `Cell`: the same function as
  `rnn_dynamics.rnn` with its `basic_tanh` initialisation, here to tie the autodiff path
  and the generic Ω to the hand-written ones (tests) and as the template of a new cell.
* `irnn` — ReLU units, `W` initialised to the identity, the biases to zero and the
  non-recurrent weights (input and readout) to N(0, 0.001²) (Le, Jaitly & Hinton 2015;
  docs/reference.md §6).
* `orthogonal` — the `tanh` cell with a random orthogonal `W` (Saxe, McClelland &
  Ganguli 2014; Henaff, Szlam & LeCun 2016), everything else as `tanh`.

The carry starts at 0, so `f(0) = 0` is required (tanh and ReLU have it): the first
step then sees `h_{-1} = 0` as in the paper.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from rnn_dynamics.cells.base import Cell
from rnn_dynamics.tasks.base import float_dtype

__all__ = ["plain_cell", "tanh", "irnn", "orthogonal"]


def plain_cell(
  name: str,
  f: Callable[[jax.Array], jax.Array],
  recurrent_init: Callable[[jax.Array, int], jax.Array],
  input_std: float,
  readout_std: float | None = None,
) -> Cell:
  """A cell `x_t = f(x_{t-1}) W + u_t W_in + b` (row vectors, as in `rnn_dynamics.rnn`).

  Args:
    name: registry name.
    f: the unit non-linearity, with `f(0) = 0`.
    recurrent_init: `recurrent_init(key, n_hidden) -> W`.
    input_std: the standard deviation of `W_in`'s entries (biases start at 0).
    readout_std: the readout's (`Cell.readout_std`).
  """

  def init(key, n_in, n_hidden):
    k_in, k_hh = jax.random.split(key)
    dtype = float_dtype()
    return dict(
      w_in=input_std * jax.random.normal(k_in, (n_in, n_hidden), dtype),
      w_hh=recurrent_init(k_hh, n_hidden).astype(dtype),
      b=jnp.zeros((n_hidden,), dtype),
    )

  def initial_carry(params, batch_size, dtype):
    return jnp.zeros((batch_size, params["w_hh"].shape[0]), dtype)

  def drive(params, inputs_TxBxI):
    return inputs_TxBxI @ params["w_in"] + params["b"][None, None, :]

  def step(params, x, d):
    return f(x) @ params["w_hh"] + d

  return Cell(
    name=name,
    init=init,
    initial_carry=initial_carry,
    step=step,
    features=lambda params, x: f(x),
    n_features=lambda n_hidden: n_hidden,
    drive=drive,
    recurrent_matrix=lambda params: params["w_hh"],
    readout_std=readout_std,
  )


def tanh() -> Cell:
  """The paper's tanh network, `basic_tanh` initialisation (all weights N(0, 0.1²))."""
  return plain_cell("tanh", jnp.tanh, lambda k, n: 0.1 * jax.random.normal(k, (n, n)), 0.1, 0.1)


def irnn(std: float = 0.001) -> Cell:
  """ReLU units with `W = I` and zero biases (Le, Jaitly & Hinton 2015). Their
  non-recurrent weights, `W_in` and the readout, are N(0, std²), std = 0.001 as in
  their experiments (docs/reference.md §6)."""
  return plain_cell("irnn", jax.nn.relu, lambda k, n: jnp.eye(n), std, std)


def orthogonal() -> Cell:
  """tanh units with a random orthogonal `W` (Haar-distributed, `jax.nn.initializers.
  orthogonal`; Saxe et al. 2014, Henaff et al. 2016), so every singular value of `W` is 1
  at the start. Input weights, biases and readout are the `tanh` cell's (the paper's
  `basic_tanh`: N(0, 0.1²), 0, N(0, 0.1²)), so the two cells differ only in `W`'s
  initialisation (docs/reference.md §6)."""
  return plain_cell(
    "orthogonal",
    jnp.tanh,
    lambda k, n: jax.nn.initializers.orthogonal()(k, (n, n), float_dtype()),
    0.1,
    0.1,
  )
