"""The Figure 7 binary end to end on its `test` preset: the files it leaves, resuming after
Ctrl-C (in process, and SIGINT to the command), independence from the device count,
refusing a workdir of another config."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from rnn_dynamics import runs
from rnn_dynamics.synthetic import sweep
from rnn_dynamics.workdir import Workdir, WorkdirConfigMismatch

REPO = Path(__file__).resolve().parents[1]
PRESET = "experiments/configs/success_rate.py:test"
DEVICE_COUNTS = (1, 4)
_RUN_GROUP = sweep.run_group


@pytest.fixture(scope="module")
def binary():
  """`experiments.success_rate` and its configs (importing a binary leaves this process's
  devices alone: the binaries' set-up is `experiments.runtime.setup`, run by `cli.run`)."""
  saved = os.environ.get("XLA_FLAGS")
  from experiments import success_rate
  from experiments.configs import success_rate as configs

  assert os.environ.get("XLA_FLAGS") == saved
  return success_rate, configs


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
  """The binary run from the command line, uninterrupted, with 1 and with 4 CPU devices.

  Both processes start at once and run while the in-process tests below do.
  """
  procs = {}
  for n in DEVICE_COUNTS:
    workdir = tmp_path_factory.mktemp(f"cli_{n}_devices")
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
    cmd = [
      sys.executable,
      "-m",
      "experiments.success_rate",
      f"--config={PRESET}",
      f"--workdir={workdir}",
    ]
    out, err = (open(workdir.parent / f"{workdir.name}.{s}", "w+") for s in ("out", "err"))
    procs[n] = workdir, subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=err), out, err
  done = {}

  def result(n):
    if n not in done:
      workdir, proc, out, err = procs[n]
      proc.wait(timeout=600)
      out.seek(0)
      err.seek(0)
      done[n] = workdir, out.read(), err.read()
      assert proc.returncode == 0, done[n][2][-3000:]
    return done[n]

  yield result
  for _, proc, out, err in procs.values():
    if proc.poll() is None:
      proc.kill()
      proc.wait()
    out.close()
    err.close()


def _rows(workdir):
  return json.loads((Path(workdir) / "results.json").read_text())


def _assert_outputs(workdir, config):
  workdir = Path(workdir)
  assert json.loads((workdir / "config.json").read_text()) == json.loads(config.to_json())
  for name in ("results.csv", "results.json", "success_rate.png", "success_rate.svg"):
    assert (workdir / name).stat().st_size > 0, name
  n_runs = len(config.inits) * len(config.algorithms) * config.seeds
  rows = _rows(workdir)
  assert len(rows) == n_runs * len(config.lengths)
  assert sorted({r["length"] for r in rows}) == list(config.lengths)
  csv_lines = (workdir / "results.csv").read_text().splitlines()
  assert len(csv_lines) == len(rows) + 1 and csv_lines[0].startswith("init,algorithm,length")
  for length in config.lengths:
    group = workdir / "groups" / f"T{length}"
    assert len(json.loads((group / "results.json").read_text())) == n_runs
    with np.load(group / "traces.npz") as traces:
      assert set(sweep.TRACE_FIELDS) <= set(traces.files)
      chunks = config.max_updates // config.chunk_size
      assert traces["loss"].shape[0] == n_runs and 1 <= traces["loss"].shape[1] <= chunks
    with np.load(group / "params.npz") as params:
      assert params["w_hh"].shape == (n_runs, config.n_hidden, config.n_hidden)
    # The group says what it ran: its own length (config.json keeps the config as given,
    # min_length = max_length = the first length), the budget, its runs.
    spec = Workdir.open(workdir).group_spec(f"T{length}")
    assert (spec.task, spec.min_length, spec.max_length) == (config.task, length, length)
    assert (spec.max_updates, spec.chunk_size) == (config.max_updates, config.chunk_size)
    assert spec.runs == n_runs and spec.labels["length"] == [length]
    assert spec.labels["algorithm"] == list(config.algorithms)
    assert spec.labels["seed"] == list(range(config.seeds))
    expected = {} if length == config.min_length else dict(max_length=length, min_length=length)
    assert spec.overrides == expected
  # Checkpoints of finished groups are cleaned up.
  assert not any((workdir / "checkpoints").glob("*/*"))


def _assert_same_groups(a, b, config):
  """Per-group rows, traces and final parameters, bit for bit."""
  for length in config.lengths:
    ga, gb = Path(a) / "groups" / f"T{length}", Path(b) / "groups" / f"T{length}"
    assert json.loads((ga / "results.json").read_text()) == json.loads(
      (gb / "results.json").read_text()
    )
    for name in ("traces.npz", "params.npz"):
      with np.load(ga / name) as za, np.load(gb / name) as zb:
        assert za.files == zb.files
        for k in za.files:
          np.testing.assert_array_equal(za[k], zb[k], err_msg=f"T{length}/{name}/{k}")


class _Interrupt:
  """Wraps `sweep.run_group` to record what it does and, when `group` is given, press
  Ctrl-C after that group's first chunk (from its progress callback)."""

  def __init__(self, monkeypatch, group=None):
    self.group, self.lines, self.called = group, [], []

    def run_group(*args, name, **kwargs):
      self.called.append(name)
      pressed = []

      def on_progress(line):
        self.lines.append(line)
        if name == self.group and " solved " in line and not pressed:
          pressed.append(line)
          raise KeyboardInterrupt

      return _RUN_GROUP(*args, name=name, on_progress=on_progress, **kwargs)

    monkeypatch.setattr(sweep, "run_group", run_group)


@pytest.fixture(scope="module")
def resumed(binary, cli, tmp_path_factory):
  """The sweep run in this process, Ctrl-C'd during its second group, then run again."""
  del cli  # started first, so the command-line runs go on meanwhile
  module, configs = binary
  config = configs.get_config("test")
  workdir = tmp_path_factory.mktemp("resumed")
  with pytest.MonkeyPatch.context() as monkeypatch:
    first = _Interrupt(monkeypatch, group="T12")
    with pytest.raises(KeyboardInterrupt):
      module.run(config, str(workdir))
    state_after_first = dict(
      t10_done=(workdir / "groups" / "T10" / "results.json").exists(),
      t12_done=(workdir / "groups" / "T12" / "results.json").exists(),
      t12_checkpoint=any((workdir / "checkpoints" / "T12").glob("*")),
      in_progress=Workdir.open(workdir).in_progress(),
      t12_spec=Workdir.open(workdir).group_spec("T12"),
    )
    second = _Interrupt(monkeypatch)
    rows = module.run(config, str(workdir))
  return workdir, config, first, state_after_first, second, rows


def test_interrupted_sweep_resumes_to_identical_results(resumed, cli):
  workdir, config, first, after_first, second, rows = resumed
  # Ctrl-C after the first chunk of T12: T10 finished and stored, T12 checkpointed.
  assert first.called == ["T10", "T12"]
  in_progress = after_first.pop("in_progress")
  # A group still training says what it runs.
  t12 = after_first.pop("t12_spec")
  assert (t12.min_length, t12.max_length, t12.max_updates) == (12, 12, config.max_updates)
  assert after_first == dict(t10_done=True, t12_done=False, t12_checkpoint=True)
  # The checkpointed group can be read while it trains: each run after its first chunk.
  assert list(in_progress) == ["T12"]
  partial = in_progress["T12"]
  assert len(partial) == len(config.inits) * len(config.algorithms) * config.seeds
  assert {r["updates_done"] for r in partial} == {config.chunk_size}
  assert all(0 <= r["best_screen_error"] <= r["screen_error"] <= 1 for r in partial)
  assert {(r["init"], r["algorithm"], r["seed"]) for r in partial} == {
    (r["init"], r["algorithm"], r["seed"]) for r in rows if r["length"] == 12
  }
  assert any("T12: interrupted" in line for line in first.lines)
  # Again: the finished group is loaded, not rerun; T12 goes on from its checkpoint.
  assert second.called == ["T12"]
  assert any("T12: resumed from chunk 1" in line for line in second.lines)
  assert rows == _rows(workdir)
  assert Workdir.open(workdir).in_progress() == {}  # finished: its rows are the results
  # The same results as the uninterrupted command-line run, bit for bit on as many
  # devices.
  assert _rows(workdir) == _rows(cli(1)[0])
  if jax.device_count() in DEVICE_COUNTS:
    _assert_same_groups(workdir, cli(jax.device_count())[0], config)


def test_in_process_run_leaves_results_traces_and_figure(resumed):
  workdir, config = resumed[:2]
  _assert_outputs(workdir, config)


def test_cli_leaves_results_traces_and_figure(cli, binary):
  config = binary[1].get_config("test")
  workdir, out, _ = cli(1)
  _assert_outputs(workdir, config)
  # The summary table on stdout has a line per (init, algorithm).
  assert "success_rate.png" in out
  assert sum(line.startswith(("sigmoid ", "smart_tanh ")) for line in out.splitlines()) == 6


def test_cli_writes_each_runs_traces_as_tensorboard_events(cli):
  # Live monitoring: every run of every group is its own series, and the series hold
  # exactly the traces the group saved (a run's frozen chunks have no points).
  workdir = Path(cli(1)[0])
  for group in ("T10", "T12"):
    rows = json.loads((workdir / "groups" / group / "results.json").read_text())
    traces = np.load(workdir / "groups" / group / "traces.npz")
    series = runs.events.read(workdir / "events" / group)
    labels = [{k: row[k] for k in list(row)[: list(row).index("solved")]} for row in rows]
    assert set(series) == {runs.events.run_name(label) for label in labels}
    for i, label in enumerate(labels):
      got, steps = series[runs.events.run_name(label)], traces["step"][i]
      for tag in ("loss", "screen_error", "grad_norm", "clip_rate", "guard_fired", "omega"):
        want = [(int(s), float(v)) for s, v in zip(steps, traces[tag][i]) if np.isfinite(v)]
        assert want and got[tag] == want, (group, label, tag)


def test_same_results_on_one_and_four_devices(cli):
  (w1, _, err1), (w4, _, err4) = cli(1), cli(4)
  # The flag reached the binary (`experiments/__init__.py` keeps an explicit one).
  assert re.search(r"T10: 12 runs on 1 device", err1) and re.search(
    r"T10: 12 runs on 4 device", err4
  )
  assert _rows(w1) == _rows(w4)


def test_workdir_of_another_config_is_refused(tmp_path, binary):
  module, configs = binary
  Workdir(tmp_path, configs.get_config("test"))
  # Bookkeeping fields may change between sessions...
  relaxed = configs.get_config("test")
  relaxed.progress_every_s = 30.0
  Workdir(tmp_path, relaxed)
  saved = (tmp_path / "config.json").read_text()
  # ...anything that changes results may not, and the workdir is left as it was.
  other = configs.get_config("test")
  other.alpha = 2.0
  with pytest.raises(WorkdirConfigMismatch, match="alpha"):
    module.run(other, str(tmp_path))
  assert (tmp_path / "config.json").read_text() == saved
  assert not (tmp_path / "groups").exists()


def test_baseline_budget_is_sgd_cr_median_in_whole_chunks(binary):
  module, configs = binary
  config = configs.get_config("test")  # chunk_size 100, max_updates 300
  config.baseline_min_updates = 0
  rows = [dict(solved=True, updates_to_solve=u) for u in (100, 200, 300)]
  rows.append(dict(solved=False, updates_to_solve=None))
  assert module.baseline_budget(rows, config) == 200  # median of 100, 200, 300
  rows[0]["updates_to_solve"] = 150
  assert module.baseline_budget(rows, config) == 200  # 200 stays 200; 250 would be 300
  config.baseline_min_updates = 250
  assert module.baseline_budget(rows, config) == 300  # the floor, rounded up to a chunk
  config.baseline_min_updates = 0
  # Few solved: the median of those that did (100), not SGD-CR's own budget.
  few = [dict(solved=False, updates_to_solve=None)] * 3
  few += [rows[1], dict(solved=True, updates_to_solve=0)]
  assert module.baseline_budget(few, config) == 100
  unsolved = [dict(solved=False, updates_to_solve=None)] * 3
  assert module.baseline_budget(unsolved, config) == 300  # SGD-CR solved nothing: its budget


def test_baselines_after_sgd_cr_get_its_budget(tmp_path, binary):
  module, configs = binary
  config = configs.get_config("test")
  config.lengths = (10,)
  config.baselines_after_sgd_cr = True
  rows = module.run(config, str(tmp_path))
  cr = [r for r in rows if r["algorithm"] == "sgd_cr"]
  others = [r for r in rows if r["algorithm"] != "sgd_cr"]
  assert {r["budget"] for r in cr} == {config.max_updates}
  budget = module.baseline_budget(cr, config)
  assert {r["budget"] for r in others} == {budget}
  assert all(r["updates_done"] <= budget for r in others)
  assert {r["algorithm"] for r in others} == set(config.algorithms) - {"sgd_cr"}
  assert (tmp_path / "groups" / "T10_sgd_cr").is_dir()
  assert (tmp_path / "groups" / "T10_baselines").is_dir()
  # The baselines' group.json says the budget they ran; config.json is the config given.
  saved = Workdir.open(tmp_path)
  assert saved.config == json.loads(config.to_json())
  assert saved.config["max_updates"] == config.max_updates == 300
  assert saved.group_spec("T10_sgd_cr").max_updates == config.max_updates
  spec = saved.group_spec("T10_baselines")
  assert spec.max_updates == budget and spec.runs == len(others)
  assert spec.labels["budget"] == [budget]
  assert spec.overrides == ({} if budget == config.max_updates else dict(max_updates=budget))


def test_a_group_asked_to_run_otherwise_is_refused(tmp_path, binary, monkeypatch):
  # Code that derives another budget for a finished group (same config.json): refused
  # with one line naming the group, what differs and what to do.
  from rnn_dynamics.workdir import GroupSpecMismatch

  module, configs = binary
  config = configs.get_config("test")
  config.lengths = (10,)
  config.baselines_after_sgd_cr = True
  config.max_updates = 200
  module.run(config, str(tmp_path))
  groups = lambda: {f: f.read_bytes() for f in (tmp_path / "groups").rglob("*.*")}
  before = groups()
  budget = Workdir.open(tmp_path).group_spec("T10_baselines").max_updates
  monkeypatch.setattr(module, "baseline_budget", lambda rows, config: budget + 100)
  with pytest.raises(GroupSpecMismatch) as e:
    module.run(config, str(tmp_path))
  message = str(e.value)
  assert "\n" not in message and "T10_baselines" in message
  assert f"max_updates: {budget} -> {budget + 100}" in message and "delete" in message
  # The groups are as they were (the tables were rewritten from SGD-CR's group first).
  assert groups() == before


def test_the_published_fig7_cpu_run_resumes_and_trains_nothing(tmp_path, binary, monkeypatch):
  # docs/results/fig7_cpu was saved before the runs were labelled with their budget (its
  # group.json files have no `budget`): a copy resumes under today's cpu preset and loads
  # every length as it is; a budget label that says otherwise is still refused.
  from experiments import validation
  from rnn_dynamics.workdir import GroupSpecMismatch

  module, configs = binary
  copy = tmp_path / "fig7_cpu"
  shutil.copytree(REPO / "docs" / "results" / "fig7_cpu", copy)
  assert "budget" not in json.loads((copy / "groups" / "T10" / "group.json").read_text())["labels"]
  committed = _rows(copy)
  trained = lambda *args, **kwargs: pytest.fail("a finished group was trained again")
  monkeypatch.setattr(sweep, "run_group", trained)
  config = validation.validate(configs.get_config("cpu"), "success_rate")
  assert module.run(config, str(copy)) == committed == _rows(copy)
  spec_file = copy / "groups" / "T20" / "group.json"
  spec = json.loads(spec_file.read_text())
  spec["labels"]["budget"] = [20_000]
  spec_file.write_text(json.dumps(spec))
  refused = r"T20 ran .*\(labels.budget: \[20000\] -> \[40000\]\)"
  with pytest.raises(GroupSpecMismatch, match=refused):
    module.run(config, str(copy))


def test_sgd_cr_column_is_written_before_the_baselines_run(tmp_path, binary, monkeypatch):
  # The baselines at a long length can take hours: SGD-CR's results are on disk already.
  module, configs = binary
  config = configs.get_config("test")
  config.lengths = (10,)
  config.baselines_after_sgd_cr = True
  run_group = module._run_group

  def stop_at_baselines(config, workdir, group, *args, **kwargs):
    if group.endswith("_baselines"):
      raise KeyboardInterrupt
    return run_group(config, workdir, group, *args, **kwargs)

  monkeypatch.setattr(module, "_run_group", stop_at_baselines)
  with pytest.raises(KeyboardInterrupt):
    module.run(config, str(tmp_path))
  rows = Workdir.open(tmp_path).table()
  assert rows and {r["algorithm"] for r in rows} == {"sgd_cr"}
  assert (tmp_path / "success_rate.png").exists()


def test_sigint_finishes_the_chunk_checkpoints_exits_130_and_resumes_identically(
  cli, tmp_path, interrupted_run, same_results
):
  """The stop path of the synthetic trainer, from the command line: Ctrl-C once training
  runs, then the same command again; the results equal an uninterrupted run's."""
  workdir = tmp_path / "workdir"
  # A progress line per chunk (`progress_every_s = 0`): the group's loop is running.
  args = ["experiments.success_rate", f"--config={PRESET}", f"--workdir={workdir}"]
  run = interrupted_run(args, ready=r"T10 solved \d+/12", sig=signal.SIGINT)
  assert run.code == 130, run.first[-3000:]
  assert "signal 2: stopping after the current chunk" in run.first
  assert re.search(r"T1[02]: interrupted — saving a checkpoint at chunk \d", run.first)
  assert "interrupted; run the same command again to resume from the checkpoint" in run.first
  assert run.second.returncode == 0, run.second.stderr[-3000:]
  assert re.search(r"T1[02]: resumed from chunk \d", run.second.stderr), run.second.stderr[-3000:]
  same_results(workdir, cli(1)[0])


def test_figure_title_names_the_configured_task(binary, monkeypatch, tmp_path):
  # `--config.task` takes any registered task; the figure says which one ran.
  success_rate, configs = binary
  from rnn_dynamics.report import style
  from rnn_dynamics.report import success_rate as report

  titles = []
  monkeypatch.setattr(report, "success_rate_figure", lambda rows, **kw: titles.append(kw["title"]))
  monkeypatch.setattr(report, "updates_to_solve_figure", lambda rows, **kw: None)
  monkeypatch.setattr(style, "save_figure", lambda fig, path: None)

  class FakeWorkdir:
    path = tmp_path

    def write_table(self, rows):
      pass

  for task, says in (("temporal_order", "temporal order, "), ("addition", "addition, ")):
    config = configs.get_config("test")
    config.task = task
    success_rate._write_outputs(FakeWorkdir(), config, [])
    assert titles[-1].startswith(says)


def test_flossing_preset_trains_sgd_cf_beside_sgd_cr_and_traces_exponents(tmp_path, binary):
  """The `flossing_test` preset end to end: SGD-CF and SGD-CR runs in each length's group,
  flossing switched on for those groups (recorded in their spec), the top exponents in
  the traces."""
  from experiments import validation

  module, configs = binary
  config = validation.validate(configs.get_config("flossing_test"), "success_rate")
  config.lock()  # as the command line's config is: a group must still set floss_enabled
  rows = module.run(config, str(tmp_path))
  assert {r["algorithm"] for r in rows} == {"sgd_cr", "sgd_cf"}
  assert len(rows) == len(config.inits) * 2 * config.seeds * len(config.lengths)
  workdir = Workdir.open(tmp_path)
  for length in config.lengths:
    assert workdir.group_spec(f"T{length}").overrides.get("floss_enabled") is True
    with np.load(tmp_path / "groups" / f"T{length}" / "traces.npz") as traces:
      trained = np.isfinite(traces["loss"])
      assert trained.any()
      assert np.isfinite(traces["lyapunov_1"][trained]).all()
      assert np.isfinite(traces["lyapunov_2"][trained]).all()
      assert np.isnan(traces["lyapunov_3"]).all()  # k = 2 by default
  assert (tmp_path / "success_rate.png").stat().st_size > 0


def test_summary_columns_line_up_with_long_algorithm_labels(binary):
  # "SGD-CF (flossing)" is longer than the other labels: every length column of the
  # printed table still starts at the header's offset.
  module, configs = binary
  config = configs.get_config("flossing_test")
  rows = [
    dict(init=i, algorithm=a, length=t, solved=s == 0)
    for i in config.inits for a in config.algorithms for t in config.lengths
    for s in range(config.seeds)
  ]  # fmt: skip
  lines = module._summary(rows, config).splitlines()
  assert len(lines) == 1 + len(config.inits) * len(config.algorithms)
  starts = lambda line: [m.start() for m in re.finditer(r"\S+ \(\d+–\d+ %\)|T=\d+", line)]
  header = starts(lines[0])
  assert len(header) == len(config.lengths)
  assert all(starts(line) == header for line in lines[1:]), "\n".join(lines)
