"""Tests for experiments/runtime.py: importing the binaries changes nothing; `setup()`
does the process set-up once, and a binary started from the command line sees one XLA
device per core (the runs axis is sharded over them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_PROBE = """
import os, jax
before = dict(os.environ)
import experiments, experiments.success_rate, experiments.pathological, experiments.attractors
assert dict(os.environ) == before, "importing the binaries changed the environment"
from experiments import runtime
runtime.setup()
runtime.setup()  # idempotent
print(jax.device_count(), jax.config.jax_compilation_cache_dir, os.environ["XLA_FLAGS"])
"""


def _probe(**env) -> list[str]:
  base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "RNN_DYNAMICS_CACHE")}
  base.pop("JAX_COMPILATION_CACHE_DIR", None)
  out = subprocess.run(
    [sys.executable, "-c", _PROBE], cwd=REPO, env=dict(base, **env), check=True,
    capture_output=True, text=True, timeout=120,
  )
  return out.stdout.split()


def test_setup_gives_a_device_per_core_and_the_cache(tmp_path):
  count, cache, flags = _probe(RNN_DYNAMICS_CACHE=str(tmp_path))
  assert int(count) == (os.cpu_count() or 1)
  assert cache == str(tmp_path / "jax")
  assert flags == f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"


def test_explicit_settings_win(tmp_path):
  count, cache, _ = _probe(
    XLA_FLAGS="--xla_force_host_platform_device_count=3",
    JAX_COMPILATION_CACHE_DIR=str(tmp_path / "mine"),
  )
  assert int(count) == 3 and cache == str(tmp_path / "mine")
