"""Any Flax linen recurrent cell (`flax.linen.RNNCellBase`) as a `Cell`, and the two
gated cells built on it: `lstm` (`nn.LSTMCell`) and `gru` (`nn.GRUCell`).

The adapter keeps Flax's own module as the definition of the transition: `init` is
`module.init` on a dummy carry and input, `step` is `module.apply` on the module's
variables, and the carry is the module's carry (`(c, h)` for the LSTM, `h` for the GRU).
The features the readout reads are the module's output, which for both cells is the
hidden state `h` (the part of the carry `output_of` picks). The input weights live inside
the module, so `drive` is the identity and the input enters at every step, as it does in
`nn.RNN`.

Flax's initialisers are kept (docs/reference.md §6): input kernels LeCun normal, every
recurrent kernel a random orthogonal `H × H` matrix (one per gate), biases zero; for the
LSTM the forget-gate bias is then set to 1 (Jozefowicz, Zaremba & Sutskever 2015). The
non-finite guard's fallback decays the recurrent kernels, as it decays `W_hh` of the
plain RNN.

References:
  Hochreiter & Schmidhuber (1997); Gers, Schmidhuber & Cummins (2000), the forget gate;
  Cho et al. (2014), the GRU; Jozefowicz, Zaremba & Sutskever (2015), ICML, the forget
  bias of 1; flax.linen.recurrent (LSTMCell, GRUCell).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from rnn_dynamics.cells.base import Cell
from rnn_dynamics.tasks.base import float_dtype

__all__ = ["FORGET_GATE", "flax_cell", "gru", "lstm", "set_forget_bias"]

# Where flax's LSTMCell keeps the forget gate's bias: the recurrent `Dense` named "hf"
# (its input `Dense` "if" has no bias; flax sums the two, so one bias per gate).
FORGET_GATE = "hf"


def flax_cell(
  name: str,
  make: Callable[..., nn.RNNCellBase],
  *,
  hidden_size: Callable[[Any], int],
  output_of: Callable[[Any], jax.Array],
  recurrent_kernels: tuple[str, ...],
  after_init: Callable[[Any], Any] | None = None,
  readout_std: float | None = None,
) -> Cell:
  """A `Cell` running a Flax recurrent cell.

  Args:
    name: registry name.
    make: `make(features, param_dtype) -> module`, the Flax cell with `features` hidden
      units; it is rebuilt at trace time so parameters follow `float_dtype()`.
    hidden_size: `hidden_size(variables) -> H`, read from the module's variables (Flax's
      `initialize_carry` needs it; `apply` reads it from the carry).
    output_of: `output_of(carry) -> [B, H]`, the module's output as a function of its new
      carry (the features the readout reads).
    recurrent_kernels: the names of the submodules whose `kernel` multiplies the hidden
      state: the recurrent weights the non-finite guard decays (`Cell.decay_path`).
    after_init: `after_init(variables) -> variables`, applied once after `module.init`
      (e.g. the LSTM's forget-gate bias).
    readout_std: the readout's (`Cell.readout_std`).
  """

  def module(features: int) -> nn.RNNCellBase:
    return make(features, float_dtype())

  def init(key, n_in, n_hidden):
    m = module(n_hidden)
    k_carry, k_params = jax.random.split(key)
    carry = m.initialize_carry(k_carry, (1, n_in))
    variables = m.init(k_params, carry, jnp.zeros((1, n_in), float_dtype()))
    variables = flax.core.unfreeze(variables)
    return after_init(variables) if after_init is not None else variables

  def initial_carry(variables, batch_size, dtype):
    # Flax's carry_init is zeros by default, so the key is not used by these cells.
    carry = module(hidden_size(variables)).initialize_carry(jax.random.PRNGKey(0), (batch_size, 1))
    return jax.tree.map(lambda a: a.astype(dtype), carry)

  def step(variables, carry, u):
    new_carry, _ = module(hidden_size(variables)).apply(variables, carry, u)
    return new_carry

  return Cell(
    name=name,
    init=init,
    initial_carry=initial_carry,
    step=step,
    features=lambda variables, carry: output_of(carry),
    n_features=lambda n_hidden: n_hidden,
    readout_std=readout_std,
    decay_path=_kernels_of(recurrent_kernels),
  )


def _key_name(entry: Any) -> Any:
  return getattr(entry, "key", getattr(entry, "name", entry))


def _kernels_of(modules: tuple[str, ...]) -> Callable[[tuple], bool]:
  """A key-path predicate: the `kernel` leaf of one of `modules`."""

  def predicate(path: tuple) -> bool:
    names = [_key_name(k) for k in path]
    return len(names) >= 2 and names[-1] == "kernel" and names[-2] in modules

  return predicate


def set_forget_bias(variables: Any, value: float = 1.0) -> Any:
  """The LSTM's variables with its forget-gate bias set to `value` everywhere."""
  params = dict(variables["params"])
  gate = dict(params[FORGET_GATE])
  gate["bias"] = jnp.full_like(gate["bias"], value)
  params[FORGET_GATE] = gate
  return {**variables, "params": params}


def lstm(forget_bias: float = 1.0) -> Cell:
  """Flax's `nn.LSTMCell` (carry `(c, h)`, features `h`), forget-gate bias `forget_bias`
  (1, Jozefowicz et al. 2015); every other initialiser is Flax's default."""
  return flax_cell(
    "lstm",
    lambda features, dtype: nn.LSTMCell(features, param_dtype=dtype),
    hidden_size=lambda v: v["params"][FORGET_GATE]["bias"].shape[-1],
    output_of=lambda carry: carry[1],
    recurrent_kernels=("hi", "hf", "hg", "ho"),
    after_init=lambda v: set_forget_bias(v, forget_bias),
  )


def gru() -> Cell:
  """Flax's `nn.GRUCell` (carry and features `h`), Flax's default initialisers."""
  return flax_cell(
    "gru",
    lambda features, dtype: nn.GRUCell(features, param_dtype=dtype),
    hidden_size=lambda v: v["params"]["hn"]["bias"].shape[-1],
    output_of=lambda carry: carry,
    recurrent_kernels=("hr", "hz", "hn"),
  )
