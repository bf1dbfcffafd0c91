"""expRNN (Lezcano-Casado & Martínez-Rubio 2019): a recurrent matrix kept orthogonal by
parametrising it as the exponential of a skew-symmetric matrix, with modReLU units.

`h_t = modReLU(h_{t-1} W + u_t W_in)`, `W = expm(S)`, `S = A − Aᵀ` with `A` strictly upper
triangular (only `A`'s entries above the diagonal are used, as in the authors' code, so
each entry of `S` has one parameter). Since `S` is skew-symmetric, `W` is orthogonal
(`Wᵀ W = I`, `det W = 1`) for any `A`, so plain gradient steps on `A` never leave the
orthogonal group and ρ(W) = 1 throughout training. `prepare` computes `expm(S)` once per
update (`cells.expm`: matrix products only, no linear solve), and autodiff differentiates
through it.

modReLU (Arjovsky, Shah & Bengio 2016, real case): `modReLU(z) = sign(z) relu(|z| + b)`
element-wise, one trainable `b` per unit. The carry is the hidden state `h` (the authors'
state; their output is `h` too), from `h_{-1} = 0`. The pre-activation carry of
`vanilla` would also work here (`sign(0) = 0` makes `modReLU(0) = 0` whatever `b`), but the
hidden state is the quantity the authors' code propagates.

Initialisation, as in the authors' code (`lezcano/expRNN`; docs/reference.md §6):
  * `A`: "henaff" (their copy task's default): `S` block-diagonal with 2 × 2 blocks
    `[[0, s], [−s, 0]]`, `s ~ U[−π, π]`, so `W` starts as independent plane rotations by
    angles `s` (Henaff, Szlam & LeCun 2016); "cayley" (their MNIST default): the same
    blocks with `s = −√((1 − cos φ)/(1 + cos φ))`, `φ ~ U[0, π/2]`. An odd unit is left
    with a zero block (a fixed direction, eigenvalue 1).
  * `W_in`: He normal, N(0, 2/n_in), no input bias (their `kaiming_normal_` with
    `nonlinearity="relu"`).
  * `b` (modReLU): U[−0.01, 0.01].
  * readout: LeCun normal, N(0, 1/n_hidden), bias 0 (the project's default; their copy
    task draws it He normal, N(0, 2/n_hidden), their MNIST task with PyTorch's default).

The non-finite guard's fallback (a small decay of the recurrent matrix, `Cell.decay_path`)
has nothing to act on: `W` stays orthogonal and cannot shrink (decaying `A` would rotate
`W` towards `I` instead), so the fallback skips the update.

The authors train `A` with a learning rate 10 times smaller than the other parameters and
RMSprop; here every parameter shares the trainer's one optimiser and learning rate.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from rnn_dynamics.cells.base import Cell
from rnn_dynamics.cells.expm import expm
from rnn_dynamics.tasks.base import float_dtype

__all__ = ["INITS", "block_angles", "exprnn", "modrelu", "skew"]

INITS = ("henaff", "cayley")


def modrelu(z: jax.Array, b: jax.Array) -> jax.Array:
  """`sign(z) relu(|z| + b)`, element-wise (`b` broadcast over the batch)."""
  return jnp.sign(z) * jax.nn.relu(jnp.abs(z) + b[None, :])


def skew(a: jax.Array) -> jax.Array:
  """`A − Aᵀ` for the strictly upper triangular part `A` of `a`."""
  upper = jnp.triu(a, k=1)
  return upper - upper.T


def block_angles(key: jax.Array, n_hidden: int, init: str, dtype) -> jax.Array:
  """The `n_hidden // 2` rotation angles `s` of the initial 2 × 2 blocks."""
  n_blocks = n_hidden // 2
  if init == "henaff":
    return jax.random.uniform(key, (n_blocks,), dtype, -math.pi, math.pi)
  if init == "cayley":
    phi = jax.random.uniform(key, (n_blocks,), dtype, 0.0, math.pi / 2)
    return -jnp.sqrt((1.0 - jnp.cos(phi)) / (1.0 + jnp.cos(phi)))
  raise ValueError(f"unknown expRNN initialisation {init!r}; choose one of {INITS}")


def exprnn(init: str = "henaff") -> Cell:
  """expRNN with modReLU units; `init` is "henaff" or "cayley" (module docstring)."""
  if init not in INITS:
    raise ValueError(f"unknown expRNN initialisation {init!r}; choose one of {INITS}")

  def init_params(key, n_in, n_hidden):
    k_a, k_in, k_b = jax.random.split(key, 3)
    dtype = float_dtype()
    s = block_angles(k_a, n_hidden, init, dtype)
    rows = jnp.arange(0, 2 * (n_hidden // 2), 2)
    a = jnp.zeros((n_hidden, n_hidden), dtype).at[rows, rows + 1].set(s)
    return dict(
      a=a,
      w_in=math.sqrt(2.0 / n_in) * jax.random.normal(k_in, (n_in, n_hidden), dtype),
      b=jax.random.uniform(k_b, (n_hidden,), dtype, -0.01, 0.01),
    )

  def prepare(params):
    return dict(params, w_hh=expm(skew(params["a"])))

  def initial_carry(prepared, batch_size, dtype):
    return jnp.zeros((batch_size, prepared["a"].shape[0]), dtype)

  def drive(prepared, inputs_TxBxI):
    return inputs_TxBxI @ prepared["w_in"]

  def step(prepared, h, d):
    return modrelu(h @ prepared["w_hh"] + d, prepared["b"])

  return Cell(
    name="exprnn",
    init=init_params,
    initial_carry=initial_carry,
    step=step,
    features=lambda prepared, h: h,
    n_features=lambda n_hidden: n_hidden,
    prepare=prepare,
    drive=drive,
    recurrent_matrix=lambda prepared: prepared["w_hh"],
    decay_path=None,
  )
