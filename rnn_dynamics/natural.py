"""Truncated BPTT on the natural tasks of §4.2: polyphonic music and character-level text.

The model is the paper's sigmoid RNN of `rnn_dynamics.rnn` with an output at every step:
independent Bernoulli outputs per piano key (music, `all_bernoulli` head) or a softmax
over the symbols (text, `all_softmax` head). A data split is laid out host-side as
`n_lanes` parallel streams ("lanes") cut into segments of `segment_length` steps:

* music: each lane plays whole songs one after the other; the input at step t is the
  frame at t − 1 (a silent frame at a song's start), the target the frame at t, so every
  frame of a song is scored. A song starts at a segment boundary (its last segment is
  padded), where the state is reset to zero;
* text: the symbol stream is split into `n_lanes` contiguous pieces; the input at step t
  is symbol t, the target symbol t + `target_offset` (1: next character; 5: the paper's
  fifth character ahead).

Within a lane the hidden state is carried from one segment to the next (truncated BPTT:
the gradient stops at the segment boundary, the forward pass does not), so evaluating the
chained segments gives exactly the full-sequence likelihood.

Every run (the SGD / SGD-C / SGD-CR columns × seeds) is a row of stacked arrays, and
`chunk_size` segments of updates for all of them are one compiled, vmapped program, as in
`rnn_dynamics.train`: the same optax chain (`train.make_optimizer`: clipping inside the
non-finite guard → SGD) and Ω from the saved adjoints, fused into the weight gradient
(`regularizers.omega_and_total_w_hh_grad`). What
changes between epochs — the learning rate (halved when the epoch's error rises) and α
(constant or `α_0 / t`) — travels in the per-run `HParams`, so it never recompiles.

The host loop (`fit`) runs epochs of shuffled songs / the text stream, evaluates every
split after each epoch, keeps each run's best-validation parameters, checkpoints with
Orbax (at every epoch's end and every `checkpoint_every_s` within one: resuming replays
nothing and gives the same numbers), and logs a progress line with an ETA.

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, ICML, §4.2, Tables 1 and 2, and the supplementary "Natural tasks".
  Boulanger-Lewandowski, Bengio & Vincent (2012), ICML (music data and metric).
  Mikolov et al. (2012), Subword language modeling with neural networks (character PTB).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from absl import logging

from rnn_dynamics import clipping, results, rnn
from rnn_dynamics.regularizers import omega_and_total_w_hh_grad
from rnn_dynamics.sweep import format_duration, runs_sharding
from rnn_dynamics.tasks.base import Batch
from rnn_dynamics.train import HParams, all_finite, make_optimizer

__all__ = [
  "ALPHA_SCHEDULES",
  "Column",
  "FitResult",
  "NaturalState",
  "NaturalTask",
  "Segments",
  "Trainer",
  "alpha_at",
  "columns",
  "comparison_table",
  "fit",
  "frequency_baseline",
  "halve_lr",
  "make_trainer",
  "music_segments",
  "music_task",
  "pad_segments",
  "predict_roll",
  "sample_text",
  "shift_targets",
  "synthetic_music",
  "synthetic_text",
  "text_segments",
  "text_task",
  "unigram_baseline",
  "wall_note",
  "write_fit_outputs",
]

ALPHA_SCHEDULES = ("constant", "inverse")
LN2 = math.log(2.0)


# --- data layout -----------------------------------------------------------------------


class Segments(NamedTuple):
  """A split laid out as lanes of fixed-length segments (host numpy or device arrays).

  Attributes:
    inputs: `[S, T, B, K]` uint8 frames (music) or `[S, T, B]` symbol ids (text).
    targets: same layout as `inputs`.
    mask: `[S, T, B]` bool, True on real steps (a prefix of every segment of a lane).
    reset: `[S, B]` bool, True where a lane starts a new sequence at that segment: its
      state restarts from zero instead of being carried over.
  """

  inputs: Any
  targets: Any
  mask: Any
  reset: Any

  @property
  def n_segments(self) -> int:
    return int(self.mask.shape[0])


def pad_segments(seg: Segments, multiple: int) -> Segments:
  """Appends empty segments (all steps masked) so the count is a multiple of `multiple`."""
  extra = -seg.n_segments % multiple
  if not extra:
    return seg
  grow = lambda a: np.concatenate([a, np.zeros((extra,) + a.shape[1:], a.dtype)])
  return Segments(*(grow(np.asarray(a)) for a in seg))


def _ceil_div(a: int, b: int) -> int:
  return -(-a // b)


def music_segments(
  rolls: Sequence[np.ndarray],
  n_lanes: int,
  segment_length: int,
  order: Sequence[int] | None = None,
) -> Segments:
  """Songs → lanes of segments, the state reset at every song's first segment.

  Songs are dealt, in `order` (default: as given), each to the lane with the fewest
  segments so far, so lanes end up about equally long; each song takes
  `ceil(len / segment_length)` segments, its last one padded. The input at step t is
  the frame at t − 1 (silence at t = 0) and the target the frame at t: every frame of a
  song is predicted, the first one from silence and the zero state.

  Args:
    rolls: `[T_i, K]` 0/1 piano rolls.
    n_lanes: parallel streams B.
    segment_length: steps per segment T.
    order: indices into `rolls` (a shuffled epoch); songs of length 0 are skipped.

  Returns:
    `Segments` with uint8 `[S, T, B, K]` inputs and targets.
  """
  order = range(len(rolls)) if order is None else order
  n_keys = rolls[0].shape[1] if len(rolls) else 0
  lanes: list[list[int]] = [[] for _ in range(n_lanes)]
  load = np.zeros(n_lanes, np.int64)
  for i in order:
    if len(rolls[i]) == 0:
      continue
    b = int(np.argmin(load))
    lanes[b].append(i)
    load[b] += _ceil_div(len(rolls[i]), segment_length)
  n_seg = max(int(load.max()), 1)
  shape = (n_seg * segment_length, n_lanes)
  inputs = np.zeros(shape + (n_keys,), np.uint8)
  targets = np.zeros(shape + (n_keys,), np.uint8)
  mask = np.zeros(shape, bool)
  reset = np.zeros((n_seg, n_lanes), bool)
  reset[0] = True
  for b, lane in enumerate(lanes):
    s = 0  # segment index within the lane
    for i in lane:
      roll = np.asarray(rolls[i], np.uint8)
      t0, n = s * segment_length, len(roll)
      targets[t0 : t0 + n, b] = roll
      inputs[t0 + 1 : t0 + n, b] = roll[:-1]
      mask[t0 : t0 + n, b] = True
      reset[s, b] = True
      s += _ceil_div(n, segment_length)
  split = lambda a: a.reshape((n_seg, segment_length) + a.shape[1:])
  return Segments(split(inputs), split(targets), split(mask), reset)


def shift_targets(ids: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
  """`(inputs, targets)` with `targets[t] = ids[t + offset]` (1: next symbol; 5: fifth ahead).

  The model reads symbols 0 … t and predicts symbol t + offset.
  """
  if offset < 1:
    raise ValueError(f"target_offset must be >= 1, got {offset}")
  ids = np.asarray(ids)
  if ids.size <= offset:
    raise ValueError(f"a stream of {ids.size} symbols is too short for offset {offset}")
  return ids[:-offset], ids[offset:]


def text_segments(ids: np.ndarray, n_lanes: int, segment_length: int, offset: int = 1) -> Segments:
  """A symbol stream → `n_lanes` contiguous pieces, cut into segments (state carried).

  The stream of `len(ids) − offset` (input, target) pairs is split into lanes of
  `ceil(N / n_lanes)` steps (the last lane padded); each lane starts from the zero state
  and carries it through all its segments.

  Returns:
    `Segments` with `[S, T, B]` inputs and targets (uint8 ids when the ids fit, else int32).
  """
  inputs, targets = shift_targets(ids, offset)
  n = inputs.size
  lane_len = _ceil_div(n, n_lanes)
  n_seg = _ceil_div(lane_len, segment_length)
  dtype = np.uint8 if int(np.max(ids)) < 256 else np.int32

  def lay(a, fill):
    # Lane b holds stream positions [b·lane_len, (b+1)·lane_len), padded at the end.
    flat = np.full(n_lanes * lane_len, fill, a.dtype)
    flat[:n] = a
    lanes = flat.reshape(n_lanes, lane_len)
    out = np.full((n_lanes, n_seg * segment_length), fill, a.dtype)
    out[:, :lane_len] = lanes
    return out.T.reshape(n_seg, segment_length, n_lanes)

  mask = lay(np.ones(n, bool), False)
  reset = np.zeros((n_seg, n_lanes), bool)
  reset[0] = True
  return Segments(lay(inputs.astype(dtype), 0), lay(targets.astype(dtype), 0), mask, reset)


# --- tasks -----------------------------------------------------------------------------


class NaturalTask(NamedTuple):
  """What the trainer needs to know about a data set.

  Attributes:
    name: for tables and progress lines.
    kind: "music" or "text".
    n_in: input size (88 keys, or the vocabulary size: inputs are one-hot).
    n_out: output size.
    head: `all_bernoulli` (music) or `all_softmax` (text).
    target_offset: text only: how many symbols ahead the target is.
    score_name: the reported metric.
    score_scale: nats per step → the metric (1 for NLL, 1/ln 2 for bits per character).
  """

  name: str
  kind: str
  n_in: int
  n_out: int
  head: str
  target_offset: int
  score_name: str
  score_scale: float

  def segments(self, split: Any, n_lanes: int, segment_length: int, order=None) -> Segments:
    """Lays out one split (a list of rolls, or a symbol stream)."""
    if self.kind == "music":
      return music_segments(split, n_lanes, segment_length, order)
    return text_segments(split, n_lanes, segment_length, self.target_offset)


def music_task(name: str, n_keys: int = 88) -> NaturalTask:
  """Polyphonic music: Bernoulli outputs per key, score = NLL per time step (nats)."""
  return NaturalTask(name, "music", n_keys, n_keys, "all_bernoulli", 1, "NLL per step", 1.0)


def text_task(name: str, vocab_size: int, target_offset: int = 1) -> NaturalTask:
  """Character-level text: softmax over symbols, score = bits per character."""
  return NaturalTask(
    name,
    "text",
    vocab_size,
    vocab_size,
    "all_softmax",
    int(target_offset),
    "bits per char",
    1.0 / LN2,
  )


def frequency_baseline(train: Sequence[np.ndarray], split: Sequence[np.ndarray]) -> float:
  """NLL per step of independent keys at their training frequencies (the sanity floor)."""
  frames = np.concatenate([np.asarray(r, np.float64) for r in train])
  p = np.clip(frames.mean(axis=0), 1e-6, 1 - 1e-6)
  x = np.concatenate([np.asarray(r, np.float64) for r in split])
  return float(-(x * np.log(p) + (1 - x) * np.log1p(-p)).sum(axis=1).mean())


def unigram_baseline(train: np.ndarray, split: np.ndarray, vocab_size: int) -> float:
  """Bits per character of the training split's symbol frequencies (add-one smoothed)."""
  counts = np.bincount(np.asarray(train), minlength=vocab_size).astype(np.float64) + 1.0
  logp = np.log2(counts / counts.sum())
  return float(-logp[np.asarray(split)].mean())


def synthetic_music(seed: int = 0, n_songs=(24, 6, 6), n_keys: int = 88) -> dict[str, list]:
  """A small generated music set for tests: a wandering triad plus an occasional bass.

  Learnable (the next frame is mostly the current one) and of varied song lengths, so it
  exercises padding, resets and carried states.
  """
  rng = np.random.default_rng(seed)

  def song():
    n = int(rng.integers(8, 60))
    roll = np.zeros((n, n_keys), np.uint8)
    root = int(rng.integers(30, 50))
    for t in range(n):
      if rng.random() < 0.3:
        root = int(np.clip(root + rng.integers(-3, 4), 24, 60))
      roll[t, [root, root + 4, root + 7]] = 1
      if t % 4 == 0:
        roll[t, root - 12] = 1
    return roll

  return {s: [song() for _ in range(n)] for s, n in zip(("train", "valid", "test"), n_songs)}


def synthetic_text(seed: int = 0, n_symbols=(6000, 1200, 1200)) -> dict[str, Any]:
  """A small generated character set for tests: words from a tiny lexicon, PTB format.

  Returns:
    `{"train", "valid", "test"}` symbol streams and `"vocab"`.
  """
  from rnn_dynamics.data.text import build_corpus, parse_char_text, ptb_words_to_chars

  rng = np.random.default_rng(seed)
  lexicon = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "away"]

  def text(n):
    lines, size = [], 0
    while size < n:
      line = " ".join(rng.choice(lexicon, size=int(rng.integers(3, 9))))
      lines.append(line)
      size += len(line) + 1  # one symbol per character, "_" per space, one line end
    return parse_char_text(ptb_words_to_chars("\n".join(lines) + "\n"))

  corpus = build_corpus(
    {s: text(n) for s, n in zip(("train", "valid", "test"), n_symbols)}, where="synthetic"
  )
  return dict(train=corpus.train, valid=corpus.valid, test=corpus.test, vocab=corpus.vocab)


def write_fit_outputs(
  path: str | Path,
  res: FitResult,
  *,
  algorithms: Sequence[str],
  paper: Mapping[str, Mapping[str, float | None]] | None,
  notes: Sequence[str],
  title: str,
  summary: dict[str, Any],
) -> str:
  """A table's files, each written atomically, and its Markdown (returned).

  The table is `comparison_table(res.runs, ...)`: `table.{md,csv,json}`; beside it
  `runs.*` (best epoch per run), `history.*` (every split per epoch per run),
  `best_params.npz` and `summary.json` (`summary` plus the paper's numbers, the wall time
  and why training stopped).
  """
  path = Path(path)
  md, rows = comparison_table(
    res.runs, algorithms=algorithms, paper=paper, notes=notes, title=title
  )
  results.atomic_write_text(path / "table.md", md)
  results.write_results(path / "table", rows)
  results.write_results(path / "runs", res.runs)
  results.write_results(path / "history", res.history)
  results.write_npz(path / "best_params.npz", res.best_params)
  results.write_json(
    path / "summary.json", dict(summary, paper=paper, wall_s=res.wall_s, stopped=res.stopped)
  )
  return md


def wall_note(res: FitResult) -> str:
  """`Wall time … over N epoch(s) (stopped: …).` for a table's notes."""
  epochs = max((r["epochs"] for r in res.runs), default=0)
  return (
    f"Wall time {res.wall_s / 60:.1f} min over {epochs} epoch(s) "
    f"(stopped: {res.stopped or 'running'})."
  )


def comparison_table(
  runs: Sequence[Mapping[str, Any]],
  *,
  algorithms: Sequence[str],
  title: str,
  paper: Mapping[str, Mapping[str, float | None]] | None,
  notes: Sequence[str] = (),
) -> tuple[str, list[dict[str, Any]]]:
  """The paper's table layout, ours beside the published numbers.

  Args:
    runs: `FitResult.runs` (scores at each run's best-validation epoch).
    algorithms: column order.
    title: first line of the Markdown.
    paper: `{"train": {algorithm: value or None}, "test": {...}}`, quoted from docs/reference.md §4,
      or None when the paper has no number for this data set.
    notes: lines printed under the table.

  Returns:
    `(markdown, csv_rows)`; ours is the mean ± standard deviation over seeds.
  """
  labels = {"sgd": "SGD", "sgd_c": "SGD+C", "sgd_cr": "SGD+CR"}
  head = "| fold | source | " + " | ".join(labels.get(a, a) for a in algorithms) + " |"
  lines = [title, "", head, "|" + "---|" * (len(algorithms) + 2)]
  rows = []
  for fold in ("train", "test"):
    ours, published = [], []
    for a in algorithms:
      vals = np.asarray(
        [r[fold] for r in runs if r["algorithm"] == a and r[fold] is not None], np.float64
      )
      mean = float(vals.mean()) if vals.size else None
      std = float(vals.std()) if vals.size > 1 else None
      p = None if paper is None else paper.get(fold, {}).get(a)
      rows.append(
        dict(fold=fold, algorithm=a, ours=mean, ours_std=std, seeds=int(vals.size), paper=p)
      )
      ours.append("—" if mean is None else f"{mean:.2f}" + (f" ± {std:.2f}" if std else ""))
      published.append("N/A" if p is None else f"{p:.2f}")
    lines.append(f"| {fold} | ours | " + " | ".join(ours) + " |")
    if paper is not None:
      lines.append(f"| {fold} | paper | " + " | ".join(published) + " |")
  epochs = []
  for a in algorithms:
    e = [r["best_epoch"] for r in runs if r["algorithm"] == a and r["best_epoch"] is not None]
    epochs.append(", ".join(str(x) for x in e) or "—")
  lines.append("| best epoch | ours | " + " | ".join(epochs) + " |")
  lines += [""] + [f"{n}" for n in notes]
  return "\n".join(lines) + "\n", rows


# --- schedules -------------------------------------------------------------------------


def alpha_at(alpha0: Any, epoch: int, schedule: str) -> Any:
  """Ω weight in epoch `epoch` (1-based): `α_0` (constant) or `α_0 / epoch` (inverse).

  The paper's Piano-midi.de / Nottingham schedule `α_t = 1/(2t)` is `α_0 = 0.5` inverse.
  """
  if epoch < 1:
    raise ValueError(f"epochs count from 1, got {epoch}")
  if schedule == "constant":
    return alpha0
  if schedule == "inverse":
    return alpha0 / epoch
  raise ValueError(f"unknown alpha schedule {schedule!r}; choose one of {ALPHA_SCHEDULES}")


def halve_lr(lr: np.ndarray, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
  """The paper's rule: halve a run's learning rate when its epoch error rose.

  Args:
    lr: `[runs]` current learning rates.
    previous: `[runs]` the error of the epoch before (NaN: none yet, no change).
    current: `[runs]` this epoch's error (NaN, a diverged run: no change).

  Returns:
    `[runs]` learning rates for the next epoch.
  """
  lr, previous, current = (np.asarray(a, np.float64) for a in (lr, previous, current))
  with np.errstate(invalid="ignore"):
    rose = current > previous  # False whenever either is NaN
  return np.where(rose, lr / 2, lr)


# --- the compiled programs -------------------------------------------------------------


@flax.struct.dataclass
class NaturalState:
  """One run's training state between compiled calls (checkpointed as is).

  Attributes:
    params: model parameters.
    opt_state: optax state (clipping statistics of the last update inside).
    h_BxH: the hidden state carried into the next segment, per lane.
    updates: updates applied.
    skipped: updates dropped because the loss or the new parameters were not finite.
  """

  params: rnn.Params
  opt_state: Any
  h_BxH: jax.Array
  updates: jax.Array
  skipped: jax.Array


class SegmentMetrics(NamedTuple):
  """Per segment of a chunk (`[K]` per run)."""

  loss: jax.Array  # nats per valid step (mean over the segment's steps)
  n_valid: jax.Array
  grad_norm: jax.Array  # pre-clip global norm of the applied cost's gradient, Ω's included
  clipped: jax.Array
  omega: jax.Array
  fallback: jax.Array  # 1 where the non-finite guard replaced the step


class Trainer(NamedTuple):
  """Pure functions of one run (vmap over runs; segments are shared, unbatched).

  Attributes:
    task: the task.
    init: `init(key, hp) -> NaturalState`.
    chunk: `chunk(state, hp, segments) -> (state, SegmentMetrics)`: one update per
      segment, `K` segments in one `lax.scan`, the state carried across them.
    evaluate: `evaluate(params, h_BxH, hp, segments) -> (h_BxH, nll_sum, n_steps)`:
      the summed NLL (nats) of `K` chained segments, no update.
  """

  task: NaturalTask
  init: Callable[..., NaturalState]
  chunk: Callable[..., tuple[NaturalState, SegmentMetrics]]
  evaluate: Callable[..., tuple[jax.Array, jax.Array, jax.Array]]


def _to_batch(task: NaturalTask, inputs, targets, mask) -> Batch:
  """Device-side: uint8 frames to floats, symbol ids to one-hot inputs and int targets."""
  if task.kind == "music":
    return Batch(inputs.astype(jnp.float32), targets.astype(jnp.float32), mask)
  one_hot = jax.nn.one_hot(inputs, task.n_in, dtype=jnp.float32)
  return Batch(one_hot, targets.astype(jnp.int32), mask)


def _nll_sum(task: NaturalTask, logits, targets, mask) -> jax.Array:
  if task.kind == "music":
    nll = jnp.sum(rnn.optax_sigmoid_bce(logits, targets), axis=-1)
  else:
    logp = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
  return jnp.sum(jnp.where(mask, nll, 0.0))


def make_trainer(config: ml_collections.ConfigDict, task: NaturalTask) -> Trainer:
  """Builds the pure per-run functions.

  `config` fields used: `n_hidden`, `batch_size` (lanes B), `init` (a name in
  `rnn.INITS`, shared by every run), `cost` ('mean': the
  gradient of the per-step mean cost, music; 'sum': of the cost summed over the segment's
  steps, averaged over lanes, text), `biases` (False: `b` and `b_out` stay zero),
  `clipping`, `nonfinite_guard`, `momentum`, `omega_form`, `omega_bound`, and optional
  `omega_enabled` (default True).
  """
  n_lanes, n_hidden = int(config.batch_size), int(config.n_hidden)
  if config.cost not in ("mean", "sum"):
    raise ValueError(f"config.cost must be 'mean' or 'sum', got {config.cost!r}")
  summed = config.cost == "sum"
  biases = bool(config.biases)
  with_omega = bool(config.get("omega_enabled", True))
  omega_form, omega_bound = config.omega_form, float(config.omega_bound)
  # Every run of a table shares the initialisation, so it is static here (no traced
  # selection between the three, hence no host callback for smart_tanh's radius).
  init_name = str(config.init)
  unit = rnn.unit_for_init(init_name)

  def init(key: jax.Array, hp: HParams) -> NaturalState:
    params = rnn.init_params(key, task.n_in, n_hidden, task.n_out, init_name)
    opt_state = make_optimizer(config, hp).init(params)
    h = jnp.zeros((n_lanes, n_hidden), jnp.float32)
    return NaturalState(params, opt_state, h, jnp.int32(0), jnp.int32(0))

  def update(state: NaturalState, hp: HParams, seg) -> tuple[NaturalState, SegmentMetrics]:
    inputs, targets, mask, reset = seg
    batch = _to_batch(task, inputs, targets, mask)
    h0 = jnp.where(reset[:, None], 0.0, state.h_BxH)
    loss, grads, fwd = rnn.loss_and_grads(state.params, unit, batch, task.head, h0_BxH=h0)
    n_valid = jnp.sum(mask)
    # loss_and_grads differentiates the mean over valid (step, lane) pairs; the summed
    # cost is that times the valid steps per lane.
    scale = n_valid.astype(jnp.float32) / n_lanes if summed else 1.0
    if summed:
      grads = jax.tree.map(lambda g: g * scale, grads)
    if not biases:
      grads = grads.replace(b=jnp.zeros_like(grads.b), b_out=jnp.zeros_like(grads.b_out))
    if with_omega:
      # Ω's ratios do not depend on the cost's scale; its immediate gradient goes to
      # W_rec only, in the weight gradient's own product, and clipping sees the sum
      # (Algorithm 1 on the full gradient).
      om, w_hh_grad, _ = omega_and_total_w_hh_grad(
        fwd, mask, hp.alpha, loss_scale=scale, form=omega_form, bound=omega_bound
      )
      grads = grads.replace(w_hh=w_hh_grad)
    else:
      om = jnp.float32(jnp.nan)
    updates, opt_state = make_optimizer(config, hp).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ok = (n_valid > 0) & jnp.isfinite(loss) & all_finite(params)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
    stats = clipping.clipping_stats(opt_state)
    new_state = NaturalState(
      params=keep(params, state.params),
      opt_state=keep(opt_state, state.opt_state),
      # The state reached with the parameters of this forward pass goes on to the next
      # segment (truncated BPTT); a lane with no valid step keeps its state.
      h_BxH=fwd.unroll.h_last_BxH,
      updates=state.updates + ok.astype(jnp.int32),
      skipped=state.skipped + ((n_valid > 0) & ~ok).astype(jnp.int32),
    )
    metrics = SegmentMetrics(
      loss=loss,
      n_valid=n_valid,
      grad_norm=stats["grads/norm_preclip"],
      clipped=stats["grads/clipped"].astype(jnp.float32),
      omega=om,
      fallback=stats["grads/nonfinite"].astype(jnp.float32),
    )
    return new_state, metrics

  def chunk(state: NaturalState, hp: HParams, segments: Segments):
    return jax.lax.scan(lambda s, seg: update(s, hp, seg), state, tuple(segments))

  def evaluate(params: rnn.Params, h_BxH: jax.Array, hp: HParams, segments: Segments):
    del hp  # evaluation does not depend on the training hyper-parameters

    def body(h, seg):
      inputs, targets, mask, reset = seg
      batch = _to_batch(task, inputs, targets, mask)
      h0 = jnp.where(reset[:, None], 0.0, h)
      out = rnn.unroll(params, unit, batch.inputs, mask, h0_BxH=h0)
      nll = _nll_sum(task, rnn.readout(params, out.h_TxBxH), batch.targets, mask)
      return out.h_last_BxH, (nll, jnp.sum(mask))

    h, (nll, n) = jax.lax.scan(body, h_BxH, tuple(segments))
    return h, jnp.sum(nll), jnp.sum(n)

  return Trainer(task, init, chunk, evaluate)


def predict_roll(params: rnn.Params, init: str, roll: np.ndarray) -> np.ndarray:
  """Per-key probabilities that each frame of a song is on, given the frames before it.

  Args:
    params: one run's parameters (music model).
    init: its initialisation name (fixes the unit type).
    roll: `[T, K]` 0/1 piano roll.

  Returns:
    `[T, K]` float32 probabilities (row t predicts frame t from frames 0 … t − 1).
  """
  roll = np.asarray(roll, np.float32)
  inputs = np.concatenate([np.zeros_like(roll[:1]), roll[:-1]])[:, None, :]
  mask = np.ones(inputs.shape[:2], bool)
  params = jax.tree.map(jnp.asarray, params)
  out = rnn.unroll(params, rnn.unit_for_init(init), jnp.asarray(inputs), jnp.asarray(mask))
  return np.asarray(jax.nn.sigmoid(rnn.readout(params, out.h_TxBxH))[:, 0])


def sample_text(
  params: rnn.Params, init: str, prime: np.ndarray, n: int, key: jax.Array, vocab_size: int
) -> np.ndarray:
  """Symbols sampled from a next-symbol model after reading `prime` (ids).

  Returns:
    `[n]` int32 sampled ids.
  """
  params = jax.tree.map(jnp.asarray, params)
  unit = rnn.unit_for_init(init)
  one_hot = lambda i: jax.nn.one_hot(i, vocab_size, dtype=jnp.float32)

  def advance(h, i):
    return rnn.activation(unit, h @ params.w_hh + one_hot(i) @ params.w_in + params.b)

  h = jax.lax.fori_loop(
    0,
    len(prime),
    lambda t, h: advance(h, jnp.asarray(prime)[t]),
    jnp.zeros(params.w_hh.shape[0], jnp.float32),
  )

  def body(carry, k):
    h = carry
    i = jax.random.categorical(k, rnn.readout(params, h))
    return advance(h, i), i

  _, ids = jax.lax.scan(body, h, jax.random.split(key, n))
  return np.asarray(ids, np.int32)


# --- the host loop ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Column:
  """One algorithm of a table: SGD (clip = ∞, α = 0), SGD-C (α = 0) or SGD-CR."""

  algorithm: str
  lr: float
  clip: float
  alpha0: float


def columns(
  algorithms: Sequence[str], lr: Callable[[str], float], clip: float, alpha0: float
) -> list[Column]:
  """SGD / SGD+C / SGD+CR as hyper-parameters of one program (a table's columns).

  Args:
    algorithms: names among `sgd`, `sgd_c`, `sgd_cr`.
    lr: the learning rate of an algorithm (Table 1 shares one, Table 2 has one each).
    clip: the clipping threshold of SGD+C and SGD+CR (SGD: none).
    alpha0: Ω's weight (or its 1/t schedule's start) for SGD+CR.
  """
  cols = []
  for alg in algorithms:
    if alg not in ("sgd", "sgd_c", "sgd_cr"):
      raise ValueError(f"unknown algorithm {alg!r}; choose from sgd, sgd_c, sgd_cr")
    cols.append(
      Column(
        alg,
        lr=float(lr(alg)),
        clip=math.inf if alg == "sgd" else float(clip),
        alpha0=float(alpha0) if alg == "sgd_cr" else 0.0,
      )
    )
  return cols


@dataclasses.dataclass
class FitResult:
  """What `fit` hands back (everything is also in the workdir).

  Attributes:
    runs: one dict per run: column, seed, best epoch and its train/valid/test scores.
    history: one dict per (run, epoch).
    best_params: stacked best-validation parameters, `[runs, ...]` numpy arrays.
    wall_s: seconds of training and evaluation over all sessions (resumes included).
    stopped: why training ended ("max_epochs", "time_budget" or "lr_floor").
  """

  runs: list[dict[str, Any]]
  history: list[dict[str, Any]]
  best_params: dict[str, np.ndarray]
  wall_s: float
  stopped: str


def _stack(trees):
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


class _Programs:
  def __init__(self, trainer: Trainer):
    self.init = jax.jit(jax.vmap(trainer.init))
    self.chunk = jax.jit(jax.vmap(trainer.chunk, in_axes=(0, 0, None)), donate_argnums=0)
    self.evaluate = jax.jit(jax.vmap(trainer.evaluate, in_axes=(0, 0, 0, None)))


def _split_chunks(seg: Segments, k: int):
  for i in range(0, seg.n_segments, k):
    yield Segments(*(a[i : i + k] for a in seg))


def fit(
  config: ml_collections.ConfigDict,
  task: NaturalTask,
  data: Mapping[str, Any],
  columns: Sequence[Column],
  *,
  checkpoint_dir: str | Path | None = None,
  on_epoch: Callable[[FitResult], None] | None = None,
  on_progress: Callable[[str], None] | None = None,
) -> FitResult:
  """Trains every (column, seed) run for `max_epochs`, evaluating every split per epoch.

  Args:
    config: `make_trainer`'s fields plus `segment_length`, `chunk_size` (segments per
      compiled call), `eval_batch_size` (lanes when evaluating), `max_epochs`,
      `alpha_schedule`, `lr_halving` ('train': halve when the epoch's running training
      error rose, the paper's rule; 'valid': when the validation error rose; 'none'),
      `min_lr` (stop once every run's lr fell below it; 0: never), `time_budget_s`
      (0: none; else no new epoch starts once the next would end past it),
      `train_eval_limit` (evaluate the training score on at most this many songs /
      symbols; 0: all), `seeds`, `seed`, `checkpoint_every_s`, `progress_every_s`.
    task: the task.
    data: `{"train", "valid", "test"}` → a list of rolls or a symbol stream.
    columns: the algorithms; runs are columns × seeds, seeds paired across columns
      (same initial weights, same data order).
    checkpoint_dir: Orbax checkpoints (resumed from when present); None: no resume.
    on_epoch: called with the results so far after every epoch (to write tables).
    on_progress: receives progress lines (default `absl.logging.info`).

  Returns:
    A `FitResult`.
  """
  say = on_progress or logging.info
  n_seeds = int(config.seeds)
  labels = [
    dict(algorithm=c.algorithm, seed=s, col=i)
    for i, c in enumerate(columns)
    for s in range(n_seeds)
  ]
  n_real = len(labels)
  # The runs axis is sharded over every device (CPU cores count as devices, see
  # experiments/__init__.py); pad it with copies of the last run, dropped from results.
  n_runs = -(-n_real // jax.device_count()) * jax.device_count()
  labels_padded = labels + [labels[-1]] * (n_runs - n_real)
  sharding = runs_sharding()
  trainer = make_trainer(config, task)
  programs = _Programs(trainer)
  seg_len, k = int(config.segment_length), int(config.chunk_size)
  lanes, eval_lanes = int(config.batch_size), int(config.eval_batch_size)
  max_epochs = int(config.max_epochs)
  schedule = config.alpha_schedule
  alpha_at(1.0, 1, schedule)  # validates the name early
  if config.lr_halving not in ("train", "valid", "none"):
    raise ValueError(f"lr_halving must be 'train', 'valid' or 'none', got {config.lr_halving!r}")

  # Fixed per-run hyper-parameters; lr and α change per epoch.
  init_id = rnn.init_id(config.init)
  col_of = [columns[lab["col"]] for lab in labels_padded]
  clip = np.asarray([c.clip for c in col_of], np.float32)
  alpha0 = np.asarray([c.alpha0 for c in col_of], np.float32)

  def hparams(lr, epoch):
    hp = HParams(
      lr=jnp.asarray(lr, jnp.float32),
      clip=jnp.asarray(clip),
      alpha=jnp.asarray(alpha_at(alpha0, epoch, schedule), jnp.float32),
      init=jnp.full((n_runs,), init_id, jnp.int32),
    )
    return jax.device_put(hp, sharding)

  # Evaluation layouts are fixed: build them once.
  train_eval = data["train"]
  limit = int(config.get("train_eval_limit", 0) or 0)
  if limit:
    train_eval = train_eval[:limit]
  eval_segs = {
    split: pad_segments(task.segments(d, eval_lanes, seg_len), k)
    for split, d in (("train", train_eval), ("valid", data["valid"]), ("test", data["test"]))
  }

  def epoch_segments(epoch: int) -> Segments:
    order = None
    if task.kind == "music":
      order = np.random.default_rng([int(config.seed), epoch]).permutation(len(data["train"]))
    return pad_segments(task.segments(data["train"], lanes, seg_len, order), k)

  keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), s))(
    np.asarray([lab["seed"] for lab in labels_padded])
  )
  lr0 = np.asarray([c.lr for c in col_of], np.float64)
  state = jax.device_put(programs.init(keys, hparams(lr0, 1)), sharding)
  best = jax.tree.map(jnp.copy, state.params)  # state is donated to each chunk call
  host: dict[str, Any] = dict(
    epoch=1,
    chunk=0,
    lr=lr0.tolist(),
    sums=_zero_sums(n_runs),
    history=[],
    wall_s=0.0,
    best_valid=[None] * n_runs,
    best_epoch=[None] * n_runs,
    stopped="",
    epoch_wall_s=None,
  )

  manager = None
  if checkpoint_dir is not None:
    manager = ocp.CheckpointManager(
      Path(checkpoint_dir).absolute(),
      options=ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False),
    )
    step = manager.latest_step()
    if step is not None:
      abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), (state, best)
      )
      restored = manager.restore(
        step,
        args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract), host=ocp.args.JsonRestore()
        ),
      )
      (state, best), host = restored["state"], restored["host"]
      say(
        f"{task.name}: resumed at epoch {host['epoch']}, chunk {host['chunk']} ({checkpoint_dir})"
      )
  save_count = [0 if manager is None or manager.latest_step() is None else manager.latest_step()]

  def save():
    if manager is None:
      return
    save_count[0] += 1
    manager.save(
      save_count[0],
      args=ocp.args.Composite(
        state=ocp.args.StandardSave((state, best)), host=ocp.args.JsonSave(host)
      ),
      force=True,
    )
    manager.wait_until_finished()

  def evaluate(params, split: str, hp) -> np.ndarray:
    h = jax.device_put(jnp.zeros((n_runs, eval_lanes, int(config.n_hidden)), jnp.float32), sharding)
    total, count = np.zeros(n_runs), np.zeros(n_runs)
    for seg in _split_chunks(eval_segs[split], k):
      h, nll, n = programs.evaluate(params, h, hp, seg)
      total += np.asarray(nll, np.float64)
      count += np.asarray(n, np.float64)
    return total / np.maximum(count, 1) * task.score_scale

  def result() -> FitResult:
    runs = []
    for i, lab in enumerate(labels):
      e = host["best_epoch"][i]
      row = next((r for r in host["history"] if r["run"] == i and r["epoch"] == e), None)
      runs.append(
        dict(
          lab,
          dataset=task.name,
          best_epoch=e,
          train=None if row is None else row["train"],
          valid=None if row is None else row["valid"],
          test=None if row is None else row["test"],
          epochs=sum(r["run"] == i for r in host["history"]),
          skipped_updates=int(np.asarray(state.skipped)[i]),
        )
      )
    best_np = {f: np.asarray(v)[:n_real] for f, v in vars(best).items()}
    return FitResult(runs, list(host["history"]), best_np, float(host["wall_s"]), host["stopped"])

  t_session = time.time()
  wall0 = float(host["wall_s"])
  budget = float(config.get("time_budget_s", 0) or 0)
  last_report = last_save = time.time()
  try:
    while host["epoch"] <= max_epochs and not host["stopped"]:
      epoch = int(host["epoch"])
      if host["chunk"] == 0 and budget and host["epoch_wall_s"]:
        if host["wall_s"] + host["epoch_wall_s"] > budget:
          host["stopped"] = "time_budget"
          break
      t_epoch = time.time() - float(host.get("epoch_elapsed_s", 0.0))
      lr = np.asarray(host["lr"], np.float64)
      hp = hparams(lr, epoch)
      segs = epoch_segments(epoch)
      n_chunks = segs.n_segments // k
      chunks_here, t_chunks = 0, time.time()
      for ci, seg in enumerate(_split_chunks(segs, k)):
        if ci < host["chunk"]:
          continue
        state, m = programs.chunk(state, hp, seg)
        _accumulate(host["sums"], m)
        host["chunk"] = ci + 1
        chunks_here += 1
        now = time.time()
        host["epoch_elapsed_s"] = now - t_epoch
        if now - last_report >= float(config.progress_every_s) or ci + 1 == n_chunks:
          rate = chunks_here / max(now - t_chunks, 1e-9)
          sums = host["sums"]
          run_loss = _ratio(sums["nll"], sums["steps"]) * task.score_scale
          left_epoch = (n_chunks - ci - 1) / max(rate, 1e-9)
          per_epoch = host["epoch_wall_s"] or (n_chunks / max(rate, 1e-9) * 1.3)
          eta = left_epoch + (max_epochs - epoch) * per_epoch
          if budget:  # the budget stops it at the first epoch end past `budget − epoch`
            spent = wall0 + (now - t_session)
            eta = min(eta, max(budget - spent, left_epoch))
          say(
            f"{task.name} epoch {epoch}/{max_epochs} chunk {ci + 1}/{n_chunks} | "
            f"{rate * k * seg_len * lanes * n_real:,.0f} run-steps/s | train "
            + " ".join(f"{x:.3f}" for x in run_loss[:n_real])
            + f" | epoch ETA {format_duration(left_epoch)}, total ≤ {format_duration(eta)}"
          )
          last_report = now
        if float(config.checkpoint_every_s) and now - last_save >= float(config.checkpoint_every_s):
          host["wall_s"] = wall0 + (now - t_session)
          save()
          last_save = now

      # End of epoch: evaluate every split with the final parameters of the epoch.
      sums = host["sums"]
      running = _ratio(sums["nll"], sums["steps"]) * task.score_scale
      scores = {split: evaluate(state.params, split, hp) for split in ("train", "valid", "test")}
      prev_rows = {r["run"]: r for r in host["history"] if r["epoch"] == epoch - 1}
      new_lr = lr.copy()
      if config.lr_halving != "none":
        metric = "train_running" if config.lr_halving == "train" else "valid"
        prev = np.asarray([_nan(prev_rows.get(i, {}).get(metric)) for i in range(n_runs)])
        cur = running if metric == "train_running" else scores["valid"]
        new_lr = halve_lr(lr, prev, cur)
      improved = np.zeros(n_runs, bool)
      for i in range(n_runs):
        v = scores["valid"][i]
        b = host["best_valid"][i]
        if np.isfinite(v) and (b is None or v < b):
          improved[i] = True
          host["best_valid"][i] = float(v)
          host["best_epoch"][i] = epoch
      best = jax.tree.map(
        lambda new, old: jnp.where(improved.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
        state.params,
        best,
      )
      alpha_now = np.asarray(hp.alpha)
      epoch_wall = time.time() - t_epoch
      for i, lab in enumerate(labels):  # padded runs are not recorded
        host["history"].append(
          dict(
            run=i,
            algorithm=lab["algorithm"],
            seed=lab["seed"],
            epoch=epoch,
            lr=float(lr[i]),
            alpha=float(alpha_now[i]),
            train_running=_finite(running[i]),
            train=_finite(scores["train"][i]),
            valid=_finite(scores["valid"][i]),
            test=_finite(scores["test"][i]),
            grad_norm=_finite(_ratio(sums["grad_norm"], sums["updates"])[i]),
            clip_rate=_finite(_ratio(sums["clipped"], sums["updates"])[i]),
            omega=_finite(_ratio(sums["omega"], sums["updates"])[i]),
            guard_fired=int(sums["fallback"][i]),
            updates=int(np.asarray(state.updates)[i]),
            epoch_wall_s=epoch_wall,
          )
        )
      say(
        f"{task.name} epoch {epoch} done in {format_duration(epoch_wall)}: valid "
        + " ".join(
          f"{lab['algorithm']}/{lab['seed']}={scores['valid'][i]:.3f}"
          for i, lab in enumerate(labels)
        )
        + (f" | lr halved for {int((new_lr < lr).sum())} run(s)" if (new_lr < lr).any() else "")
      )
      host.update(
        epoch=epoch + 1,
        chunk=0,
        lr=new_lr.tolist(),
        sums=_zero_sums(n_runs),
        epoch_elapsed_s=0.0,
        epoch_wall_s=epoch_wall,
      )
      host["wall_s"] = wall0 + (time.time() - t_session)
      min_lr = float(config.get("min_lr", 0) or 0)
      if min_lr and (new_lr < min_lr).all():
        host["stopped"] = "lr_floor"
      save()
      last_save = time.time()
      if on_epoch is not None:
        on_epoch(result())
  except KeyboardInterrupt:
    host["wall_s"] = wall0 + (time.time() - t_session)
    say(f"{task.name}: interrupted — checkpoint at epoch {host['epoch']}, chunk {host['chunk']}")
    save()
    raise
  if not host["stopped"]:
    host["stopped"] = "max_epochs"
  host["wall_s"] = wall0 + (time.time() - t_session)
  save()
  return result()


_SUMS = ("nll", "steps", "grad_norm", "updates", "clipped", "omega", "fallback")


def _zero_sums(n_runs: int) -> dict[str, list[float]]:
  return {name: [0.0] * n_runs for name in _SUMS}


def _accumulate(sums: dict[str, list[float]], m: SegmentMetrics) -> None:
  """Adds a chunk's `[runs, K]` segment metrics to the epoch's running sums (in place)."""
  loss, n = np.asarray(m.loss, np.float64), np.asarray(m.n_valid, np.float64)
  real = n > 0  # padded, empty segments make no update
  good = real & np.isfinite(loss)
  add = dict(
    nll=np.where(good, loss * n, 0.0),
    steps=np.where(good, n, 0.0),
    grad_norm=np.where(real, np.nan_to_num(np.asarray(m.grad_norm, np.float64)), 0.0),
    updates=real.astype(np.float64),
    clipped=np.where(real, np.asarray(m.clipped, np.float64), 0.0),
    omega=np.where(real, np.nan_to_num(np.asarray(m.omega, np.float64)), 0.0),
    fallback=np.where(real, np.asarray(m.fallback, np.float64), 0.0),
  )
  for name, a in add.items():
    sums[name] = (np.asarray(sums[name], np.float64) + a.sum(axis=1)).tolist()


def _ratio(num, den) -> np.ndarray:
  num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
  return np.where(den > 0, num / np.maximum(den, 1e-300), np.nan)


def _nan(x) -> float:
  return math.nan if x is None else float(x)


def _finite(x) -> float | None:
  x = float(x)
  return x if math.isfinite(x) else None
