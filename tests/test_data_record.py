"""A natural-task workdir records its data by file name and sha256, not by path.

A committed or copied workdir then carries no machine's path, the same files at another
path resume it, other files are refused as a different config, and `rescore` checks the
files it is pointed at against the record.
"""

import hashlib
import shutil

import numpy as np
import pytest
import scipy.io

from experiments import polyphonic, validation
from experiments.configs import char_lm as char_lm_config
from experiments.configs import polyphonic as polyphonic_config
from rnn_dynamics import natural
from rnn_dynamics.errors import ConfigError
from rnn_dynamics.natural import rescore
from rnn_dynamics.workdir import Workdir, WorkdirConfigMismatch


def _write_mat(path, seed=0):
  """A small music data set in the standard .mat form: two 24-step songs per split."""
  rng = np.random.default_rng(seed)
  cells = {}
  for key in ("traindata", "validdata", "testdata"):
    cells[key] = np.empty((1, 2), dtype=object)
    for i in range(2):
      cells[key][0, i] = (rng.random((24, 88)) < 0.05).astype(np.uint8)
  path.parent.mkdir(parents=True, exist_ok=True)
  scipy.io.savemat(path, cells)
  return path


def _sha(path):
  return hashlib.sha256(path.read_bytes()).hexdigest()


def _music(data_path, **fields):
  c = polyphonic_config.get_config("test")
  c.dataset, c.data_path = "jsb", str(data_path)
  c.update(fields)
  return polyphonic_config.resolve(validation.validate(c, "polyphonic"))


def _ptb(folder):
  for split in ("train", "valid", "test"):
    (folder / f"ptb.{split}.txt").write_text(f" the {split} cat sat on the mat \n")
  c = char_lm_config.get_config("test")
  c.dataset, c.data_path = "ptb", str(folder)
  return char_lm_config.resolve(validation.validate(c, "char_lm"))


def test_music_is_recorded_by_name_and_checksum(tmp_path):
  here = _write_mat(tmp_path / "a" / "JSB_Chorales.mat")
  there = tmp_path / "b" / "JSB_Chorales.mat"
  there.parent.mkdir()
  shutil.copy(here, there)
  record = natural.recorded(_music(here))
  assert record.data_path == "JSB_Chorales.mat"
  assert list(record.data_sha256) == [f"{_sha(here)}  JSB_Chorales.mat"]
  assert str(tmp_path) not in record.to_json()
  # A folder holding the file records the same, and so does a copy elsewhere.
  assert natural.recorded(_music(here.parent)).to_json() == record.to_json()
  assert natural.recorded(_music(there)).to_json() == record.to_json()
  # The config used for training is unchanged.
  assert _music(here).data_path == str(here)


def test_text_is_recorded_per_file(tmp_path):
  folder = tmp_path / "ptb"
  folder.mkdir()
  record = natural.recorded(_ptb(folder))
  assert record.data_path == "ptb"
  assert list(record.data_sha256) == [
    f"{_sha(folder / f'ptb.{s}.txt')}  ptb.{s}.txt" for s in ("train", "valid", "test")
  ]


def test_built_in_data_sets_record_nothing():
  for config in (polyphonic_config.get_config("test"), char_lm_config.get_config("test")):
    assert natural.recorded(config) is config  # synthetic: no file, no field added


def test_the_same_file_elsewhere_resumes_and_another_file_is_refused(tmp_path):
  here = _write_mat(tmp_path / "a" / "JSB_Chorales.mat")
  moved = tmp_path / "b" / "JSB_Chorales.mat"
  moved.parent.mkdir()
  shutil.copy(here, moved)
  other = _write_mat(tmp_path / "c" / "JSB_Chorales.mat", seed=1)
  workdir = tmp_path / "wd"
  Workdir(workdir, natural.recorded(_music(here))).close()
  Workdir(workdir, natural.recorded(_music(moved))).close()  # resumes: same name, same bytes
  with pytest.raises(WorkdirConfigMismatch, match="data_sha256"):
    Workdir(workdir, natural.recorded(_music(other)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """The polyphonic binary's `run` on a small .mat, one epoch; (workdir, data file)."""
  root = tmp_path_factory.mktemp("record")
  data = _write_mat(root / "data" / "JSB_Chorales.mat")
  workdir = root / "wd"
  polyphonic.run(_music(data, max_epochs=1), str(workdir))
  return workdir, data


def test_the_binary_writes_no_path_and_resumes_from_a_moved_file(trained, tmp_path):
  workdir, data = trained
  saved = Workdir.open(workdir).config
  assert saved["data_path"] == "JSB_Chorales.mat" and str(data.parent) not in str(saved)
  assert saved["data_sha256"] == [f"{_sha(data)}  JSB_Chorales.mat"]
  moved = tmp_path / "elsewhere" / "JSB_Chorales.mat"
  moved.parent.mkdir()
  shutil.copy(data, moved)
  Workdir(workdir, natural.recorded(_music(moved, max_epochs=1))).close()  # no mismatch


def test_rescore_asks_where_the_data_is_and_checks_it(trained, tmp_path):
  workdir, data = trained
  with pytest.raises(ConfigError, match=r"pass where it is now with --data_path=.*JSB_Chorales"):
    rescore.rescore(workdir, "test")
  other = _write_mat(tmp_path / "JSB_Chorales.mat", seed=2)
  with pytest.raises(ConfigError, match="holds other data than the run was trained on"):
    rescore.rescore(workdir, "test", str(other))

