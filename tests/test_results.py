"""Tests for rnn_dynamics/results.py: the one writer (atomic, readable by others) and the
one JSON conversion (NumPy values, NaN/Inf → null)."""

from __future__ import annotations

import json
import stat

import jax.numpy as jnp
import numpy as np
import pytest

from rnn_dynamics import results
from rnn_dynamics.errors import CorruptFileError


def test_to_jsonable_converts_numpy_and_jax_values():
  value = {
    1: np.float32(0.5),
    "a": np.arange(3),
    "b": (np.bool_(True), np.int64(7)),
    "c": [float("nan"), np.inf, -np.inf],
    "d": jnp.asarray([1.0, jnp.nan]),
  }
  assert results.to_jsonable(value) == {
    "1": 0.5, "a": [0, 1, 2], "b": [True, 7], "c": [None, None, None], "d": [1.0, None],
  }
  json.dumps(results.to_jsonable(value), allow_nan=False)


def test_write_json_is_atomic_and_shared(tmp_path):
  path = tmp_path / "sub" / "x.json"
  results.write_json(path, {"b": 1, "a": np.float64("nan")}, sort_keys=True)
  assert path.read_text() == '{\n  "a": null,\n  "b": 1\n}\n'
  assert stat.S_IMODE(path.stat().st_mode) == 0o644
  assert [p.name for p in path.parent.iterdir()] == ["x.json"]  # no temporary file left


def test_write_results_writes_csv_and_json_with_every_column(tmp_path):
  rows = [dict(seed=0, solved=True), dict(seed=1, error=np.float32(0.25))]
  results.write_results(tmp_path / "t", rows)
  assert results.read_results(tmp_path / "t") == [
    dict(seed=0, solved=True), dict(seed=1, error=0.25)
  ]
  csv = (tmp_path / "t.csv").read_text().splitlines()
  assert csv == ["seed,solved,error", "0,True,", "1,,0.25"]


@pytest.mark.parametrize("compressed", [True, False])
def test_write_npz_round_trips(tmp_path, compressed):
  results.write_npz(tmp_path / "a.npz", {"x": np.arange(6).reshape(2, 3)}, compressed=compressed)
  with np.load(tmp_path / "a.npz") as z:
    np.testing.assert_array_equal(z["x"], np.arange(6).reshape(2, 3))


def test_a_damaged_file_is_named_with_its_remedy(tmp_path):
  (tmp_path / "r.json").write_text('[{"seed": 0')
  with pytest.raises(CorruptFileError, match="r.json is damaged.*delete it"):
    results.read_results(tmp_path / "r")
