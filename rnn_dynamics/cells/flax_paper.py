"""The paper's recurrent cell as a Flax module, for use inside other Flax models.

`PaperRNNCell` follows Flax's `RNNCellBase` protocol, so `flax.linen.RNN(PaperRNNCell(50))`
scans it over a sequence. It computes the recurrence of `rnn.unroll` (carry and output
`h_t = σ(x_t)`), with parameters drawn by the same initialisations (`rnn.INITS`). `to_params` turns the
module's variables into `rnn.Params`, so a Flax-trained cell can be handed to the analysis
tools (fixed points, lag curves) or to `regularizers.omega`.

References:
  Pascanu, Mikolov & Bengio (2013), ICML, eq. (11) and docs/reference.md §1.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rnn_dynamics import rnn

__all__ = ["PaperRNNCell", "to_params"]


class PaperRNNCell(nn.RNNCellBase):
  """`h_t = σ(h_{t-1} @ w_hh + u_t @ w_in + b)`, carry and output `h_t` (`h_{-1} = 0`).

  In the paper's terms `h_t = σ(x_t)`: the same recurrence as `rnn.unroll`.

  Attributes:
    features: hidden units.
    init: one of `rnn.INITS` (`sigmoid`, `basic_tanh`, `smart_tanh`); it also fixes the
      unit type (sigmoid or tanh).
  """

  features: int
  init: str = "smart_tanh"

  @nn.compact
  def __call__(self, carry: jax.Array, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
    n_in = inputs.shape[-1]

    def draw(key):
      # One draw of `rnn.init_params`, so a cell and a trainer run given the same key start
      # from the same recurrent weights (the enclosing model owns the readout).
      p = rnn.init_params(key, n_in, self.features, 1, self.init)
      return dict(w_in=p.w_in, w_hh=p.w_hh, b=p.b)

    p = self.param("rnn", draw)
    # Explicit broadcast of the bias over the batch axes (rank promotion may be disabled).
    b = jnp.reshape(p["b"], (1,) * (carry.ndim - 1) + p["b"].shape)
    h = rnn.activation(rnn.unit_for_init(self.init), carry @ p["w_hh"] + inputs @ p["w_in"] + b)
    return h, h

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> jax.Array:
    del rng
    return jnp.zeros((*input_shape[:-1], self.features))

  @property
  def num_feature_axes(self) -> int:
    return 1


def to_params(cell_params: dict[str, Any], w_out: jax.Array, b_out: jax.Array) -> rnn.Params:
  """`rnn.Params` from a cell's parameter subtree and a readout (`[H, O]`, `[O]`).

  For `nn.RNN(PaperRNNCell(...))` the subtree is `variables["params"]["cell"]`.
  """
  p = cell_params["rnn"]
  return rnn.Params(w_in=p["w_in"], w_hh=p["w_hh"], b=p["b"], w_out=w_out, b_out=b_out)
