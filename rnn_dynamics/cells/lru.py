"""The Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks
for Long Sequences") as a `Cell`: a diagonal complex linear recurrence with exponentially
parametrised eigenvalues, ring initialisation and input normalisation, followed by the
paper's position-wise non-linear block.

Recurrence (N = n_hidden complex units), row-vector form:

  `x_t = λ ⊙ x_{t-1} + γ ⊙ (u_t B)`,   `λ = exp(−exp(ν) + i exp(θ))`,

with `B = B_re + i B_im` (`[I, N]`) and `γ = exp(γ_log)`. `|λ| = exp(−exp(ν)) < 1` for
every real `ν`, so the recurrence is stable whatever the optimiser does to `ν`.

The carry is real: `(re, im)`, two `[B, N]` arrays, so autodiff, norms and Ω need no
complex conventions; the step is the complex product written out,
`re' = Re λ · re − Im λ · im + d_re`, `im' = Re λ · im + Im λ · re + d_im`. `drive` computes
`γ ⊙ (u B)` for every step at once, outside the scan (one matmul each for `B_re`, `B_im`),
as `[T, B, 2N]` (real parts, then imaginary parts).

Features (what the project's linear readout reads): the paper's block after the
recurrence, without its normalisation, dropout and skip connection (module notes below):

  `y_t = Re(x_t C)` (`C = C_re + i C_im`, `[N, H]`, H = n_hidden),
  `z_t = GELU(y_t)`,   features `= (z_t W_1 + b_1) ⊙ sigmoid(z_t W_2 + b_2)` (a GLU).

The LRU itself is linear in its inputs, so a linear readout of `y_t` could only solve
linear tasks; the GELU + GLU is the paper's position-wise non-linearity between layers.

Departures from the paper's layer, and why:
  * no `D ⊙ u_t` feed-through in `y_t`: a `Cell`'s features read only the carry, not the
    current input (and `x_t` already holds `γ ⊙ (u_t B)`, so the current input still
    reaches the readout);
  * no input normalisation and no skip connection: the paper's block maps a model-width
    sequence to itself inside a stack with a linear encoder; here one block reads the raw
    task inputs (width I ≠ H) and feeds the readout directly;
  * no dropout (the trainer has none).

Initialisation (the paper's appendix code, docs/reference.md §6):
  * ring: `|λ|²` uniform on `[r_min², r_max²]` and the phase uniform on `[0, max_phase]`,
    i.e. `ν = log(−½ log(u₁ (r_max² − r_min²) + r_min²))`, `θ = log(max_phase u₂)`; the
    defaults are the appendix code's `r_min = 0`, `r_max = 1`, `max_phase = 6.28`;
  * `γ_log = log √(1 − |λ|²)`, then trained with everything else (the paper's code keeps
    it a parameter);
  * `B_re`, `B_im` ~ N(0, 1/(2I)), `C_re`, `C_im` ~ N(0, 1/N) (the paper's Glorot-style
    scaling, B halved in variance because only the real part of `x C` is read);
  * GLU weights LeCun normal, biases 0 (flax `nn.Dense`'s defaults, as in the paper's
    JAX code); the project's readout LeCun normal, bias 0.

`recurrent_matrix` is the real `2N × 2N` matrix of the step on `[re, im]` (row-vector
convention), `[[diag Re λ, diag Im λ], [−diag Im λ, diag Re λ]]`: its eigenvalues are `λ`
and `conj λ`, so the trace's ρ is `max |λ|`. The non-finite guard's fallback has no
recurrent weight matrix to decay (`|λ| < 1` by construction), so it skips the update
(`Cell.decay_path` None).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnn_dynamics.cells.base import Cell
from rnn_dynamics.tasks.base import float_dtype

__all__ = ["eigenvalues", "lru"]


def eigenvalues(params) -> tuple[jax.Array, jax.Array, jax.Array]:
  """`(Re λ, Im λ, |λ|)` from `ν_log`, `θ_log`."""
  modulus = jnp.exp(-jnp.exp(params["nu_log"]))
  phase = jnp.exp(params["theta_log"])
  return modulus * jnp.cos(phase), modulus * jnp.sin(phase), modulus


def _uniform_open(key, shape, dtype):
  # U(0, 1) without 0, where the logs of the ring initialisation would be infinite.
  return jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny)


def lru(r_min: float = 0.0, r_max: float = 1.0, max_phase: float = 6.28) -> Cell:
  """The LRU with the paper's block as features (module docstring); `r_min`, `r_max`,
  `max_phase` the ring initialisation's."""

  def init(key, n_in, n_hidden):
    dtype = float_dtype()
    ks = jax.random.split(key, 8)
    u1 = _uniform_open(ks[0], (n_hidden,), dtype)
    u2 = _uniform_open(ks[1], (n_hidden,), dtype)
    nu_log = jnp.log(-0.5 * jnp.log(u1 * (r_max**2 - r_min**2) + r_min**2))
    theta_log = jnp.log(max_phase * u2)
    modulus = jnp.exp(-jnp.exp(nu_log))
    gamma_log = jnp.log(jnp.sqrt(1.0 - modulus**2))
    normal = lambda k, shape, var: jnp.sqrt(var) * jax.random.normal(k, shape, dtype)  # noqa: E731
    lecun = jax.nn.initializers.lecun_normal()
    return dict(
      nu_log=nu_log,
      theta_log=theta_log,
      gamma_log=gamma_log,
      b_re=normal(ks[2], (n_in, n_hidden), 1.0 / (2 * n_in)),
      b_im=normal(ks[3], (n_in, n_hidden), 1.0 / (2 * n_in)),
      c_re=normal(ks[4], (n_hidden, n_hidden), 1.0 / n_hidden),
      c_im=normal(ks[5], (n_hidden, n_hidden), 1.0 / n_hidden),
      w_1=lecun(ks[6], (n_hidden, n_hidden), dtype),
      b_1=jnp.zeros((n_hidden,), dtype),
      w_2=lecun(ks[7], (n_hidden, n_hidden), dtype),
      b_2=jnp.zeros((n_hidden,), dtype),
    )

  def prepare(params):
    lam_re, lam_im, _ = eigenvalues(params)
    return dict(params, lam_re=lam_re, lam_im=lam_im)

  def initial_carry(prepared, batch_size, dtype):
    zeros = jnp.zeros((batch_size, prepared["nu_log"].shape[0]), dtype)
    return (zeros, zeros)

  def drive(prepared, inputs_TxBxI):
    gamma = jnp.exp(prepared["gamma_log"])[None, None, :]
    return jnp.concatenate(
      [gamma * (inputs_TxBxI @ prepared["b_re"]), gamma * (inputs_TxBxI @ prepared["b_im"])],
      axis=-1,
    )

  def step(prepared, carry, d):
    re, im = carry
    n = re.shape[-1]
    a, b = prepared["lam_re"][None, :], prepared["lam_im"][None, :]
    return (a * re - b * im + d[:, :n], a * im + b * re + d[:, n:])

  def features(prepared, carry):
    re, im = carry
    y = re @ prepared["c_re"] - im @ prepared["c_im"]
    z = jax.nn.gelu(y)
    value = z @ prepared["w_1"] + prepared["b_1"][None, :]
    gate = jax.nn.sigmoid(z @ prepared["w_2"] + prepared["b_2"][None, :])
    return value * gate

  def recurrent_matrix(prepared):
    a, b = jnp.diag(prepared["lam_re"]), jnp.diag(prepared["lam_im"])
    return jnp.block([[a, b], [-b, a]])

  return Cell(
    name="lru",
    init=init,
    initial_carry=initial_carry,
    step=step,
    features=features,
    n_features=lambda n_hidden: n_hidden,
    prepare=prepare,
    drive=drive,
    recurrent_matrix=recurrent_matrix,
    decay_path=None,
  )
