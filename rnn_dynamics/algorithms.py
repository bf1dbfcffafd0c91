"""The one algorithm table: SGD, SGD-C, SGD-CR, element-wise clipping, flossing and Adam.

Every algorithm is a setting of the same compiled program, not a fork (docs/reference.md
§2, §4): its clipping kind, whether the threshold is used, whether the original code's
non-finite guard protects it and which regularizer's gradient is added. The table below is the
only place that says so; `hparams` (synthetic tasks) and `rnn_dynamics.natural.columns`
(natural tasks) read it into plain per-run values (`HParams`), and `make_optimizer`
builds the one optax chain both trainers run from those values.

| algorithm | clipping | threshold | guard ("original") | Ω (α) | flossing | optimizer |
|---|---|---|---|---|---|---|
| `sgd` | none | ∞ | off | 0 | 0 | SGD |
| `sgd_c` | global norm | c | on | 0 | 0 | SGD |
| `sgd_cr` | global norm | c | on | α | 0 | SGD |
| `sgd_cf` | global norm | c | on | 0 | weight | SGD |
| `sgd_elementwise` | element-wise | c (or its own bound) | off | 0 | 0 | SGD |
| `adam` | none | ∞ | off | 0 | 0 | Adam |
| `adam_c` | global norm | c | on | 0 | 0 | Adam |

`sgd_cf` is SGD-C with gradient flossing (`rnn_dynamics.flossing`; Engelken 2023,
docs/reference.md §6) in Ω's place: the squared top-k Lyapunov exponents, times the
run's weight, added to the loss on the flossing updates. It is a row of its own rather
than flossing on top of SGD-CR because the question it answers is flossing *against* Ω:
both ask the backward Jacobian products to neither grow nor shrink, Ω through the
one-step ratios along the error signal, flossing through the growth rates along the
forward trajectory, and a row with both would credit neither. The program takes both at
once (α and the flossing weight are independent per-run values), so such a row is one
line here.

Adam (Kingma & Ba 2015; docs/reference.md §6, "Later methods: Adam") takes the clipped
gradient, as clipping composes with any optimizer in optax: `adam_c` is the clipped Adam
later work compares against. Its moment estimates are optimizer state of another shape than SGD's, so the
optimizer is static: one program runs runs of one optimizer (`HParams.optimizer`), while
the clipping kind, threshold, guard and α stay per-run values.

A run's clipping is decided once, per run, by `clipping_of`: the table's kind, except
that a threshold of ∞ means no clipping at all (SGD-CR at ∞ is Ω alone, the ICML
footnote's case: docs/reference.md §4), so such a run is unguarded like SGD. Runs of
every kind share one vmapped program: each carries its kind (`HParams.elementwise`) and
guard (`HParams.guarded`) as per-run booleans. `config.nonfinite_guard` "always" and
"never" override the table's guard for every run.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from rnn_dynamics import clipping, rnn

__all__ = [
  "ALGORITHMS",
  "Algorithm",
  "FLOSSING_ALGORITHMS",
  "GUARD_MODES",
  "HParams",
  "OPTIMIZERS",
  "PAPER_ALGORITHMS",
  "RunClipping",
  "TABLE",
  "alpha_of",
  "clipping_of",
  "floss_of",
  "get",
  "guard_enabled",
  "hparams",
  "make_optimizer",
  "one_optimizer",
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
    guarded: whether the non-finite guard protects its runs under
      `config.nonfinite_guard` "original": norm-clipped runs only, as in the authors'
      code, whose guard sits inside the rescaling branch (docs/reference.md §2); the
      original code has no element-wise clipping, so nothing justifies a guard there.
    uses_omega: whether Ω's gradient is added (α as given; else α = 0).
    optimizer: "sgd" (with `config.momentum`) or "adam".
    uses_flossing: whether gradient flossing's is added (its weight as given; else 0).
  """

  name: str
  clipping: str
  guarded: bool
  uses_omega: bool
  optimizer: str = "sgd"
  uses_flossing: bool = False

  @property
  def uses_threshold(self) -> bool:
    return self.clipping != "none"


TABLE = {
  a.name: a
  for a in (
    Algorithm("sgd", "none", guarded=False, uses_omega=False),
    Algorithm("sgd_c", "norm", guarded=True, uses_omega=False),
    Algorithm("sgd_cr", "norm", guarded=True, uses_omega=True),
    Algorithm("sgd_cf", "norm", guarded=True, uses_omega=False, uses_flossing=True),
    Algorithm("sgd_elementwise", "elementwise", guarded=False, uses_omega=False),
    Algorithm("adam", "none", guarded=False, uses_omega=False, optimizer="adam"),
    Algorithm("adam_c", "norm", guarded=True, uses_omega=False, optimizer="adam"),
  )
}
ALGORITHMS = tuple(TABLE)
# The paper's algorithms, which every experiment of the paper may sweep.
PAPER_ALGORITHMS = ("sgd", "sgd_c", "sgd_cr", "sgd_elementwise")
# The algorithms that floss: a binary runs them only where it sets `floss_enabled` on
# their groups (`rnn_dynamics.flossing`).
FLOSSING_ALGORITHMS = tuple(a.name for a in TABLE.values() if a.uses_flossing)
OPTIMIZERS = ("sgd", "adam")


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


def floss_of(name: str, weight: float) -> float:
  """Gradient flossing's weight an algorithm runs with: `weight` where it flosses, else 0."""
  return float(weight) if get(name).uses_flossing else 0.0


class RunClipping(NamedTuple):
  """How one run clips, as plain values (`clipping_of`).

  Attributes:
    clip: the threshold (∞: nothing is clipped).
    elementwise: True: each entry to `[-clip, clip]`; False: the global norm to `clip`.
    guarded: whether the non-finite guard protects the run under "original".
  """

  clip: float
  elementwise: bool
  guarded: bool


def clipping_of(name: str, clip: float, elementwise_clip: float | None = None) -> RunClipping:
  """A run's clipping, from the table: its kind, threshold and guard.

  Args:
    name: one of `ALGORITHMS`.
    clip: the threshold of the norm-clipping algorithms (SGD-C, SGD-CR), and of
      `sgd_elementwise` where `elementwise_clip` is None.
    elementwise_clip: `sgd_elementwise`'s own bound on every entry (None: `clip`).

  A threshold of ∞ clips nothing, so such a run is unguarded whatever its row says
  (SGD-CR at ∞ is Ω without clipping, which the original code did not guard either).
  """
  spec = get(name)
  elementwise = spec.clipping == "elementwise"
  threshold = elementwise_clip if elementwise and elementwise_clip is not None else clip
  threshold = threshold_of(name, threshold)
  return RunClipping(threshold, elementwise, spec.guarded and math.isfinite(threshold))


@flax.struct.dataclass
class HParams:
  """Per-run hyper-parameters, all arrays so they can be vmapped and swept.

  Attributes:
    lr: learning rate.
    clip: clipping threshold (∞: nothing is clipped).
    alpha: Ω weight (0 disables Ω's gradient; Ω is still measured).
    init: initialisation id (`rnn.init_id`), which also fixes the unit type.
    elementwise: the clipping kind (True: each entry to `[-clip, clip]`; False: the
      global norm to `clip`), so runs of both kinds share one vmapped program.
    guarded: whether the non-finite guard protects the run under
      `config.nonfinite_guard` "original" (the table's `guarded`, `clipping_of`).
    floss: gradient flossing's weight (0: no flossing gradient; `rnn_dynamics.flossing`),
      or None where a trainer never flosses (the natural one), so that its hyper-parameters
      need not carry it.
    optimizer: the table's optimizer, static (not an array): runs stacked into one
      program must share it (`stack_hparams`).
  """

  lr: jax.Array
  clip: jax.Array
  alpha: jax.Array
  init: jax.Array
  elementwise: jax.Array
  guarded: jax.Array
  floss: jax.Array | None = None
  optimizer: str = flax.struct.field(pytree_node=False, default="sgd")


def hparams(
  algorithm: str,
  *,
  lr: float,
  clip: float,
  alpha: float,
  init: str,
  elementwise_clip: float | None = None,
  floss: float = 0.0,
) -> HParams:
  """The hyper-parameters that make an algorithm out of the shared program.

  Args:
    algorithm: one of `ALGORITHMS`.
    lr: learning rate.
    clip: clipping threshold (SGD-C, SGD-CR, SGD-CF; and `sgd_elementwise`'s bound when
      `elementwise_clip` is None).
    alpha: Ω weight (SGD-CR only).
    init: initialisation name.
    elementwise_clip: `sgd_elementwise`'s bound on every entry (None: `clip`).
    floss: gradient flossing's weight (flossing algorithms only).
  """
  run = clipping_of(algorithm, clip, elementwise_clip)
  return HParams(
    lr=jnp.float32(lr),
    clip=jnp.float32(run.clip),
    alpha=jnp.float32(alpha_of(algorithm, alpha)),
    init=jnp.int32(rnn.init_id(init)),
    elementwise=jnp.bool_(run.elementwise),
    guarded=jnp.bool_(run.guarded),
    floss=jnp.float32(floss_of(algorithm, floss)),
    optimizer=get(algorithm).optimizer,
  )


def guard_enabled(config: ml_collections.ConfigDict, hp: HParams) -> jax.Array:
  """Whether the non-finite guard protects a run (a boolean, traced with `hp`).

  `config.nonfinite_guard` "original" (default): the run's `hp.guarded`, as the table
  says (norm-clipped runs only, as in the original code; plain SGD and Ω without
  clipping explode on their own). "always": every run, the robust variant. "never": no
  run.
  """
  mode = config.get("nonfinite_guard", "original")
  if mode == "always":
    return jnp.bool_(True)
  if mode == "never":
    return jnp.bool_(False)
  if mode != "original":
    raise ValueError(f"config.nonfinite_guard must be one of {GUARD_MODES}, got {mode!r}")
  return jnp.asarray(hp.guarded, jnp.bool_)


def one_optimizer(names) -> str:
  """The optimizer shared by the algorithms `names` (ValueError if they mix two: their
  runs cannot share one program)."""
  kinds = sorted({get(n).optimizer for n in names})
  if len(kinds) > 1:
    raise ValueError(
      f"algorithms {tuple(names)} mix the optimizers {kinds}: runs of one program share "
      "one optimizer; put them in separate groups"
    )
  return kinds[0] if kinds else "sgd"


def make_optimizer(
  config: ml_collections.ConfigDict, hp: HParams, decay_path: clipping.DecayPath = "w_hh"
) -> optax.GradientTransformation:
  """The run's clip (its kind and threshold, possibly traced) inside the non-finite
  guard → SGD or Adam: one chain for every algorithm. `decay_path`: the leaves the
  guard's fallback decays, the network's recurrent weights (`cells.Model.decay_path`)."""
  clip = clipping.clip_norm_or_elementwise(hp.clip, hp.elementwise)
  # The guard decides on the pre-clip norm and its fallback step is not clipped.
  guarded = clipping.nonfinite_fallback(
    clip, enabled=guard_enabled(config, hp), decay_path=decay_path
  )
  if hp.optimizer == "adam":
    return optax.chain(guarded, optax.adam(hp.lr))
  if hp.optimizer != "sgd":
    raise ValueError(f"unknown optimizer {hp.optimizer!r}; choose one of {OPTIMIZERS}")
  return optax.chain(guarded, optax.sgd(hp.lr, momentum=config.get("momentum") or None))
