"""`rnn_dynamics.runs` (grid, devices, checkpoint, progress, stop) and the algorithm table."""

import math
import signal

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from rnn_dynamics import algorithms, clipping, natural, regularizers, rnn, runs
from rnn_dynamics.synthetic import sweep, train
from rnn_dynamics.runs import checkpoint, stop
from conftest import tiny_trainer_config

# --- grid --------------------------------------------------------------------------------


def test_grid_puts_seeds_innermost_and_pairs_keys_by_seed():
  g = runs.grid(
    ["sgd", "sgd_cr"],
    3,
    seed=7,
    label=lambda alg, s: dict(algorithm=alg, seed=s),
    hparams=lambda alg: algorithms.hparams(alg, lr=0.1, clip=1.0, alpha=2.0, init="sigmoid"),
  )
  assert [(r["algorithm"], r["seed"]) for r in g.labels] == [
    ("sgd", 0), ("sgd", 1), ("sgd", 2), ("sgd_cr", 0), ("sgd_cr", 1), ("sgd_cr", 2)
  ]  # fmt: skip
  assert len(g) == 6 and g.seeds == [0, 1, 2, 0, 1, 2]
  np.testing.assert_array_equal(g.hparams.alpha, [0, 0, 0, 2, 2, 2])
  keys = np.asarray(g.keys)
  # The same seed, the same key in every cell (paired); the key is fold_in(seed) as before.
  np.testing.assert_array_equal(keys[:3], keys[3:])
  assert len({tuple(k) for k in keys[:3]}) == 3
  np.testing.assert_array_equal(keys[1], jax.random.fold_in(jax.random.PRNGKey(7), 1))
  np.testing.assert_array_equal(runs.paired_keys(7, [2, 0]), keys[[2, 0]])


def test_grid_of_given_seeds_without_hparams():
  g = runs.grid(["a"], [3, 5], seed=0, label=lambda c, s: dict(cell=c, seed=s))
  assert g.hparams is None and g.seeds == [3, 5]


# --- devices -----------------------------------------------------------------------------


def test_pad_and_round_trip_through_the_devices():
  assert [runs.pad_to(n, 4) for n in (1, 4, 5, 8)] == [4, 4, 8, 8]
  assert runs.pad_to(3) == runs.pad_to(3, jax.device_count())
  tree = dict(a=jnp.arange(3.0), b=jnp.arange(6).reshape(3, 2))
  padded = runs.pad_runs(tree, 5)
  np.testing.assert_array_equal(padded["a"], [0, 1, 2, 2, 2])
  np.testing.assert_array_equal(padded["b"][3:], [[4, 5], [4, 5]])
  n = jax.device_count()
  host = dict(x=np.arange(2 * n, dtype=np.float32), y=np.ones((2 * n, 3), np.int32))
  on_devices = runs.to_devices(host)
  assert on_devices["x"].sharding.spec == jax.sharding.PartitionSpec("runs")
  back = jax.tree.map(runs.host, on_devices)
  for k in host:
    np.testing.assert_array_equal(back[k], host[k])
    assert back[k].dtype == host[k].dtype


def test_stack_adds_a_leading_runs_axis():
  s = runs.stack([dict(w=jnp.zeros(2)), dict(w=jnp.ones(2))])
  assert s["w"].shape == (2, 2)


# --- checkpoint --------------------------------------------------------------------------


def test_checkpoint_composite_round_trip(tmp_path):
  sharding = runs.runs_sharding()
  n = jax.device_count()
  state = runs.to_devices(dict(w=np.arange(n * 3, dtype=np.float32).reshape(n, 3)), sharding)
  host = dict(chunk=4, final=[None, 1])
  traces = dict(loss=np.full((2, n), np.nan, np.float32))
  mgr = checkpoint.manager(tmp_path / "ck")
  assert checkpoint.restore(mgr, state, sharding) is None
  checkpoint.save(mgr, 4, state=state, host=host, traces=traces)
  checkpoint.save(mgr, 5, state=state, host=dict(host, chunk=5), traces=traces)
  assert mgr.all_steps() == [5]  # only the latest is kept
  got = checkpoint.restore(checkpoint.manager(tmp_path / "ck"), state, sharding, traces=True)
  assert got.host == dict(chunk=5, final=[None, 1])
  np.testing.assert_array_equal(runs.host(got.state["w"]), runs.host(state["w"]))
  np.testing.assert_array_equal(got.traces["loss"], traces["loss"])
  # Without traces (the natural trainer's checkpoints have none).
  mgr = checkpoint.manager(tmp_path / "plain")
  checkpoint.save(mgr, 1, state=state, host=host)
  got = checkpoint.restore(mgr, state, sharding)
  assert got.traces is None and got.host == host


def test_a_checkpoint_of_a_norm_only_program_restores_into_the_one_clipping_path(tmp_path):
  # Before one clipping path, norm-clipped programs (every binary but pathological) kept a
  # ClipByNormState; such a checkpoint still resumes, the state brought up to date.
  sharding = runs.runs_sharding()
  n = jax.device_count()
  hp = runs.stack([algorithms.hparams("sgd_c", lr=0.1, clip=1.0, alpha=0.0, init="sigmoid")] * n)
  params = dict(w_hh=jnp.ones((n, 2)))
  cfg = ml_collections.ConfigDict(dict(nonfinite_guard="original"))
  now = jax.vmap(lambda hp, p: algorithms.make_optimizer(cfg, hp).init(p))(hp, params)
  now = runs.to_devices(dict(params=params, opt_state=now), sharding)
  before = clipping.as_norm_states(now)
  before = jax.tree.map(lambda x: ~x if x.dtype == jnp.bool_ else x + 1, before)
  assert isinstance(before["opt_state"][0].inner, clipping.ClipByNormState)
  mgr = checkpoint.manager(tmp_path / "ck")
  checkpoint.save(mgr, 1, state=before, host=dict(chunk=1))
  got = checkpoint.restore(mgr, now, sharding)
  assert jax.tree.structure(got.state) == jax.tree.structure(now) and got.host == dict(chunk=1)
  inner, old = got.state["opt_state"][0].inner, before["opt_state"][0].inner
  np.testing.assert_array_equal(runs.host(inner.preclip_norm), runs.host(old.preclip_norm))
  np.testing.assert_array_equal(runs.host(inner.clipped), runs.host(old.clipped))
  np.testing.assert_array_equal(runs.host(inner.fraction_clipped), np.zeros(n))
  np.testing.assert_array_equal(runs.host(got.state["params"]["w_hh"]), np.full((n, 2), 2.0))
  # Any other difference is still an error.
  mgr = checkpoint.manager(tmp_path / "other")
  checkpoint.save(mgr, 1, state=dict(params=params), host={})
  with pytest.raises(ValueError):
    checkpoint.restore(mgr, now, sharding)


def test_group_resumed_from_a_checkpoint_has_every_leaf_of_the_one_that_saved_it(tmp_path):
  """Below the end-to-end tests (all at momentum 0, where an optimizer state that a resume
  dropped would be all zeros anyway): a group at momentum 0.9 trains two chunks and saves;
  a NEW group built from the checkpoint must hold the same run state (parameters, momentum
  traces and clipping statistics, keys, counters, flags), host bookkeeping and traces, bit
  for bit, and go on to the same next chunk."""
  config = tiny_trainer_config(batch_size=10, momentum=0.9, chunk_size=10)
  trainer = train.make_train(config)
  programs = sweep._Programs(trainer, config)
  g = runs.grid(
    ["sgd_c", "sgd_cr"],
    2,
    seed=3,
    label=lambda alg, s: dict(algorithm=alg, seed=s),
    hparams=lambda alg: algorithms.hparams(
      alg, lr=0.05, clip=0.5, alpha=2.0, init="basic_tanh"
    ),
  )
  lines = []

  def group():
    return sweep._Group(
      trainer,
      config,
      g.labels,
      g.hparams,
      g.keys,
      checkpoint_dir=tmp_path / "ck",
      name="g",
      say=lines.append,
      programs=programs,
    )

  def same(a, b):
    a.runs.sync()
    b.runs.sync()
    for x, y in ((a.runs.full, b.runs.full), (a.runs.resident.state, b.runs.resident.state)):
      x, y = jax.tree.map(runs.host, (x, y))
      assert jax.tree.structure(x) == jax.tree.structure(y)
      leaves = jax.tree_util.tree_leaves_with_path(x)
      for (path, u), v in zip(leaves, jax.tree.leaves(y), strict=True):
        assert u.dtype == v.dtype, jax.tree_util.keystr(path)
        np.testing.assert_array_equal(u, v, err_msg=jax.tree_util.keystr(path))
    assert a.book == b.book
    assert a.traces.columns.keys() == b.traces.columns.keys()
    for f, column in a.traces.columns.items():
      np.testing.assert_array_equal(np.stack(column), np.stack(b.traces.columns[f]), err_msg=f)
    for k in a.runs.resident.flags:
      np.testing.assert_array_equal(a.runs.resident.flags[k], b.runs.resident.flags[k])

  first = group()
  for _ in range(2):
    first.step()
  first.save()
  assert not first.done() and first.book.chunk == 2
  first.runs.sync()
  # The momentum traces are what a dropped optimizer state would lose: not zero here.
  traces = [np.asarray(t) for t in jax.tree.leaves(first.runs.full.opt_state) if np.ndim(t) >= 2]
  assert traces and all(np.abs(t).max() > 0 for t in traces)

  resumed = group()
  assert any("g: resumed from chunk 2" in line for line in lines)
  same(first, resumed)
  first.step()
  resumed.step()
  assert first.book.chunk == 3
  same(first, resumed)


# --- the host loop -----------------------------------------------------------------------


class _Counter:
  """A stepper that counts: `plan[i]` is what its step i does ('ok', 'stop' = a stop
  request during it, 'kill' = an interrupt inside it, 'save' = asks for a checkpoint,
  'idle' = no work)."""

  def __init__(self, plan):
    self.name, self.plan, self.i, self.saved = "toy", plan, 0, []

  def done(self):
    return self.i >= len(self.plan)

  def step(self):
    what = self.plan[self.i]
    if what == "kill":
      raise KeyboardInterrupt
    self.i += 1
    if what == "stop":
      stop.request()
    return runs.loop.Step(units=0 if what == "idle" else 1, save=what == "save")

  def save(self):
    self.saved.append(self.i)

  def position(self):
    return f"step {self.i}"

  def progress_line(self, progress, now):
    return f"line at {self.i}: {progress.units:g} units"


def _drive(stepper, every_s, lines=None):
  say = (lines if lines is not None else []).append
  runs.loop.drive(stepper, checkpoint_every_s=every_s, progress_every_s=0.0, say=say)


def test_loop_saves_whole_steps_on_a_stop_and_nothing_mid_step():
  toy, lines = _Counter(["ok", "stop", "ok"]), []
  with pytest.raises(KeyboardInterrupt):
    _drive(toy, None, lines)
  # The stop is acted on before step 2: two whole steps saved, step 2 never taken.
  assert toy.i == 2 and toy.saved == [2] and not stop.requested()
  assert lines[-1] == "toy: interrupted — saving a checkpoint at step 2 before exiting"
  toy, lines = _Counter(["ok", "kill", "ok"]), []
  with pytest.raises(KeyboardInterrupt):
    _drive(toy, None, lines)
  assert toy.saved == [] and "interrupted mid-chunk" in lines[-1]


def test_loop_checkpoint_cadence():
  toy = _Counter(["ok", "ok", "save", "ok"])
  _drive(toy, 0.0)  # every step
  assert toy.saved == [1, 2, 3, 4]
  toy = _Counter(["ok", "save", "ok", "save"])
  _drive(toy, None)  # only where a step asks
  assert toy.saved == [2, 4]
  toy = _Counter(["ok", "save", "ok"])
  _drive(toy, 1e9)  # a long period: the asked-for one only
  assert toy.saved == [2]


def test_an_asked_for_save_starts_the_checkpoint_period_again(monkeypatch):
  # Each step takes 6 s of a fake clock; the period is 10 s. Step 2 asks for a save (at
  # 12 s), so step 3 (18 s) is not due; step 4 (24 s) is. A period left running from 0 s
  # would save at step 3 instead.
  clock = [0.0]
  fake = type("Clock", (), {"time": staticmethod(lambda: clock[0])})
  monkeypatch.setattr(runs.loop, "time", fake)
  monkeypatch.setattr(runs.progress, "time", fake)
  toy = _Counter(["ok", "save", "ok", "ok"])
  take = toy.step

  def step():
    clock[0] += 6.0
    return take()

  toy.step = step
  _drive(toy, 10.0)
  assert toy.saved == [2, 4]


def test_loop_reports_steps_with_work_only():
  lines = []
  _drive(_Counter(["ok", "idle", "ok"]), None, lines)
  assert lines == ["line at 1: 1 units", "line at 3: 2 units"]


def test_event_log_writes_one_series_per_run_and_a_resume_purges_what_it_redoes(tmp_path):
  names = [runs.events.run_name(dict(algorithm="sgd_cr", seed=s)) for s in (0, 1)]
  assert names[0] == "algorithm=sgd_cr,seed=0"
  log = runs.events.EventLog(tmp_path, names)
  for step in (10, 20, 30):
    # Run 1 is frozen after step 10: NaN, no point.
    log.write(np.array([step, step]), dict(loss=np.array([step / 10, 9.0 if step == 10 else np.nan])))
  log.close()
  # A session resumed from a checkpoint at step 20 redoes step 30 (with another value).
  log = runs.events.EventLog(tmp_path, names, purge_steps=[20, 10])
  log.write(np.array([30, 10]), dict(loss=np.array([7.0, np.nan])))
  log.close()
  got = runs.events.read(tmp_path)
  assert got[names[0]]["loss"] == [(10, 1.0), (20, 2.0), (30, 7.0)]
  assert got[names[1]]["loss"] == [(10, 9.0)]


def test_loop_sends_each_steps_scalars_to_the_event_log():
  class Log:
    written, flushed, closed = [], 0, False

    def write(self, at, scalars):
      self.written.append((list(at), {k: list(v) for k, v in scalars.items()}))

    def flush(self):
      Log.flushed += 1

    def close(self):
      Log.closed = True

  class Scalars(_Counter):
    def step(self):
      step = super().step()
      return runs.loop.Step(save=step.save, scalars=dict(x=np.array([self.i])), at=np.array([self.i]))

  runs.loop.drive(
    Scalars(["ok", "save"]), checkpoint_every_s=None, progress_every_s=1e9, say=print,
    events=Log(),
  )  # fmt: skip
  assert Log.written == [([1], dict(x=[1])), ([2], dict(x=[2]))]
  assert Log.flushed == 1 and Log.closed  # flushed with the checkpoint, closed at the end


# --- progress ----------------------------------------------------------------------------


def test_format_duration():
  assert runs.format_duration(59.9) == "0m59s"
  assert runs.format_duration(184) == "3m04s"
  assert runs.format_duration(3720) == "1h02m"
  assert runs.format_duration(math.inf) == "?"


def test_progress_throttles_lines_and_measures_the_rate():
  lines = []
  p = runs.Progress(10.0, lines.append)
  t0 = p.start
  assert p.eta(5, t0 + 1) == math.inf  # nothing done yet
  p.advance(4)
  assert p.rate(t0 + 2) == pytest.approx(2.0) and p.eta(6, t0 + 2) == pytest.approx(3.0)
  p.report(lambda: "early", t0 + 1)
  p.report(lambda: "forced", t0 + 1, force=True)
  p.report(lambda: "due", t0 + 12)
  p.report(lambda: "too soon", t0 + 13)
  assert lines == ["forced", "due"]
  p.restart(t0 + 20)
  assert p.units == 0 and p.rate(t0 + 21) == 0.0


def test_every_zero_is_due_every_time():
  e = runs.Every(0.0, now=0.0)
  assert e.due(0.0) and e.due(0.0)
  e = runs.Every(5.0, now=0.0)
  assert not e.due(4.9) and e.due(5.0) and not e.due(9.0)


# --- stop --------------------------------------------------------------------------------


def test_stop_request_is_acted_on_once():
  stop.clear()
  stop.check()  # nothing requested: no-op
  stop.request()
  assert stop.requested()
  with pytest.raises(KeyboardInterrupt):
    stop.check()
  assert not stop.requested()
  stop.check()


def test_signal_requests_a_stop_while_a_loop_polls_and_interrupts_otherwise():
  stop.clear()
  # No trainer loop: the signal interrupts at once (compiling, writing figures, ...).
  with pytest.raises(KeyboardInterrupt):
    stop._handler(signal.SIGTERM, None)
  assert not stop.requested()
  with stop.polling():
    stop._handler(signal.SIGINT, None)  # the first one only asks
    assert stop.requested()
    with pytest.raises(KeyboardInterrupt):  # the second one stops at once
      stop._handler(signal.SIGINT, None)
  stop.clear()


def test_install_handlers_routes_both_signals():
  saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    stop.install_handlers()
    assert signal.getsignal(signal.SIGINT) is stop._handler
    assert signal.getsignal(signal.SIGTERM) is stop._handler
  finally:
    for s, h in saved.items():
      signal.signal(s, h)


# --- the algorithm table -----------------------------------------------------------------


@pytest.mark.parametrize(
  "name, clip, alpha, elementwise, guarded",
  [
    ("sgd", math.inf, 0.0, False, False),
    ("sgd_c", 1.5, 0.0, False, True),
    ("sgd_cr", 1.5, 4.0, False, True),
    ("sgd_elementwise", 1.5, 0.0, True, False),  # no guard: the original code had none
  ],
)
def test_table_gives_the_published_settings(name, clip, alpha, elementwise, guarded):
  hp = algorithms.hparams(name, lr=0.01, clip=1.5, alpha=4.0, init="sigmoid")
  got = (float(hp.clip), float(hp.alpha), bool(hp.elementwise), bool(hp.guarded))
  assert got == (clip, alpha, elementwise, guarded)
  assert algorithms.threshold_of(name, 1.5) == clip and algorithms.alpha_of(name, 4.0) == alpha
  # `sgd_elementwise`'s own bound changes its threshold only, never another row's.
  own = algorithms.hparams(
    name, lr=0.01, clip=1.5, alpha=4.0, init="sigmoid", elementwise_clip=0.3
  )
  assert float(own.clip) == (np.float32(0.3) if name == "sgd_elementwise" else clip)
  assert (bool(own.elementwise), bool(own.guarded)) == (elementwise, guarded)
  # A threshold of ∞ clips nothing, so no run is guarded there (Ω without clipping).
  unclipped = algorithms.clipping_of(name, math.inf, math.inf)
  assert unclipped == (math.inf, elementwise, False)


def test_natural_columns_read_the_same_table():
  cols = natural.columns(["sgd", "sgd_c", "sgd_cr"], lambda a: 0.5, 2.0, 0.25)
  assert [(c.clip, c.alpha0) for c in cols] == [(math.inf, 0.0), (2.0, 0.0), (2.0, 0.25)]
  with pytest.raises(ValueError, match="unknown algorithm"):
    natural.columns(["sgd_elementwise"], lambda a: 0.5, 2.0, 0.25)  # not in §4.2's tables
  with pytest.raises(ValueError, match="unknown algorithm"):
    algorithms.hparams("adamw", lr=0.1, clip=1.0, alpha=0.0, init="sigmoid")


def test_add_omega_grad_adds_to_w_hh_only_and_can_be_switched_off():
  key = jax.random.PRNGKey(0)
  params = rnn.init_params(key, 3, 5, 2, "sigmoid")
  x = jax.random.normal(key, (6, 4, 3))
  from rnn_dynamics.tasks.base import Batch

  batch = Batch(x, jnp.zeros((6, 4, 2)), jnp.ones((6, 4), bool))
  loss, grads, fwd = rnn.loss_and_grads(
    params, rnn.unit_for_init("sigmoid"), batch, "all_bernoulli"
  )
  same, om = regularizers.add_omega_grad(grads, fwd, batch.mask, 2.0, enabled=False)
  assert same is grads and np.isnan(om)
  total, om = regularizers.add_omega_grad(grads, fwd, batch.mask, 2.0, enabled=True)
  assert np.isfinite(om)
  om2, w_hh, _ = regularizers.omega_and_total_w_hh_grad(fwd, batch.mask, 2.0)
  np.testing.assert_array_equal(total.w_hh, w_hh)
  np.testing.assert_array_equal(total.w_in, grads.w_in)


@pytest.mark.parametrize("mode", algorithms.GUARD_MODES)
def test_one_program_clips_and_guards_each_run_as_its_row_says(mode):
  """Every algorithm in one vmapped program (as the pathological sweep runs them): each
  run gets its own kind and threshold, and the guard acts where its row (or the mode)
  says."""
  cfg = ml_collections.ConfigDict(dict(nonfinite_guard=mode))
  names = ("sgd", "sgd_c", "sgd_cr", "sgd_elementwise")
  hp = jax.tree.map(
    lambda *x: jnp.stack(x),
    *[
      algorithms.hparams(n, lr=1.0, clip=1.0, alpha=0.0, init="sigmoid", elementwise_clip=0.5)
      for n in names
    ],
  )
  params = dict(w_hh=jnp.ones(2), w_in=jnp.ones(1))

  @jax.vmap
  def step(hp, g):
    tx = algorithms.make_optimizer(cfg, hp)
    return tx.update(g, tx.init(params), params)

  def per_run(tree):
    return jax.tree.map(lambda x: jnp.stack([x] * len(names)), tree)

  out, state = step(hp, per_run(dict(w_hh=jnp.asarray([3.0, -4.0]), w_in=jnp.zeros(1))))
  want = [[-3.0, 4.0], [-0.6, 0.8], [-0.6, 0.8], [-0.5, 0.5]]  # none, norm 5 → 1, each to 0.5
  np.testing.assert_allclose(out["w_hh"], want, rtol=1e-6)
  stats = clipping.clipping_stats(state)
  np.testing.assert_array_equal(stats["grads/clipped"], [False, True, True, True])
  np.testing.assert_allclose(stats["grads/fraction_clipped"], [0, 0, 0, 2 / 3], rtol=1e-6)
  # A NaN gradient: guarded runs take the original code's 0.02·W_hh step, the others NaN.
  out, state = step(hp, per_run(dict(w_hh=jnp.asarray([jnp.nan, 1.0]), w_in=jnp.zeros(1))))
  guarded = {"original": [False, True, True, False], "always": [True] * 4, "never": [False] * 4}
  np.testing.assert_array_equal(clipping.clipping_stats(state)["grads/nonfinite"], guarded[mode])
  np.testing.assert_array_equal(np.isfinite(out["w_hh"]).all(axis=1), guarded[mode])
