"""The throughput benchmark on a tiny size: it runs, and its JSON and summary line are sound;
its autodiff peer computes the engine's gradient."""

import json
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import throughput
from rnn_dynamics import rnn
from rnn_dynamics.regularizers import omega_and_grad
from rnn_dynamics.tasks import get_task

_TINY = throughput.Plan(
  lengths=(10,),
  run_counts=(2,),
  algorithms=("sgd_c", "sgd_cr"),
  torch_lengths=(10,),
  torch_algorithms=("sgd_c", "sgd_cr"),
  torch_nn_rnn=("sgd_c",),
  autodiff_lengths=(10,),
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
  assert {"matmul", "step_product", "jax", "autodiff"} <= sides
  assert ("torch" in sides) == has_torch
  for case in results["cases"]:
    assert len(case["seconds"]) == _TINY.rounds
    assert case["median_s"] > 0 and math.isfinite(case["gflops"]) and case["gflops"] > 0
    if case["side"] not in ("matmul", "step_product"):
      assert case["run_updates_per_s"] > 0 and math.isfinite(case["run_updates_per_s"])

  summary = results["summary"]
  names = ["ratio_vs_torch", "omega_overhead", "matmul_fraction", "ratio_vs_autodiff"]
  names += ["ratio_vs_autodiff_per_cpu_s"]
  for name in names if has_torch else names[1:]:
    assert math.isfinite(summary[name]) and summary[name] > 0, name
  assert math.isfinite(summary["step_product_fraction"]) and summary["step_product_fraction"] > 0

  line = throughput.summary_line(results)
  m = re.fullmatch(
    r"ratio_vs_torch=(\S+) omega_overhead=(\S+) matmul_fraction=(\S+) ratio_vs_autodiff=(\S+)",
    line,
  )
  assert m, line
  assert [float(x) for x in m.groups()][1:] == [
    float(f"{summary['omega_overhead']:.3f}"),
    float(f"{summary['matmul_fraction']:.3f}"),
    float(f"{summary['ratio_vs_autodiff']:.2f}"),
  ]

  path = tmp_path / "throughput.json"
  throughput.write_json(results, str(path))
  loaded = json.loads(path.read_text(), parse_constant=_reject)  # strict: no NaN, Infinity
  assert loaded["machine"]["device_count"] >= 1 and loaded["machine"]["jax"]
  assert all(math.isfinite(x) for x in _numbers(loaded))
  table = throughput.format_table(results)
  assert "run-updates per second" in table and "x autodiff@2" in table


@pytest.mark.parametrize("alpha", [0.0, 4.0])
def test_autodiff_peer_gradient_is_the_engines(alpha):
  """The peer (jax.grad through a plain scan, Ω by autodiff through zero probes) and the
  engine (hand-written BPTT, Ω from the saved adjoint norms) agree on one batch, so the
  benchmark's `x autodiff` compares two ways of writing the same update."""
  task = get_task("temporal_order")
  length, batch, hidden = 12, 5, 8
  # Weights large enough that the adjoints neither vanish nor stay trivial over 12 steps.
  params = rnn.init_params(jax.random.PRNGKey(3), task.n_in, hidden, task.n_out, "basic_tanh")
  params = params.replace(w_hh=params.w_hh * 8.0, w_in=params.w_in * 5.0)
  b = task.sample(jax.random.PRNGKey(4), batch, jnp.int32(length), task.buffer_length(length))
  assert bool(jnp.all(b.mask)), "the peer assumes fixed-length batches"

  loss, grads, fwd = rnn.loss_and_grads(params, rnn.TANH, b, task.head)
  om, om_grad, kept = omega_and_grad(
    params.w_hh, fwd.adjoints, fwd.unroll.dsigma_TxBxH, b.mask, form="original", bound=1e-20
  )
  if alpha:
    grads = grads.replace(w_hh=grads.w_hh + alpha * om_grad)
  peer_loss, peer_grads, peer_om = jax.jit(
    lambda p, x, y: throughput.autodiff_loss_and_grads(p, x, y, alpha=alpha, bound=1e-20)
  )(throughput.autodiff_params(params), b.inputs, b.targets)

  np.testing.assert_allclose(peer_loss, loss, rtol=1e-6)
  for name, want in throughput.autodiff_params(grads).items():
    got = peer_grads[name]
    scale = float(jnp.max(jnp.abs(want)))
    assert scale > 1e-4, f"{name}: a vanishing gradient would make the check trivial"
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * scale, err_msg=name)
  if alpha:
    assert float(kept) == 1.0 and float(om) > 1e-3  # every entry counts, Ω is not trivial
    np.testing.assert_allclose(peer_om, om, rtol=1e-5)
    # Ω's part of the gradient is itself sizeable, so it is checked, not drowned out.
    assert float(jnp.max(jnp.abs(alpha * om_grad))) > 0.1 * float(jnp.max(jnp.abs(grads.w_hh)))
  else:
    assert bool(jnp.isnan(peer_om))
