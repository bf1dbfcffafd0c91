"""The throughput benchmark on a tiny size: it runs, and its JSON and summary line are sound;
its autodiff peer and its batched PyTorch peers compute the engine's gradient."""

import dataclasses
import json
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from benchmarks import accelerator, throughput, torch_peers
from experiments.configs import success_rate
from rnn_dynamics import algorithms, cells, rnn
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
  mixed_range=(10, 14),
  length_buckets=2,
  compaction_runs=(12, 2),
  lyapunov_trace=(2, 2),
  batched_lengths=(10,),
  # One cheap autodiff cell, with Ω; its length apart from the paper RNN's so that every
  # case below is found by its key alone.
  cells=("irnn",),
  cell_algorithms=("sgd_cr",),
  cell_lengths=(12,),
  cell_runs=2,
  torch_processes=2,
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
  assert {"matmul", "step_product", "jax", "autodiff", "mixed", "compaction"} <= sides
  assert "lyapunov_trace" in sides
  programs = {
    c["program"]: c["program_runs"] for c in results["cases"] if c["side"] == "compaction"
  }
  assert programs["carried"] == 12 and programs["compacted"] < 12
  assert ("torch" in sides) == has_torch
  assert ({"torch_batched", "torch_per_core"} <= sides) == has_torch
  for case in results["cases"]:
    assert len(case["seconds"]) == _TINY.rounds
    assert case["median_s"] > 0 and math.isfinite(case["gflops"])
    # Flops are counted for the paper's RNN only.
    assert (case["gflops"] > 0) == (case.get("cell", "rnn") == "rnn"), case
    if case["side"] not in ("matmul", "step_product"):
      assert case["run_updates_per_s"] > 0 and math.isfinite(case["run_updates_per_s"])

  summary = results["summary"]
  names = ["ratio_vs_torch", "omega_overhead", "matmul_fraction", "ratio_vs_autodiff"]
  names += ["ratio_vs_autodiff_per_cpu_s", "mixed_length_speedup", "compaction_speedup"]
  names += ["lyapunov_trace_overhead"]
  for name in names if has_torch else names[1:]:
    assert math.isfinite(summary[name]) and summary[name] > 0, name
  assert math.isfinite(summary["step_product_fraction"]) and summary["step_product_fraction"] > 0

  # The summary is made of the measured times, not merely positive: with one round, each
  # case's rate is its work per block over that round's seconds, and every ratio is the
  # quotient of the two rates it names (the engine's SGD-CR at the reference point).
  def case(**key):
    (c,) = [c for c in results["cases"] if all(c.get(k) == v for k, v in key.items())]
    return c

  rate = lambda c: c["run_updates_per_block"] / c["seconds"][0]  # noqa: E731
  flop_rate = lambda c: c["gflops"] * 1e9  # noqa: E731
  for c in results["cases"]:
    assert c["median_s"] == c["seconds"][0] == c["best_s"]
    if "run_updates_per_block" in c:
      assert c["run_updates_per_s"] == pytest.approx(rate(c))
  ref = dict(side="jax", length=_TINY.ref_length, runs=_TINY.ref_runs)
  cr, c = case(algorithm="sgd_cr", **ref), case(algorithm="sgd_c", **ref)
  autodiff = case(side="autodiff", algorithm="sgd_cr", length=_TINY.ref_length)
  assert summary["omega_overhead"] == pytest.approx(rate(c) / rate(cr))
  assert summary["ratio_vs_autodiff"] == pytest.approx(rate(cr) / rate(autodiff))
  fast, slow = case(side="mixed", buckets=_TINY.length_buckets), case(side="mixed", buckets=1)
  assert summary["mixed_length_speedup"] == pytest.approx(rate(fast) / rate(slow))
  fast, slow = case(side="compaction", program="compacted"), case(program="carried")
  assert summary["compaction_speedup"] == pytest.approx(rate(fast) / rate(slow))
  # The sweep step (chunk of the preset's size + screen) without and with the exponents.
  bare, traced = case(side="lyapunov_trace", k=0), case(side="lyapunov_trace", k=2)
  assert bare["chunk_size"] == success_rate.get_config(_TINY.preset).chunk_size
  assert summary["lyapunov_trace_overhead"] == pytest.approx(rate(bare) / rate(traced))
  ceiling = max(flop_rate(m) for m in results["cases"] if m["side"] == "matmul")
  assert summary["matmul_fraction"] == pytest.approx(flop_rate(cr) / ceiling)
  step = case(side="step_product")
  assert summary["step_product_fraction"] == pytest.approx(flop_rate(cr) / flop_rate(step))
  if has_torch:
    torch_cr = case(side="torch", algorithm="sgd_cr", length=_TINY.ref_length)
    assert summary["ratio_vs_torch"] == pytest.approx(rate(cr) / rate(torch_cr))

  # Against the peers: every ratio is the quotient of the two rates, the strongest peer
  # the fastest (per CPU-second: the most efficient), for the paper's RNN and the cell.
  cpu_rate = lambda c: c["run_updates_per_block"] / c["cpu_seconds"][0]  # noqa: E731
  peer_sides = ("torch_batched", "torch_per_core", "autodiff") if has_torch else ("autodiff",)
  workloads = [("rnn", "sgd_c", _TINY.ref_length), ("rnn", "sgd_cr", _TINY.ref_length)]
  workloads += [("irnn", "sgd_cr", 12)] if has_torch else []
  rows = {(r["cell"], r["algorithm"], r["length"]): r for r in results["peers"]}
  assert set(rows) == set(workloads)
  for cell, alg, length in workloads:
    r = rows[(cell, alg, length)]
    key = dict(algorithm=alg, length=length, runs=_TINY.ref_runs)
    engine = case(side="jax", **key, **({} if cell == "rnn" else {"cell": cell}))
    peers = {
      side: case(side=side, **key, **({} if side == "autodiff" else {"cell": cell}))
      for side in peer_sides
      if side != "autodiff" or cell == "rnn"
    }
    assert r["engine"] == pytest.approx(rate(engine))
    for side, p in peers.items():
      assert r[side] == pytest.approx(rate(p))
      assert r[f"ratio_vs_{side}"] == pytest.approx(rate(engine) / rate(p))
      assert r[f"ratio_vs_{side}_per_cpu_s"] == pytest.approx(cpu_rate(engine) / cpu_rate(p))
    fastest = max(peers, key=lambda side: rate(peers[side]))
    assert r["strongest"] == fastest
    assert r["ratio_vs_strongest"] == pytest.approx(rate(engine) / rate(peers[fastest]))
    leanest = max(peers, key=lambda side: cpu_rate(peers[side]))
    assert r["strongest_per_cpu_s"] == leanest
    assert r["ratio_vs_strongest_per_cpu_s"] == pytest.approx(
      cpu_rate(engine) / cpu_rate(peers[leanest])
    )
  if has_torch:
    per_core = case(side="torch_per_core", cell="irnn")
    # Two workers of one run each; their CPU time is counted, not only this process's.
    assert per_core["processes"] == 2 and per_core["threads"] == 1
    assert per_core["cpu_seconds"][0] > 0.05 * per_core["seconds"][0]
  ref = rows[("rnn", "sgd_cr", _TINY.ref_length)]
  assert summary["ratio_vs_strongest"] == ref["ratio_vs_strongest"]
  assert summary["strongest_peer"] == ref["strongest"]

  line = throughput.summary_line(results)
  m = re.fullmatch(
    r"ratio_vs_torch=(\S+) omega_overhead=(\S+) matmul_fraction=(\S+) "
    r"mixed_length_speedup=(\S+) compaction_speedup=(\S+) ratio_vs_autodiff=(\S+) "
    r"ratio_vs_strongest=(\S+) strongest_peer=(\S+)",
    line,
  )
  assert m, line
  assert [float(x) for x in m.groups()[1:-1]] == [
    float(f"{summary['omega_overhead']:.3f}"),
    float(f"{summary['matmul_fraction']:.3f}"),
    float(f"{summary['mixed_length_speedup']:.2f}"),
    float(f"{summary['compaction_speedup']:.2f}"),
    float(f"{summary['ratio_vs_autodiff']:.2f}"),
    float(f"{summary['ratio_vs_strongest']:.2f}"),
  ]
  assert m.group(8) == summary["strongest_peer"]

  path = tmp_path / "throughput.json"
  throughput.write_json(results, str(path))
  loaded = json.loads(path.read_text(), parse_constant=_reject)  # strict: no NaN, Infinity
  assert loaded["machine"]["device_count"] >= 1 and loaded["machine"]["jax"]
  assert all(math.isfinite(x) for x in _numbers(loaded))
  table = throughput.format_table(results)
  assert "run-updates per second" in table and "x autodiff@2" in table
  assert "mixed_length_speedup" in table and "compaction_speedup" in table
  assert "lyapunov_trace_overhead" in table and "top-2 exponents traced" in table
  assert "x strongest" in table
  assert any(line.split()[:2] == ["irnn", "SGD-CR"] for line in table.splitlines()) == has_torch


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


def test_every_cell_has_a_torch_peer():
  assert set(torch_peers.CELLS) == set(cells.CELLS)


@pytest.mark.parametrize("alpha", [0.0, 4.0])
@pytest.mark.parametrize("cell", cells.CELLS)
def test_batched_torch_peer_update_is_the_engines(cell, alpha):
  """Two runs with their own weights: the peer's loss, Ω and gradient equal the engine's
  (`Model.loss_and_grads`, vmapped) to float32 round-off, and one `Batched` update equals
  the engine's optimizer step (norm clipping per run, then SGD), with the threshold
  between the two runs' gradient norms so that exactly one run is clipped."""
  torch = pytest.importorskip("torch")
  task = get_task("temporal_order")
  runs, length, batch, hidden, lr = 2, 12, 5, 6, 0.1
  model = cells.get_model(cell)
  hp = algorithms.hparams("sgd_cr", lr=lr, clip=1.0, alpha=alpha, init="basic_tanh")
  keys = jax.random.split(jax.random.PRNGKey(3), runs)
  params = jax.vmap(lambda k: model.init(k, task.n_in, hidden, task.n_out, hp))(keys)
  if cell == "rnn":  # weights large enough that the adjoints neither vanish nor stay trivial
    params = params.replace(w_hh=params.w_hh * 8.0, w_in=params.w_in * 5.0)
  if cell == "irnn":  # its N(0, 0.001²) input and readout weights give gradients of ~1e-5
    cell_params = dict(params.cell, w_in=params.cell["w_in"] * 100.0)
    params = params.replace(cell=cell_params, w_out=params.w_out * 100.0)
  if cell == "exprnn":  # a modReLU threshold that cuts units, or Ω would be ≈ 0
    params = params.replace(cell=dict(params.cell, b=params.cell["b"] - 0.5))
  data = jax.random.split(jax.random.PRNGKey(4), runs)
  b = jax.vmap(lambda k: task.sample(k, batch, jnp.int32(length), task.buffer_length(length)))(data)
  assert bool(jnp.all(b.mask)), "the peer assumes fixed-length batches"
  cfg = success_rate.get_config("cpu")

  @jax.jit
  def engine(params, b):
    def grads(alpha_on):
      omega = cells.OmegaSettings(hp.alpha * alpha_on, bool(alpha) and alpha_on, "original", 1e-20)
      return jax.vmap(lambda p, x: model.loss_and_grads(p, hp, x, task.head, omega))(params, b)

    want, plain = grads(True), grads(False).grads
    norms = jax.vmap(optax.tree.norm)(want.grads)
    clip = jnp.sqrt(norms[0] * norms[1])  # between the two: one run clipped, one not
    opt = algorithms.make_optimizer(cfg, hp.replace(clip=clip), model.decay_path)

    def step(p, g):
      updates, _ = opt.update(g, opt.init(p), p)
      return optax.apply_updates(p, updates)

    return want, plain, norms, clip, jax.vmap(step)(params, want.grads)

  want, plain, norms, clip, stepped = engine(params, b)

  p = {k: torch.tensor(v, requires_grad=True) for k, v in torch_peers.to_peer(cell, params).items()}
  inputs, targets = np.array(b.inputs), np.array(b.targets)
  loss, grads, om = torch_peers.loss_and_grads(
    cell, p, torch.from_numpy(inputs), torch.from_numpy(targets).long(), alpha=alpha
  )
  np.testing.assert_allclose(loss.numpy(), want.loss, rtol=1e-5)
  engine_grads = torch_peers.to_peer(cell, want.grads)
  for name, g in engine_grads.items():
    scale = float(np.max(np.abs(g)))
    assert scale > 1e-4, f"{name}: a vanishing gradient would make the check trivial"
    np.testing.assert_allclose(grads[name].numpy(), g, rtol=1e-4, atol=3e-5 * scale, err_msg=name)
  if alpha:
    assert float(np.min(want.omega)) > 1e-3  # Ω is not trivial in either run
    np.testing.assert_allclose(om.numpy(), want.omega, rtol=1e-4)
    # Ω's part of the gradient is itself sizeable, so it is checked, not drowned out —
    # except expRNN's, which is 0: with W orthogonal and modReLU piecewise linear,
    # ‖δ_t ∂h_t/∂h_{t-1}‖ does not depend on the parameters.
    part = max(
      float(jnp.max(jnp.abs(a - c)))
      for a, c in zip(jax.tree.leaves(want.grads), jax.tree.leaves(plain))
    )
    largest = max(float(np.max(np.abs(g))) for g in engine_grads.values())
    assert (part > 0.05 * largest) == (cell != "exprnn"), (part, largest)
  else:
    assert om is None

  # One update: the engine's optimizer (its clip inside the guard, then SGD) per run.
  assert abs(float(norms[0] - norms[1])) > 1e-3 * float(norms.max()), "norms must differ"
  job = torch_peers.Batched(
    cell,
    torch_peers.to_peer(cell, params),
    inputs[None],
    targets[None],
    lr=lr,
    clip=float(clip),
    alpha=alpha,
  )
  job.update()
  before = torch_peers.to_peer(cell, params)
  for name, value in torch_peers.to_peer(cell, stepped).items():
    # The step, compared as the gradients are (the parameters hide its round-off).
    got, want_step = job.p[name].detach().numpy() - before[name], value - before[name]
    scale = float(np.max(np.abs(want_step)))
    np.testing.assert_allclose(got, want_step, rtol=1e-4, atol=3e-5 * scale, err_msg=name)


# --- benchmarks/accelerator.py ---------------------------------------------------------


def test_projection_model_by_hand():
  a, b = accelerator.fit_affine({50: 0.011, 200: 0.041})
  assert a == pytest.approx(0.001) and b == pytest.approx(0.0002)
  # A negative intercept is clamped: slope through the origin, Σ T·y / Σ T².
  assert accelerator.fit_affine({50: 0.01, 200: 0.05}) == pytest.approx((0.0, 10.5 / 42500))
  assert accelerator.fit_affine({40: 0.02}) == pytest.approx((0.0, 0.0005))
  # Noise larger than the step cost (busy machine, close lengths): flat, never a negative slope.
  assert accelerator.fit_affine({10: 0.0031, 12: 0.0029}) == pytest.approx((0.003, 0.0))

  points = {45: 0.01, 405: 0.02}
  at = lambda n: accelerator.seconds_per_update_at(points, n)
  assert [at(10), at(45), at(225), at(405), at(810)] == pytest.approx(
    [0.01, 0.01, 0.015, 0.02, 0.04]
  )

  rows = [
    *(
      {"length": 10, "algorithm": "sgd_c", "solved": True, "updates_to_solve": u}
      for u in (100, 200, 600)
    ),
    {"length": 10, "algorithm": "sgd_c", "solved": False, "updates_to_solve": None},
    {"length": 10, "algorithm": "sgd_cr", "solved": True, "updates_to_solve": 7000},
    {"length": 10, "algorithm": "sgd_cr", "solved": False, "updates_to_solve": None},
    {
      "length": 99,
      "algorithm": "sgd",
      "solved": True,
      "updates_to_solve": 1,
    },  # not a preset length
  ]
  decided = accelerator.decided_updates(
    rows,
    lengths=(10, 20),
    algorithms=("sgd", "sgd_c", "sgd_cr"),
    runs_per_algorithm=2,
    max_updates=5000,
  )
  # sgd: no rows → budget; sgd_c: ¾ solved → 2 of 2 at the median 200; sgd_cr: ½ → 1 of 2,
  # at its median 7000 capped to the budget.
  assert decided == {10: [5000, 5000, 200, 200, 5000, 5000], 20: [5000] * 6}

  p = accelerator.project_wall_s(
    {10: 0.002, 20: 0.004}, {10: [100, 250], 20: [5000, 5000]}, 100, {10: 0.001, 20: 0.003}
  )
  assert p["per_length"][10] == pytest.approx({"updates": 300, "group_s": 0.6, "packed_s": 0.35})
  assert p["per_length"][20] == pytest.approx({"updates": 5000, "group_s": 20.0, "packed_s": 30.0})
  assert p["total_s"] == pytest.approx(20.6) and p["packed_s"] == pytest.approx(30.35)


# Few compiles: one algorithm, two lengths (the fit needs two), two sizes, two unrolls.
_TINY_CHECK = dataclasses.replace(accelerator.TINY, algorithms=("sgd_cr",))


def test_accelerator_tiny_run_measures_and_projects(tmp_path):
  rows = [
    {"length": 10, "algorithm": a, "solved": True, "updates_to_solve": 3000}
    for a in ("sgd", "sgd_c", "sgd_cr")
  ]
  results = accelerator.run_check(_TINY_CHECK, solve_rows=rows, log=lambda _: None)
  meas = results["measurements"]
  want = {(t, n, 1) for t in (10, 12) for n in (2, 4)} | {(t, 2, 2) for t in (10, 12)}
  assert {(m["length"], m["runs"], m["unroll"]) for m in meas} == want
  for m in meas:
    assert m["status"] == "ok", m
    assert m["update_s"] == pytest.approx(m["call_s"] / m["updates_per_call"])
    assert m["step_us"] == pytest.approx(m["update_s"] / (2 * m["length"]) * 1e6)
    assert m["run_updates_per_s"] == pytest.approx(m["runs"] / m["update_s"])
  assert isinstance(results["unroll_honored"], bool)

  p = results["projection"]
  cfg = success_rate.get_config("paper")
  assert p["group_runs"] == len(cfg.inits) * len(cfg.algorithms) * cfg.seeds
  a, b = p["update_s_fit"]["a"], p["update_s_fit"]["b"]
  # The fit itself is tested above; here only that it is the fit of what was measured
  # (timings at T = 10 and 12 are too close to promise b > 0 on a loaded machine).
  assert (a, b) == pytest.approx(accelerator.fit_affine(p["update_s_fit"]["measured"]))
  assert b >= 0 and a >= 0
  # Worst case: every length runs the whole budget at the fitted time per update.
  worst = sum((a + b * t) * cfg.max_updates for t in cfg.lengths)
  assert p["worst"]["total_s"] == pytest.approx(worst)
  # Every run at T=10 solved after 3000 updates: that group stops at its first chunk.
  solve = p["with_solve_times"]["per_length"]
  assert solve[10]["updates"] == cfg.chunk_size * -(-3000 // cfg.chunk_size)
  assert solve[20]["updates"] == cfg.max_updates
  assert p["with_solve_times"]["total_s"] < p["worst"]["total_s"]

  path = tmp_path / "accelerator.json"
  throughput.write_json(results, str(path))
  loaded = json.loads(path.read_text(), parse_constant=_reject)
  assert all(math.isfinite(x) for x in _numbers(loaded))
  report = accelerator.format_report(results)
  assert "projected wall time" in report and "unroll 2" in report


def test_accelerator_respects_a_spent_budget():
  results = accelerator.run_check(
    dataclasses.replace(_TINY_CHECK, budget_s=0.0), log=lambda _: None
  )
  assert results["measurements"] and all(
    m["status"] == "skipped" and "budget" in m["reason"] for m in results["measurements"]
  )
  assert results["projection"] is None
  report = accelerator.format_report(results)
  assert "budget of 0 s spent" in report and "skipped" in report


def test_natural_benchmark_tiny_run_counts_symbols_and_flops(tmp_path):
  from benchmarks import natural_throughput as nt

  music = nt.Setup("tiny music", "music", 8, 6)
  text = nt.Setup("tiny text", "text", 8, 5)
  plan = nt.Plan(setups=(music, text), lanes=(1, 2), symbols_per_call=400, rounds=2, matmul_size=64)
  results = nt.run_benchmark(plan, log=lambda _: None)
  rows = {(r["setup"], r["lanes"]): r for r in results["rows"]}
  assert set(rows) == {(s.name, b) for s in (music, text) for b in (1, 2)}
  for (name, lanes), r in rows.items():
    setup = music if name == music.name else text
    k = 400 // (nt.SEGMENT_LENGTH * lanes)  # 2 segments at one lane, 1 at two
    symbols = k * nt.SEGMENT_LENGTH * lanes
    assert r["symbols_per_s"] == pytest.approx(float(np.median(symbols / np.asarray(r["seconds"]))))
    flops = 3 * k * 6.0 * nt.SEGMENT_LENGTH * lanes * (8 * 8 + 2 * 8 * setup.n_symbols)
    assert r["gflops"] == pytest.approx(float(np.median(flops / np.asarray(r["seconds"]))) / 1e9)
    assert 0 < r["matmul_fraction"] and 0 < r["step_product_fraction"]
  s = results["summary"]
  assert s["natural_symbols_per_s"] == rows[(music.name, 1)]["symbols_per_s"]
  rate = {b: rows[(music.name, b)]["symbols_per_s"] for b in (1, 2)}
  assert s["best_lanes"] == max(rate, key=rate.get)
  assert s["lanes_speedup"] == pytest.approx(rate[s["best_lanes"]] / rate[1])
  path = tmp_path / "natural.json"
  throughput.write_json(results, str(path))
  assert json.loads(path.read_text(), parse_constant=_reject)["rows"]
  assert re.fullmatch(
    r"natural_symbols_per_s=\d+ natural_matmul_fraction=[\d.]+ lanes_speedup=[\d.]+ best_lanes=\d+",
    nt.summary_line(results),
  )
  assert "tiny text" in nt.format_table(results)


def _python(code: str):
  import subprocess
  import sys

  return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_a_timed_block_that_hangs_ends_the_benchmark_with_its_stacks():
  # A block past its limit exits 1 with every thread's stack (not a silent hang); a block
  # that returns in time disarms the watchdog, and the process lives on past the limit.
  hung = _python(
    "import time\nfrom benchmarks import throughput\n"
    "throughput._timed(lambda: time.sleep(30), hang_s=1.0)\nprint('returned')"
  )
  assert hung.returncode == 1 and "returned" not in hung.stdout
  assert "Timeout" in hung.stderr and "_timed" in hung.stderr
  fine = _python(
    "import time\nfrom benchmarks import throughput\n"
    "throughput._timed(lambda: None, hang_s=1.0)\ntime.sleep(3)\nprint('alive')"
  )
  assert fine.returncode == 0 and fine.stdout.strip() == "alive", fine.stderr[-500:]
