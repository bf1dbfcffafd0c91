"""The throughput benchmark on a tiny size: it runs, and its JSON and summary line are sound."""

import json
import math
import re

from benchmarks import throughput

_TINY = throughput.Plan(
  lengths=(10,),
  run_counts=(2,),
  algorithms=("sgd_c", "sgd_cr"),
  torch_lengths=(10,),
  torch_algorithms=("sgd_c", "sgd_cr"),
  torch_nn_rnn=("sgd_c",),
  chunk_steps=40,
  rounds=1,
  torch_block_s=0.02,
  matmul_size=64,
  ref_length=10,
  ref_runs=2,
)


def _reject(constant):
  raise AssertionError(f"non-standard JSON constant {constant}")


def _numbers(tree):
  if isinstance(tree, dict):
    for v in tree.values():
      yield from _numbers(v)
  elif isinstance(tree, list):
    for v in tree:
      yield from _numbers(v)
  elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
    yield tree


def test_tiny_run_gives_positive_finite_numbers_json_and_summary(tmp_path):
  results = throughput.run_benchmark(_TINY, log=lambda _: None)
  has_torch = throughput.torch is not None

  sides = {c["side"] for c in results["cases"]}
  assert {"matmul", "step_product", "jax"} <= sides
  assert ("torch" in sides) == has_torch
  for case in results["cases"]:
    assert len(case["seconds"]) == _TINY.rounds
    assert case["median_s"] > 0 and math.isfinite(case["gflops"]) and case["gflops"] > 0
    if case["side"] not in ("matmul", "step_product"):
      assert case["run_updates_per_s"] > 0 and math.isfinite(case["run_updates_per_s"])

  summary = results["summary"]
  names = ["ratio_vs_torch", "omega_overhead", "matmul_fraction"]
  for name in names if has_torch else names[1:]:
    assert math.isfinite(summary[name]) and summary[name] > 0, name
  assert math.isfinite(summary["step_product_fraction"]) and summary["step_product_fraction"] > 0

  line = throughput.summary_line(results)
  m = re.fullmatch(r"ratio_vs_torch=(\S+) omega_overhead=(\S+) matmul_fraction=(\S+)", line)
  assert m, line
  assert [float(x) for x in m.groups()][1:] == [
    float(f"{summary['omega_overhead']:.3f}"),
    float(f"{summary['matmul_fraction']:.3f}"),
  ]

  path = tmp_path / "throughput.json"
  throughput.write_json(results, str(path))
  loaded = json.loads(path.read_text(), parse_constant=_reject)  # strict: no NaN, Infinity
  assert loaded["machine"]["device_count"] >= 1 and loaded["machine"]["jax"]
  assert all(math.isfinite(x) for x in _numbers(loaded))
  assert "run-updates per second" in throughput.format_table(results)
