"""The natural tasks (music, text), their sanity baselines and small generated data sets."""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import numpy as np

from rnn_dynamics.natural.segments import Segments, music_segments, text_segments

__all__ = [
  "LN2",
  "NaturalTask",
  "frequency_baseline",
  "music_task",
  "synthetic_music",
  "synthetic_text",
  "text_task",
  "unigram_baseline",
]

LN2 = math.log(2.0)


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
