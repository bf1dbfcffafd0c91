"""Gradient clipping as optax transformations.

Three composable pieces, each keeping its diagnostics in its state so they ride
in a ``lax.scan`` carry and can be logged from inside a compiled training loop:

* :func:`clip_by_global_norm_with_stats`: norm clipping, Algorithm 1 of
  Pascanu et al. (2013) ("SGD-C").
* :func:`clip_elementwise`: Mikolov's element-wise clipping, the baseline.
* :func:`clip_norm_or_elementwise`: either of the two, chosen per run by a (traced)
  flag, so both kinds can share one vmapped program.
* :func:`nonfinite_fallback`: the original code's guard against non-finite or
  huge gradients (a small weight-decay step on the recurrent matrix instead).

The guard wraps the clip, as in the original code: it looks at the *unclipped*
gradient's norm, and when that norm is bad its replacement step is used as it is,
never clipped; otherwise the clip's output passes through::

  tx = optax.chain(
      nonfinite_fallback(clip_by_global_norm_with_stats(1.0)),
      optax.sgd(0.01),
  )

:func:`clipping_stats` reads the diagnostics back out of any (nested, chained)
optax state as a flat metrics dict.

References:
  Pascanu, Mikolov & Bengio, `On the difficulty of training recurrent neural
  networks <https://arxiv.org/abs/1211.5063>`_, ICML 2013.

  Mikolov, `Statistical language models based on neural networks
  <https://www.fit.vut.cz/study/phd-thesis/283/>`_, PhD thesis, 2012.

  Original code: https://github.com/pascanur/trainingRNNs
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = [
  "ClipByNormState",
  "ClipElementwiseState",
  "DecayPath",
  "NonfiniteFallbackState",
  "all_finite",
  "as_norm_states",
  "clip_by_global_norm_with_stats",
  "clip_elementwise",
  "clip_norm_or_elementwise",
  "clipping_stats",
  "from_norm_states",
  "global_norm",
  "nonfinite_fallback",
]

KeyPath = tuple[Any, ...]
# Which leaves `nonfinite_fallback` decays: a leaf name, a key-path predicate, or None.
DecayPath = str | Callable[[KeyPath], bool] | None


class ClipByNormState(NamedTuple):
  """State of :func:`clip_by_global_norm_with_stats`.

  Attributes:
    preclip_norm: global L2 norm of the incoming updates at the last step
      (float32 scalar).
    clipped: whether the last step was rescaled, i.e. ``preclip_norm >=
      threshold`` (bool scalar).
  """

  preclip_norm: jax.Array
  clipped: jax.Array


class ClipElementwiseState(NamedTuple):
  """State of :func:`clip_elementwise`.

  Attributes:
    preclip_norm: global L2 norm of the incoming updates at the last step, kept
      so that norm-clipped and element-wise-clipped runs log the same metric
      (float32 scalar).
    clipped: whether any entry was clipped at the last step (bool scalar).
    fraction_clipped: fraction of all entries with ``|g| > threshold`` at the
      last step (float32 scalar).
  """

  preclip_norm: jax.Array
  clipped: jax.Array
  fraction_clipped: jax.Array


class NonfiniteFallbackState(NamedTuple):
  """State of :func:`nonfinite_fallback`.

  Attributes:
    triggered: whether the last step was replaced by the fallback (bool scalar).
    inner: the state of the wrapped transformation (``()`` when there is none).
  """

  triggered: jax.Array
  inner: Any = ()


def _check_scalar(name: str, value: jax.typing.ArrayLike) -> None:
  # A non-scalar threshold would silently broadcast the flags to its shape and
  # break the fixed-shape state that lax.scan carries need.
  if jnp.ndim(value) != 0:
    raise ValueError(
      f"{name} must be a scalar (use jax.vmap to sweep several), got shape {jnp.shape(value)}."
    )


def global_norm(tree: Any) -> jax.Array:
  """Global L2 norm over all leaves of ``tree``, safe from overflow and underflow.

  Exploding RNN gradients routinely exceed ``sqrt(float32 max) ~ 1.8e19``,
  where the naive sum of squares overflows to ``inf`` even though every entry
  is finite (and tiny ones underflow to ``0``). Scaling by the largest
  magnitude first keeps the norm exact for any finite input; NaN and ``inf``
  entries still give a non-finite norm.

  Args:
    tree: a pytree of arrays.

  Returns:
    A float32 scalar, ``0`` for an all-zero or empty tree, ``inf`` if an entry is
    infinite and none is NaN, NaN if one is.
  """
  leaves = [jnp.asarray(x) for x in jax.tree.leaves(tree)]
  if not leaves:
    return jnp.zeros((), jnp.float32)
  scale = jnp.max(jnp.stack([jnp.max(jnp.abs(x), initial=0.0).astype(jnp.float32) for x in leaves]))
  # All-zero tree: divide by 1 instead of 0 so the result is 0, not NaN.
  safe_scale = jnp.where(scale > 0, scale, 1.0)
  sum_sq = sum(jnp.sum(jnp.square(x.astype(jnp.float32) / safe_scale)) for x in leaves)
  # An infinite entry makes the norm infinite (inf / inf would read NaN); NaN stays NaN.
  return jnp.where(jnp.isinf(scale), scale, safe_scale * jnp.sqrt(sum_sq))


def all_finite(tree) -> jax.Array:
  """Whether every entry of every leaf is finite (a boolean scalar, traceable)."""
  return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def clip_by_global_norm_with_stats(
  threshold: jax.typing.ArrayLike,
) -> optax.GradientTransformation:
  """Norm clipping (Algorithm 1 of Pascanu et al.), recording what it did.

  With ``g_norm`` the global L2 norm over all leaves: if ``g_norm >= threshold``
  then ``g <- threshold * g / g_norm``, else ``g`` is left exactly unchanged.
  Unlike :func:`optax.clip_by_global_norm`, the state keeps the pre-clip norm
  and whether clipping fired (readable with ``optax.tree.get(state,
  "preclip_norm")`` or :func:`clipping_stats`), and the equality case counts as
  clipped, as in the paper (it is a numerical no-op there).

  Args:
    threshold: the maximum global norm, a scalar; may be a traced array, so a
      sweep can ``jax.vmap`` over it.

  Returns:
    A :class:`optax.GradientTransformation` with state :class:`ClipByNormState`.

  References:
    Pascanu, Mikolov & Bengio, `On the difficulty of training recurrent neural
    networks <https://arxiv.org/abs/1211.5063>`_, ICML 2013, Algorithm 1.
  """
  _check_scalar("threshold", threshold)

  def init_fn(params):
    del params
    return ClipByNormState(
      preclip_norm=jnp.zeros((), jnp.float32), clipped=jnp.zeros((), jnp.bool_)
    )

  def update_fn(updates, state, params=None):
    del state, params
    g_norm = global_norm(updates)
    clipped = g_norm >= threshold
    # Safe division: at norm == threshold == 0 the factor is 0 / 1 (the update
    # is all zeros anyway) instead of 0 / 0 = NaN.
    factor = jnp.asarray(threshold, jnp.float32) / jnp.where(g_norm > 0, g_norm, 1.0)

    def clip_leaf(g):
      # `where`, not multiplication by a 0/1 mask, so unclipped leaves come
      # back bit-identical.
      return jnp.where(clipped, g * factor.astype(g.dtype), g)

    updates = jax.tree.map(clip_leaf, updates)
    return updates, ClipByNormState(preclip_norm=g_norm, clipped=clipped)

  return optax.GradientTransformation(init_fn, update_fn)


def clip_elementwise(threshold: jax.typing.ArrayLike) -> optax.GradientTransformation:
  """Element-wise clipping of every update entry to ``[-threshold, threshold]``.

  The baseline the paper compares norm clipping with. Same as
  :func:`optax.clip`, plus diagnostics in the state.

  Args:
    threshold: the largest allowed magnitude per entry, a non-negative scalar;
      may be a traced array.

  Returns:
    A :class:`optax.GradientTransformation` with state
    :class:`ClipElementwiseState`.

  References:
    Mikolov, `Statistical language models based on neural networks
    <https://www.fit.vut.cz/study/phd-thesis/283/>`_, PhD thesis, 2012.

    Pascanu, Mikolov & Bengio, `On the difficulty of training recurrent neural
    networks <https://arxiv.org/abs/1211.5063>`_, ICML 2013, Section 3.2.
  """
  _check_scalar("threshold", threshold)

  def init_fn(params):
    del params
    return ClipElementwiseState(
      preclip_norm=jnp.zeros((), jnp.float32),
      clipped=jnp.zeros((), jnp.bool_),
      fraction_clipped=jnp.zeros((), jnp.float32),
    )

  def update_fn(updates, state, params=None):
    del state, params
    leaves = jax.tree.leaves(updates)
    num_entries = sum(jnp.size(x) for x in leaves)
    num_clipped = sum(jnp.sum(jnp.abs(x) > threshold) for x in leaves)
    fraction = jnp.asarray(num_clipped, jnp.float32) / max(num_entries, 1)
    new_state = ClipElementwiseState(
      preclip_norm=global_norm(updates),
      clipped=jnp.asarray(num_clipped > 0, jnp.bool_),
      fraction_clipped=fraction,
    )
    updates = jax.tree.map(lambda g: jnp.clip(g, -threshold, threshold).astype(g.dtype), updates)
    return updates, new_state

  return optax.GradientTransformation(init_fn, update_fn)


def clip_norm_or_elementwise(
  threshold: jax.typing.ArrayLike, elementwise: jax.typing.ArrayLike
) -> optax.GradientTransformation:
  """Norm clipping or element-wise clipping, chosen by a flag that may be traced.

  Both clips are computed and one is selected with `where`, so runs of a sweep that
  `jax.vmap`s over `elementwise` (and `threshold`) compare the two kinds inside one
  compiled program. Each run gets exactly what :func:`clip_by_global_norm_with_stats`
  or :func:`clip_elementwise` would give it, diagnostics included.

  Args:
    threshold: the norm threshold, or the per-entry bound when `elementwise`; a scalar.
    elementwise: a boolean scalar: True clips every entry to `[-threshold, threshold]`
      (Mikolov 2012), False clips the global norm (Algorithm 1).

  Returns:
    A :class:`optax.GradientTransformation` with state :class:`ClipElementwiseState`
    (`fraction_clipped` is 0 for norm clipping).

  References:
    Pascanu, Mikolov & Bengio, `On the difficulty of training recurrent neural
    networks <https://arxiv.org/abs/1211.5063>`_, ICML 2013, Section 3.2.
  """
  _check_scalar("elementwise", elementwise)
  by_norm, by_entry = clip_by_global_norm_with_stats(threshold), clip_elementwise(threshold)

  def init_fn(params):
    return by_entry.init(params)

  def update_fn(updates, state, params=None):
    del state
    out_norm, s_norm = by_norm.update(updates, by_norm.init(None), params)
    out_entry, s_entry = by_entry.update(updates, by_entry.init(None), params)
    flag = jnp.asarray(elementwise, jnp.bool_)
    updates = jax.tree.map(lambda a, b: jnp.where(flag, a, b), out_entry, out_norm)
    return updates, ClipElementwiseState(
      preclip_norm=s_norm.preclip_norm,
      clipped=jnp.where(flag, s_entry.clipped, s_norm.clipped),
      fraction_clipped=jnp.where(flag, s_entry.fraction_clipped, 0.0),
    )

  return optax.GradientTransformation(init_fn, update_fn)


def _key_name(entry: Any) -> Any:
  for attr in ("name", "key", "idx"):
    if hasattr(entry, attr):
      return getattr(entry, attr)
  return entry


def _name_predicate(name: str) -> Callable[[KeyPath], bool]:
  def predicate(path: KeyPath) -> bool:
    return bool(path) and _key_name(path[-1]) == name

  return predicate


def nonfinite_fallback(
  inner: optax.GradientTransformation | None = None,
  *,
  enabled: jax.typing.ArrayLike = True,
  weight_decay: jax.typing.ArrayLike = 0.02,
  max_norm: jax.typing.ArrayLike = 1e10,
  decay_path: DecayPath = "w_hh",
) -> optax.GradientTransformation:
  """The original code's guard against non-finite or huge gradients, around a clip.

  If the global norm of the incoming (unclipped) updates is NaN, ``+-inf``, negative or
  ``> max_norm``, the update of the recurrent weight matrix becomes
  ``weight_decay * W_hh`` (a small weight-decay step once the optimizer negates it) and
  every other update becomes zero; otherwise the updates go through ``inner`` (the clip)
  unchanged. This is the original code's order: its guard sits inside the rescaling
  branch, decides on the pre-clip norm and replaces the *rescaled* step, so the fallback
  step itself is never clipped (docs/reference.md §2). Whole leaves are selected with
  ``where``, so NaN in the incoming updates never leaks into the output (``NaN * 0``
  would).

  Args:
    inner: the transformation the guard protects, normally the clip (None: identity).
    enabled: whether the guard acts; a boolean scalar that may be traced, so runs with
      and without the guard share one vmapped program (the original code guards
      norm-clipped runs only).
    weight_decay: factor of ``W_hh`` used as its replacement gradient.
    max_norm: norms above this count as exploded.
    decay_path: which leaves are the recurrent matrix: either the name of the
      last key on the leaf's path (a dataclass field or dict key, default
      ``"w_hh"``), or a predicate on the key path as given by
      :func:`jax.tree_util.tree_map_with_path`. All matching leaves are
      decayed; at least one must match. None: a network with no recurrent weight
      matrix to shrink (e.g. a diagonal recurrence); the fallback step is then zero
      for every leaf, i.e. the update is skipped.

  Returns:
    A :class:`optax.GradientTransformation` with state
    :class:`NonfiniteFallbackState`; its ``update`` needs ``params``.

  References:
    Pascanu, Mikolov & Bengio, `On the difficulty of training recurrent neural
    networks <https://arxiv.org/abs/1211.5063>`_, ICML 2013; the guard is in
    the authors' code, https://github.com/pascanur/trainingRNNs (RNN.py).
  """
  _check_scalar("enabled", enabled)
  _check_scalar("weight_decay", weight_decay)
  _check_scalar("max_norm", max_norm)
  inner = inner if inner is not None else optax.identity()
  if decay_path is None:
    is_recurrent = lambda path: False  # noqa: E731
  elif isinstance(decay_path, str):
    is_recurrent = _name_predicate(decay_path)
  else:
    is_recurrent = decay_path

  def init_fn(params):
    return NonfiniteFallbackState(triggered=jnp.zeros((), jnp.bool_), inner=inner.init(params))

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError(
        "nonfinite_fallback needs `params` (its fallback is weight_decay * W_hh): "
        "call update(updates, state, params)."
      )
    g_norm = global_norm(updates)
    # NaN compares False with everything, hence the explicit isfinite.
    bad = ~jnp.isfinite(g_norm) | (g_norm < 0) | (g_norm > max_norm)
    triggered = jnp.asarray(enabled, jnp.bool_) & bad
    passed, inner_state = inner.update(updates, state.inner, params)

    num_matched = 0

    def fallback_leaf(path, g, p):
      nonlocal num_matched
      if is_recurrent(path):
        num_matched += 1
        replacement = (weight_decay * p).astype(g.dtype)
      else:
        replacement = jnp.zeros_like(g)
      return jnp.where(triggered, replacement, g)

    out = jax.tree_util.tree_map_with_path(fallback_leaf, passed, params)
    if num_matched == 0 and decay_path is not None:
      raise ValueError(
        f"nonfinite_fallback: no update leaf matched decay_path={decay_path!r}; "
        "pass the recurrent matrix's field name or a key-path predicate."
      )
    return out, NonfiniteFallbackState(triggered=triggered, inner=inner_state)

  return optax.GradientTransformation(init_fn, update_fn)


_STATE_TYPES = (ClipByNormState, ClipElementwiseState, NonfiniteFallbackState)


def _map_states(fn: Callable[[Any], Any], kind: type, tree: Any) -> Any:
  return jax.tree.map(
    lambda s: fn(s) if isinstance(s, kind) else s, tree, is_leaf=lambda x: isinstance(x, kind)
  )


def as_norm_states(tree: Any) -> Any:
  """`tree` with every :class:`ClipElementwiseState` as a :class:`ClipByNormState`.

  The layout of a norm-clipped program's state before every algorithm shared one clip
  (:func:`clip_norm_or_elementwise`): a checkpoint written then is read with it and
  brought up to date by :func:`from_norm_states`.
  """
  return _map_states(
    lambda s: ClipByNormState(s.preclip_norm, s.clipped), ClipElementwiseState, tree
  )


def from_norm_states(tree: Any) -> Any:
  """`tree` with every :class:`ClipByNormState` as the :class:`ClipElementwiseState` of
  :func:`clip_norm_or_elementwise` on a norm-clipped run (`fraction_clipped` 0, as it
  reports there; the clip never reads its incoming state, so a step is unchanged)."""

  def upgrade(s):
    zero = jnp.zeros_like(s.preclip_norm)
    sharding = getattr(s.preclip_norm, "sharding", None)
    return ClipElementwiseState(
      s.preclip_norm, s.clipped, zero if sharding is None else jax.device_put(zero, sharding)
    )

  return _map_states(upgrade, ClipByNormState, tree)


def _find_states(tree: Any) -> list[Any]:
  """This module's states in `tree`, in chain order (a guard before what it wraps)."""
  out = []
  for s in jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, _STATE_TYPES)):
    if isinstance(s, _STATE_TYPES):
      out.append(s)
      if isinstance(s, NonfiniteFallbackState):
        out += _find_states(s.inner)
  return out


def clipping_stats(opt_state: Any) -> dict[str, jax.Array]:
  """Flat clipping metrics found anywhere in an optax state.

  Searches ``opt_state`` (chained, nested, wrapped: any pytree) for the states
  of this module's transformations, so a trainer logs the same keys whatever
  its chain. A missing piece reads as ``0`` / ``False``. If several clipping
  states are present, the first in the chain (the one applied first) is
  reported.

  Args:
    opt_state: an optax optimizer state.

  Returns:
    A dict with keys ``grads/norm_preclip`` (float32), ``grads/clipped``
    (bool), ``grads/fraction_clipped`` (float32, element-wise clipping only)
    and ``grads/nonfinite`` (bool).
  """
  found = _find_states(opt_state)
  clip = next((s for s in found if isinstance(s, (ClipByNormState, ClipElementwiseState))), None)
  guard = next((s for s in found if isinstance(s, NonfiniteFallbackState)), None)
  zero, false = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.bool_)
  return {
    "grads/norm_preclip": zero if clip is None else clip.preclip_norm,
    "grads/clipped": false if clip is None else clip.clipped,
    "grads/fraction_clipped": (
      clip.fraction_clipped if isinstance(clip, ClipElementwiseState) else zero
    ),
    "grads/nonfinite": false if guard is None else guard.triggered,
  }
