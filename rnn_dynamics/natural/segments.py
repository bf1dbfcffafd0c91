"""A split of a natural data set laid out as lanes of fixed-length segments.

Music: each lane plays whole songs one after the other; the input at step t is the frame
at t − 1 (a silent frame at a song's start), the target the frame at t, so every frame of
a song is scored. A song starts at a segment boundary (its last segment is padded), where
the state is reset to zero. Text: the symbol stream is split into `n_lanes` contiguous
pieces; the input at step t is symbol t, the target symbol t + `target_offset` (1: next
character; 5: the paper's fifth character ahead, docs/reference.md §4).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

__all__ = [
  "Segments",
  "music_segments",
  "pad_segments",
  "shift_targets",
  "split_chunks",
  "text_segments",
]


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


def split_chunks(seg: Segments, k: int):
  """The segments in consecutive batches of `k` (one compiled call each)."""
  for i in range(0, seg.n_segments, k):
    yield Segments(*(a[i : i + k] for a in seg))
