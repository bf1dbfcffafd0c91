"""The paper's RNN as a `Model`: its hand-written BPTT and Ω (the fast path).

`rnn.loss_and_grads` returns the gradient and the adjoints from one forward and one
backward scan, and `regularizers.add_omega_grad` folds Ω's gradient into the `w_hh`
product; per-run `hp.init` chooses the initialisation and the unit (tanh or sigmoid), so
every initialisation shares one program. Its Lyapunov exponents use the hand-written
Jacobian (`lyapunov.rnn_tangent`). This is what every experiment of the paper runs;
`rnn_dynamics.cells.vanilla` writes the same network as a `Cell` for the autodiff path
(its tests tie the two together).
"""

from __future__ import annotations

import jax

from rnn_dynamics import rnn
from rnn_dynamics.analysis import lyapunov
from rnn_dynamics.cells.base import Model, OmegaSettings, Update
from rnn_dynamics.regularizers import add_omega_grad
from rnn_dynamics.tasks.base import Batch, Head

__all__ = ["model"]


def _init(key: jax.Array, n_in: int, n_hidden: int, n_out: int, hp) -> rnn.Params:
  return rnn.init_params(key, n_in, n_hidden, n_out, hp.init)


def _loss_and_grads(
  params: rnn.Params, hp, batch: Batch, head: Head, omega: OmegaSettings, scan_unroll: int = 1
) -> Update:
  unit = rnn.unit_for_init(hp.init)
  loss, grads, fwd = rnn.loss_and_grads(params, unit, batch, head, scan_unroll=scan_unroll)
  grads, om = add_omega_grad(
    grads, fwd, batch.mask, omega.alpha, enabled=omega.enabled, form=omega.form, bound=omega.bound
  )
  return Update(loss, grads, om, fwd.error)


def _sequence_mistakes(params: rnn.Params, hp, batch: Batch, head: Head) -> jax.Array:
  return rnn.sequence_mistakes(params, rnn.unit_for_init(hp.init), batch, head)


def _exponents(params: rnn.Params, hp, inputs_TxBxI, mask_TxB, k: int, warmup: int):
  # The hand-written tangent map (`lyapunov.rnn_tangent`): one [H, H]·[H, k] product a step.
  unit = rnn.unit_for_init(hp.init)
  spectrum = lyapunov.rnn_spectrum(params, unit, inputs_TxBxI, k, warmup=warmup, mask_TxB=mask_TxB)
  return spectrum.exponents_K


def model() -> Model:
  """The paper's RNN (`rnn_dynamics.rnn`), trained by its hand-written BPTT."""
  return Model(
    "rnn",
    _init,
    _loss_and_grads,
    _sequence_mistakes,
    lambda params: params.w_hh,
    exponents=_exponents,
  )
