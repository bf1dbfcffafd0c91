"""The one algorithm table: SGD, SGD-C, SGD-CR and element-wise clipping.

Every algorithm is a setting of the same compiled program, not a fork (docs/reference.md
§2, §4): its clipping kind, whether the threshold is used and whether Ω's gradient is
added. The table below is the only place that says so; `hparams` (synthetic tasks) and
`rnn_dynamics.natural.columns` (natural tasks) read it, and `make_optimizer` builds the
optax chain both trainers run.

| algorithm | clipping | threshold | Ω (α) |
|---|---|---|---|
| `sgd` | none | ∞ | 0 |
| `sgd_c` | global norm | c | 0 |
| `sgd_cr` | global norm | c | α |
| `sgd_elementwise` | element-wise | c | 0 |

Which clipping a run gets: with `HParams.elementwise` None (the default) every run of a
program clips as `config.clipping` says ('norm' or 'elementwise'), and the table's kind
only decides whether the threshold is finite; with `elementwise_clip` given to `hparams`,
the kind is chosen per run from the table (element-wise for `sgd_elementwise`, the norm
otherwise), so all four share one vmapped program.
"""

from __future__ import annotations

import dataclasses
import math

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from rnn_dynamics import clipping, rnn

__all__ = [
  "ALGORITHMS",
  "Algorithm",
  "GUARD_MODES",
  "HParams",
  "TABLE",
  "alpha_of",
  "get",
  "guard_enabled",
  "hparams",
  "make_optimizer",
  "threshold_of",
]

# Which runs the original code's non-finite guard protects (`config.nonfinite_guard`).
GUARD_MODES = ("original", "always", "never")


@dataclasses.dataclass(frozen=True)
class Algorithm:
  """One row of the table.

  Attributes:
    name: the config name.
    clipping: "none", "norm" (the global norm to the threshold) or "elementwise" (each
      entry to `[-c, c]`).
    uses_omega: whether Ω's gradient is added (α as given; else α = 0).
  """

  name: str
  clipping: str
  uses_omega: bool

  @property
  def uses_threshold(self) -> bool:
    return self.clipping != "none"


TABLE = {
  a.name: a
  for a in (
    Algorithm("sgd", "none", uses_omega=False),
    Algorithm("sgd_c", "norm", uses_omega=False),
    Algorithm("sgd_cr", "norm", uses_omega=True),
    Algorithm("sgd_elementwise", "elementwise", uses_omega=False),
  )
}
ALGORITHMS = tuple(TABLE)


def get(name: str, allowed: tuple[str, ...] = ALGORITHMS) -> Algorithm:
  """The table's row for `name` (ValueError for a name not in `allowed`)."""
  if name not in allowed:
    raise ValueError(f"unknown algorithm {name!r}; choose one of {allowed}")
  return TABLE[name]


def threshold_of(name: str, clip: float) -> float:
  """The clipping threshold an algorithm runs with: `clip`, or ∞ where it does not clip."""
  return float(clip) if get(name).uses_threshold else math.inf


def alpha_of(name: str, alpha: float) -> float:
  """Ω's weight an algorithm runs with: `alpha` for SGD-CR, else 0."""
  return float(alpha) if get(name).uses_omega else 0.0


@flax.struct.dataclass
class HParams:
  """Per-run hyper-parameters, all arrays so they can be vmapped and swept.

  Attributes:
    lr: learning rate.
    clip: clipping threshold (∞ disables clipping).
    alpha: Ω weight (0 disables Ω's gradient; Ω is still measured).
    init: initialisation id (`rnn.init_id`), which also fixes the unit type.
    elementwise: None (the default): every run clips as `config.clipping` says. A
      boolean array: the kind is chosen per run (True: each entry to `[-clip, clip]`,
      False: the global norm to `clip`), so norm- and element-wise-clipped runs share
      one vmapped program (`hparams(..., elementwise_clip=c)`).
  """

  lr: jax.Array
  clip: jax.Array
  alpha: jax.Array
  init: jax.Array
  elementwise: jax.Array | None = None


def hparams(
  algorithm: str,
  *,
  lr: float,
  clip: float,
  alpha: float,
  init: str,
  elementwise_clip: float | None = None,
) -> HParams:
  """The hyper-parameters that make an algorithm out of the shared program.

  Args:
    algorithm: one of `ALGORITHMS`.
    lr: learning rate.
    clip: norm-clipping threshold (SGD-C, SGD-CR; and `sgd_elementwise`'s bound when
      `elementwise_clip` is None and `config.clipping == 'elementwise'`).
    alpha: Ω weight (SGD-CR only).
    init: initialisation name.
    elementwise_clip: None (default): the clipping kind is the program's
      (`config.clipping`). A number: the kind is chosen per run, so every algorithm can
      share one program: `sgd_elementwise` clips each entry to this bound, the others
      clip the norm as above (see `HParams.elementwise`).
  """
  spec = get(algorithm)
  per_entry = spec.clipping == "elementwise" and elementwise_clip is not None
  return HParams(
    lr=jnp.float32(lr),
    clip=jnp.float32(elementwise_clip if per_entry else threshold_of(algorithm, clip)),
    alpha=jnp.float32(alpha_of(algorithm, alpha)),
    init=jnp.int32(rnn.init_id(init)),
    elementwise=None if elementwise_clip is None else jnp.bool_(per_entry),
  )


def _clips_elementwise(config: ml_collections.ConfigDict, hp: HParams):
  """Whether a run clips element-wise: per run when `hp.elementwise` is set, else the
  program's `config.clipping`."""
  if hp.elementwise is not None:
    return hp.elementwise
  if config.clipping not in ("norm", "elementwise"):
    raise ValueError(f"config.clipping must be 'norm' or 'elementwise', got {config.clipping!r}")
  return config.clipping == "elementwise"


def guard_enabled(config: ml_collections.ConfigDict, hp: HParams) -> jax.Array:
  """Whether the non-finite guard protects a run (a boolean, traced with `hp`).

  `config.nonfinite_guard` "original" (default): only norm-clipped runs (finite
  threshold, not element-wise), as in the original code, where the guard sits inside the
  rescaling branch (docs/reference.md §2); plain SGD and Ω without clipping explode on
  their own. The original code has no element-wise clipping, so nothing justifies a guard
  there. "always": every run, the robust variant. "never": no run.
  """
  mode = config.get("nonfinite_guard", "original")
  if mode == "always":
    return jnp.bool_(True)
  if mode == "never":
    return jnp.bool_(False)
  if mode != "original":
    raise ValueError(f"config.nonfinite_guard must be one of {GUARD_MODES}, got {mode!r}")
  elementwise = hp.elementwise if hp.elementwise is not None else config.clipping == "elementwise"
  return jnp.isfinite(hp.clip) & ~jnp.asarray(elementwise, jnp.bool_)


def make_optimizer(config: ml_collections.ConfigDict, hp: HParams) -> optax.GradientTransformation:
  """Clipping inside the non-finite guard → SGD, with the run's (possibly traced) settings."""
  elementwise = _clips_elementwise(config, hp)
  if hp.elementwise is not None:
    clip = clipping.clip_norm_or_elementwise(hp.clip, elementwise)
  elif elementwise:
    clip = clipping.clip_elementwise(hp.clip)
  else:
    clip = clipping.clip_by_global_norm_with_stats(hp.clip)
  # The guard decides on the pre-clip norm and its fallback step is not clipped.
  guarded = clipping.nonfinite_fallback(clip, enabled=guard_enabled(config, hp))
  return optax.chain(guarded, optax.sgd(hp.lr, momentum=config.get("momentum") or None))
