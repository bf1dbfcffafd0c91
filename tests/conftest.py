"""Shared test set-up: float64 where asked, a persistent compilation cache, and a
comparison of two workdirs' results."""

import csv
import io
import json
import os
import re
import tempfile
from pathlib import Path

import jax
import numpy as np
import pytest

# Compiled programs are reused across test processes (the subprocess tests in particular).
os.environ.setdefault(
  "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "rnn_dynamics_test_jax_cache")
)
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
# Implicit rank promotion hides shape bugs; every test runs with it off (one setting for
# the whole session, so the outcome does not depend on which modules share a worker).
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
  """Runs a test in float64 (gradient checks against finite differences need it)."""
  jax.config.update("jax_enable_x64", True)
  try:
    yield
  finally:
    jax.config.update("jax_enable_x64", False)


_TIMING = re.compile(r"(time|wall|elapsed|_s$)", re.I)


def _strip_timing(x):
  if isinstance(x, dict):
    return {k: _strip_timing(v) for k, v in x.items() if not _TIMING.search(str(k))}
  if isinstance(x, list):
    return [_strip_timing(v) for v in x]
  return x


def _result_files(root: Path) -> list[str]:
  return sorted(
    str(p.relative_to(root))
    for p in root.rglob("*")
    if p.suffix in (".json", ".csv", ".npz")
    and "checkpoints" not in p.relative_to(root).parts
    and p.name != "config.json"
  )


@pytest.fixture
def same_results():
  """`same_results(a, b)` asserts that two workdirs hold the same results: every `.json`,
  `.csv` and `.npz` file (checkpoints and `config.json` aside) equal, bit for bit, except
  fields that are wall-clock measurements (names with time, wall, elapsed or ending `_s`)."""

  def check(a, b):
    a, b = Path(a), Path(b)
    files = _result_files(a)
    assert files and files == _result_files(b)
    for rel in files:
      pa, pb = a / rel, b / rel
      if rel.endswith(".json"):
        assert _strip_timing(json.loads(pa.read_text())) == _strip_timing(
          json.loads(pb.read_text())
        ), rel
      elif rel.endswith(".csv"):
        rows = lambda p: _strip_timing(list(csv.DictReader(io.StringIO(p.read_text()))))
        assert rows(pa) == rows(pb), rel
      else:
        with np.load(pa) as za, np.load(pb) as zb:
          assert za.files == zb.files, rel
          for k in za.files:
            x, y = za[k], zb[k]
            assert x.dtype == y.dtype and x.shape == y.shape, f"{rel}:{k}"
            assert np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"), f"{rel}:{k}"

  return check
