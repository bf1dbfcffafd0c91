"""The error surface with a cliff (Figure 6) and gradient descent on it.

One sigmoid unit, no input, `x_t = w σ(x_{t-1}) + b`, `x_0 = 0.5`, cost
`E_50 = (σ(x_50) − 0.7)²`, as a function of `θ = (w, b)`. The cost has a near-vertical
wall where the basin boundary of the map (`basin_boundary` in `bifurcation`) passes
through `x_0`: there `x_50` jumps from one attractor to the other. Plain gradient
descent that reaches the wall takes a huge step and is thrown far away; norm clipping
(Algorithm 1) bounds the step, so the trajectory stays by the wall and slides along it.

The recurrence is the model's own `rnn.step` on a one-unit `rnn.Params`.

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, §2.3, Figure 6 and §3.2 (Algorithm 1).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnn_dynamics import rnn
from rnn_dynamics.analysis.bifurcation import iterate

try:  # The project's clipping, which records the pre-clip norm; optax's otherwise.
  from rnn_dynamics.clipping import clip_by_global_norm_with_stats as _clip
except ImportError:  # pragma: no cover - only before rnn_dynamics.clipping exists
  _clip = optax.clip_by_global_norm

__all__ = [
  "CliffSetup",
  "Trajectory",
  "cliff_loss",
  "descend",
  "loss_surface",
  "wall_bias",
]


class CliffSetup(NamedTuple):
  """The one-unit problem of Figure 6.

  Attributes:
    x0: initial state.
    target: target value of `σ(x_T)`.
    n_steps: `T`, the number of recurrent steps.
    unit: the non-linearity (the sigmoid in the paper).
  """

  x0: float = 0.5
  target: float = 0.7
  n_steps: int = 50
  unit: rnn.Unit = rnn.SIGMOID


class Trajectory(NamedTuple):
  """Gradient-descent paths from several starts.

  Attributes:
    theta_NxSx2: `(w, b)` before each of the `S − 1` updates and after the last.
    loss_NxS: `E_T` at each point.
    grad_NxSx2: `∂E_T/∂θ` at each point (the last is not used for an update).
    grad_norm_NxS: its norm.
    step_NxSx2: the update actually applied at each point (zero after the last).
  """

  theta_NxSx2: jax.Array
  loss_NxS: jax.Array
  grad_NxSx2: jax.Array
  grad_norm_NxS: jax.Array
  step_NxSx2: jax.Array


def cliff_loss(theta_2: jax.Array, setup: CliffSetup = CliffSetup()) -> jax.Array:
  """`E_T(w, b) = (σ(x_T) − target)²` with `x_t = w σ(x_{t-1}) + b`, `θ = (w, b)`."""
  x_t = iterate(theta_2[0], theta_2[1], setup.unit, jnp.asarray(setup.x0, theta_2.dtype),
                setup.n_steps)
  return (rnn.activation(setup.unit, x_t) - setup.target) ** 2


@functools.partial(jax.jit, static_argnames="setup")
def _surface(ws_W, bs_B, setup):
  theta_BxWx2 = jnp.stack(jnp.broadcast_arrays(ws_W[None, :], bs_B[:, None]), axis=-1)
  value_and_grad = jax.vmap(jax.vmap(jax.value_and_grad(lambda t: cliff_loss(t, setup))))
  loss_BxW, grad_BxWx2 = value_and_grad(theta_BxWx2)
  return loss_BxW, jnp.linalg.norm(grad_BxWx2, axis=-1)


def loss_surface(ws_W, bs_B, setup: CliffSetup = CliffSetup()) -> tuple[np.ndarray, np.ndarray]:
  """`E_T` and `‖∇E_T‖` on the grid `bs_B × ws_W` (rows are `b`, columns `w`), vmapped.

  References:
    Pascanu et al. (2013), §2.3, Figure 6.
  """
  loss, gnorm = _surface(jnp.asarray(ws_W, jnp.float32), jnp.asarray(bs_B, jnp.float32), setup)
  return np.asarray(loss), np.asarray(gnorm)


def wall_bias(ws, setup: CliffSetup = CliffSetup()) -> np.ndarray:
  """The bias `b(w)` at which the basin boundary passes through `x_0`: the wall.

  `x_0` is the repelling fixed point when `x_0 = w σ(x_0) + b` and `w σ'(x_0) > 1`;
  NaN for the `w` where no such boundary exists.
  """
  ws = np.asarray(ws, np.float64)
  s, ds = (np.asarray(v, np.float64) for v in rnn.activation_and_derivative(
    setup.unit, jnp.asarray(setup.x0, jnp.float32)))
  return np.where(ws * ds > 1.0, setup.x0 - ws * s, np.nan)


@functools.partial(jax.jit, static_argnames=("n_steps", "setup"))
def _descend(starts_Nx2, learning_rate, clip_threshold, n_steps, setup):
  loss_and_grad = jax.value_and_grad(lambda t: cliff_loss(t, setup))
  clipping = clip_threshold is not None
  tx = optax.chain(_clip(clip_threshold), optax.sgd(learning_rate)) if clipping else optax.sgd(
    learning_rate)

  def run(theta):
    def body(carry, _):
      theta, state = carry
      loss, grad = loss_and_grad(theta)
      step, state = tx.update(grad, state, theta)
      return (theta + step, state), (theta, loss, grad, step)

    (last, _), (thetas, losses, grads, steps) = jax.lax.scan(
      body, (theta, tx.init(theta)), None, length=n_steps)
    last_loss, last_grad = loss_and_grad(last)
    cat = lambda a, b: jnp.concatenate([a, b[None]], axis=0)
    return (cat(thetas, last), cat(losses, last_loss), cat(grads, last_grad),
            cat(steps, jnp.zeros_like(last)))

  thetas, losses, grads, steps = jax.vmap(run)(starts_Nx2)
  return Trajectory(thetas, losses, grads, jnp.linalg.norm(grads, axis=-1), steps)


def descend(
  starts_Nx2: jax.typing.ArrayLike,
  learning_rate: float,
  n_steps: int,
  clip_threshold: float | None = None,
  setup: CliffSetup = CliffSetup(),
) -> Trajectory:
  """Plain or norm-clipped gradient descent on `E_T` from each start, vmapped.

  Args:
    starts_Nx2: initial `(w, b)` per trajectory.
    learning_rate: SGD step size.
    n_steps: number of updates.
    clip_threshold: `None` for plain gradient descent; otherwise Algorithm 1 (rescale
      the gradient to this norm when its norm is at least the threshold).
    setup: the one-unit problem.

  Returns:
    A `Trajectory` with `S = n_steps + 1` points per start.

  References:
    Pascanu et al. (2013), Figure 6 (solid: plain, dashed: clipped) and Algorithm 1.
  """
  starts = jnp.asarray(starts_Nx2, jnp.float32)
  threshold = None if clip_threshold is None else jnp.asarray(clip_threshold, jnp.float32)
  return _descend(starts, jnp.asarray(learning_rate, jnp.float32), threshold, n_steps, setup)
