"""Tests for experiments/pathological.py, its summary and notebook, rnn_dynamics.report.pathological
and rnn_dynamics.paper.

Every task's `test` preset runs end to end in-process (each in seconds: a tiny model, a
hundred updates); the summary and the notebook then read what they wrote.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from experiments import pathological as experiment
from experiments import pathological_summary, validation
from experiments.configs import pathological as configs
from rnn_dynamics import paper, results, stats, tasks
from rnn_dynamics.synthetic import generalization, sweep
from rnn_dynamics.errors import ConfigError
from rnn_dynamics.report import pathological
from rnn_dynamics.tasks import get_task
from rnn_dynamics.workdir import WorkdirConfigMismatch

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("fast_compiles")  # a hundred updates per program


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Runs a task's test preset once per module: task → (workdir, returned rows)."""
  done: dict[str, tuple[Path, dict]] = {}
  root = tmp_path_factory.mktemp("pathological")

  def get(task: str):
    if task not in done:
      config = configs.get_config("test")
      config.task = task
      workdir = root / task
      done[task] = (workdir, experiment.run(config, str(workdir)))
    return done[task]

  return get


def _read(path: Path):
  return json.loads(path.read_text())


@pytest.mark.parametrize("task", paper.PATHOLOGICAL_TASKS)
def test_task_runs_end_to_end_and_writes_its_tables(runs, task):
  workdir, out = runs(task)
  cfg = _read(workdir / "config.json")
  published = paper.pathological_setup(task)
  # The resolved config keeps the published values for every field the preset left None.
  assert (cfg["init"], cfg["lr"], cfg["alpha"], cfg["clip"]) == (
    published.init,
    published.lr,
    published.alpha,
    published.clip,
  )
  assert cfg["n_hidden"] == 8 and cfg["elementwise_clip"] == published.clip
  assert cfg["max_updates"] == 100

  variants = paper.variants(task)
  n_settings = len(variants) * (len(cfg["memorization_lengths"]) if task == "memorization" else 1)
  n_runs = n_settings * len(cfg["algorithms"]) * cfg["seeds"]
  rows = _read(workdir / "results.json")
  assert len(rows) == len(out["rows"]) == n_runs
  assert {r["task"] for r in rows} == set(variants)
  assert all(r["updates_done"] <= 100 and 0.0 <= r["final_error"] <= 1.0 for r in rows)

  table = _read(workdir / "table.json")
  assert len(table) == n_settings * len(cfg["algorithms"])
  assert [t["algorithm"] for t in table[:3]] == list(cfg["algorithms"])
  assert all(t["seeds"] == cfg["seeds"] for t in table)
  md = (workdir / "table.md").read_text()
  assert "SGD-CR" in md and published.reported in md and (workdir / "table.csv").exists()

  # The test preset evaluates every model (none solves in 100 updates) at each length.
  gen = _read(workdir / "generalization.json")
  assert len(gen) == n_runs * len(cfg["generalization_lengths"])
  assert {g["eval_length"] for g in gen} == set(cfg["generalization_lengths"])
  assert all(0.0 <= g["error"] <= 1.0 for g in gen)
  assert (workdir / "generalization_table.md").exists()
  for ext in ("png", "svg"):
    assert (workdir / f"generalization.{ext}").stat().st_size > 0
  assert not any((workdir / "checkpoints").glob("*/*"))  # finished groups leave none


def test_a_finished_workdir_is_read_back_not_retrained(runs, monkeypatch):
  workdir, out = runs("addition")

  def no_training(*args, **kwargs):
    raise AssertionError("a finished group was trained again")

  monkeypatch.setattr(sweep, "run_group", no_training)
  config = configs.get_config("test")
  config.task = "addition"
  again = experiment.run(config, str(workdir))
  assert again == out
  config.seeds = 3
  with pytest.raises(WorkdirConfigMismatch, match="seeds"):
    experiment.run(config, str(workdir))


def test_summary_puts_every_task_beside_the_paper(runs, tmp_path):
  workdirs = [runs(task)[0] for task in paper.PATHOLOGICAL_TASKS]
  text = pathological_summary.summarize(workdirs, tmp_path)
  rows = _read(tmp_path / "summary.json")
  assert [r["task"] for r in rows] == [
    v for t in paper.PATHOLOGICAL_TASKS for v in paper.variants(t)
  ]
  for r in rows:
    assert r["paper"] == paper.pathological_setup(r["task"]).reported
    # "k/2 (low–high %)": the count with its 95 % interval.
    for alg in ("sgd_c", "sgd_cr"):
      k = int(r[alg].split("/")[0])
      assert r[alg] == stats.format_rate(k, 2)
  assert (tmp_path / "summary.csv").exists()
  assert "paper (docs/reference.md §4)" in text and "1 of 8 (ICML text: 2 of 5)" in text


def test_notebook_executes_on_the_test_output(runs, monkeypatch, tmp_path):
  jupytext = pytest.importorskip("jupytext")
  nbclient = pytest.importorskip("nbclient")
  paths = [str(runs(task)[0]) for task in paper.PATHOLOGICAL_TASKS]
  # A sweep still training: its config and the runs' state at the last checkpoint only.
  running = tmp_path / "running"
  (running / "progress").mkdir(parents=True)
  shutil.copy(Path(paths[0]) / "config.json", running / "config.json")
  row = dict(task="addition", algorithm="sgd_cr", seed=0, min_length=10, max_length=30,
             updates_done=1000, solved=False, updates_to_solve=None, diverged=False,
             screen_error=0.4, best_screen_error=0.3, full_test_error=None)
  results.write_results(running / "progress" / "addition", [row])
  paths.append(str(running))
  monkeypatch.setenv("RNN_DYNAMICS_PATHOLOGICAL", ",".join(paths))
  nb = jupytext.read(REPO / "notebooks" / "pathological.py")
  nbclient.NotebookClient(
    nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
  ).execute()
  printed = "".join(
    o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
  )
  assert f"{len(paths)} workdir(s)" in printed
  assert f"{running}: addition still training" in printed
  assert "sgd_cr seed 0: 1,000 updates, screen error 40.0% (best 30.0%)" in printed


# --- pieces --------------------------------------------------------------------------


@pytest.mark.parametrize("task", paper.PATHOLOGICAL_TASKS)
def test_resolve_takes_the_published_setup_and_keeps_overrides(task):
  cfg = configs.resolve(_with_task(configs.get_config("paper"), task))
  published = paper.pathological_setup(task)
  assert (cfg.n_hidden, cfg.init, cfg.lr, cfg.alpha, cfg.clip) == published[:5]
  assert cfg.max_updates == 5_000_000 and cfg.seeds == 5 and cfg.eval_size == 10_000
  config = _with_task(configs.get_config("cpu"), task)
  config.lr, config.elementwise_clip = 0.5, 0.1
  cfg = configs.resolve(config)
  assert (cfg.lr, cfg.elementwise_clip, cfg.clip) == (0.5, 0.1, published.clip)


def test_groups_memorization_one_model_per_gap_length():
  cfg = configs.resolve(_with_task(configs.get_config("paper"), "memorization"))
  names = [g[0] for g in configs.groups(cfg)]
  assert names == [f"memorization_{b}_T{t}" for b in ("5bit", "20bit") for t in (50, 100, 150, 200)]
  cfg = configs.resolve(_with_task(configs.get_config("paper"), "addition"))
  assert configs.groups(cfg) == [("addition", "addition", 50, 200)]


def test_a_registered_task_the_paper_lacks_takes_its_setup_from_the_config(monkeypatch):
  # A task added to the registry runs here with no entry in `paper`: the binary's task
  # list and the budgets' keys come from `tasks.TASKS`, the set-up from the config.
  name = "temporal_order_text"  # the paper text's windows: registered for this test only
  monkeypatch.setitem(tasks._FACTORIES, name, lambda: tasks.temporal_order((1, 4), name=name))
  monkeypatch.setattr(tasks, "TASKS", (*tasks.TASKS, name))
  assert paper.variants(name) == (name,) and paper.pathological_setup(name) is None
  config = _with_task(configs.get_config("test"), name)
  flags = "--config.init, --config.lr, --config.alpha, --config.clip"
  with pytest.raises(ConfigError, match=f"no published set-up .*: pass {flags}"):
    configs.resolve(config)
  config.init, config.lr, config.alpha, config.clip = "basic_tanh", 0.01, 2.0, 6.0
  cfg = configs.resolve(config)
  assert (cfg.n_hidden, cfg.lr, cfg.elementwise_clip, cfg.max_updates) == (8, 0.01, 6.0, 100)
  assert "Paper (docs/reference.md §4): not one of the paper's tasks." in (
    pathological._table_markdown(cfg, [])
  )
  config.max_updates = None
  with pytest.raises(ConfigError, match="no budget: pass --config.max_updates"):
    configs.resolve(config)
  config.budgets[name] = 200
  assert configs.resolve(config).max_updates == 200
  # An entry in the config module's SETUPS fills the fields left None, as the paper's do.
  setup = dict(n_hidden=16, init="smart_tanh", lr=0.001, alpha=1.0, clip=3.0)
  monkeypatch.setitem(configs.SETUPS, name, setup)
  config = _with_task(configs.get_config("cpu"), name)
  config.max_updates = 1000
  cfg = configs.resolve(config)
  assert {f: cfg[f] for f in setup} == setup and cfg.elementwise_clip == 3.0


def test_validation_accepts_every_registered_task():
  rules = validation.rules("pathological")
  for name in tasks.TASKS:
    assert rules["task"](name) is None
    assert rules["budgets"]({paper.experiment_task(name): 100}) is None


def test_unknown_task_is_a_clear_error():
  with pytest.raises(ValueError, match="temporal_order_3bit"):
    configs.resolve(_with_task(configs.get_config("test"), "adding"))


def test_eval_block_divides_and_fits():
  task = get_task("permutation")
  block = generalization.eval_block(task, 5000, 100, 10_000, 1000, memory_mb=512)
  assert 10_000 % block == 0
  assert block * 4 * 5000 * (100 + 300 + 200) <= 512 * 2**20
  assert generalization.eval_block(task, 10, 100, 10_000, 1000, memory_mb=512) == 1000


def test_tables_from_rows():
  base = dict(task="addition", min_length=50, max_length=200, strict_solved=False, diverged=False)
  rows = [
    dict(base, algorithm="sgd_cr", seed=0, solved=True, updates_to_solve=1000, final_error=0.0),
    dict(base, algorithm="sgd_cr", seed=1, solved=True, updates_to_solve=3000, final_error=0.005),
    dict(base, algorithm="sgd_c", seed=0, solved=False, updates_to_solve=None, final_error=0.4),
    dict(
      base,
      algorithm="sgd_c",
      seed=1,
      solved=False,
      updates_to_solve=None,
      final_error=0.2,
      diverged=True,
    ),
  ]
  table = pathological.task_table(rows, ("sgd_c", "sgd_cr"))
  assert [t["algorithm"] for t in table] == ["sgd_c", "sgd_cr"]
  assert table[0]["success_rate"] == 0.0 and table[0]["diverged"] == 1
  assert table[0]["test_error_median"] == pytest.approx(0.3)
  assert table[1]["success_rate"] == 1.0 and table[1]["updates_to_solve_median"] == 2000
  assert table[1]["lengths"] == "[50, 200)"
  # Two seeds: 0/2 is compatible with up to 84 %, 2/2 with as little as 16 %.
  assert table[0]["success"] == "0/2 (0–84 %)" and table[1]["success"] == "2/2 (16–100 %)"
  assert table[1]["success_low"] == pytest.approx(0.15811, abs=1e-5)
  gen = [
    dict(rows[0], eval_length=n, error=e)
    for n, e in ((50, 0.0), (200, 0.0), (400, 0.004), (500, 0.02), (1000, 0.0))
  ]
  assert pathological.generalization_reach(gen) == {("addition", 50, 200, "sgd_cr", 0): 400}
  md = pathological.markdown(table)
  assert md.count("\n") == 4 and "| SGD-CR |" in md
  # The interval is shown once, as text; its numbers stay in the CSV only.
  assert "| 2/2 (16–100 %) |" in md and "success_low" not in md


def _with_task(config, task):
  config.task = task
  return config


def test_summary_says_when_solved_models_fail_at_the_shortest_length():
  """A solved model whose error is ≥ 1% at the shortest evaluated length is counted."""
  base = dict(task="addition", min_length=50, max_length=200, strict_solved=False, diverged=False)
  rows = [
    dict(base, algorithm="sgd_cr", seed=s, solved=True, updates_to_solve=1000, final_error=0.0)
    for s in (0, 1)
  ]
  gen = [dict(rows[0], eval_length=n, error=e) for n, e in ((50, 0.0), (400, 0.0), (500, 0.3))]
  gen += [dict(rows[1], eval_length=n, error=e) for n, e in ((50, 0.2), (400, 0.0))]
  config = dict(
    task="addition",
    preset="test",
    n_hidden=8,
    init="basic_tanh",
    lr=0.01,
    alpha=0.5,
    clip=6.0,
    max_updates=100,
    success_error=0.01,
  )
  table, _ = pathological.summary_table([dict(config=config, rows=rows, generalization=gen)])
  assert (
    table[0]["sgd_cr_generalizes_to"] == "400 (400–400); 1 of 2 at ≥ 1% already at the shortest"
  )


@pytest.mark.parametrize("group_files", [True, False], ids=["group_files", "older_copy"])
def test_a_partial_copy_resumes_elsewhere_bit_for_bit(
  runs, tmp_path, monkeypatch, same_results, group_files
):
  # A long run's journey: stopped after its first chunk, published with --partial, only
  # the published files copied to a fresh folder (as a clone on another machine has
  # them), resumed there; it must end exactly as the uninterrupted run did. A copy made
  # by code older than group files (none in it) resumes as well, and gets them.
  from rnn_dynamics.runs import stop
  from rnn_dynamics.workdir import Workdir, publish

  config = configs.get_config("test")
  config.task = "addition"
  reference, _ = runs("addition")
  advances = []
  real_step = sweep._Group.step

  def advance(self):
    step = real_step(self)
    advances.append(self.book.chunk)
    if len(advances) == 1 and stopping:
      stop.request()  # what Ctrl-C or SIGTERM does
    return step

  monkeypatch.setattr(sweep._Group, "step", advance)
  stopping = True
  with pytest.raises(KeyboardInterrupt):
    experiment.run(config, str(tmp_path / "first"))
  stop.clear()
  published = tmp_path / "repo" / "docs" / "results" / "addition"
  publish(tmp_path / "first", published, partial=True)
  status = json.loads((published / "partial.json").read_text())
  assert status["groups"]["addition"]["updates_done"] == [50, 50]
  spec = Workdir.open(published).group_spec("addition")
  assert (spec.task, spec.min_length, spec.max_length) == ("addition", 10, 14)
  assert spec.max_updates == status["groups"]["addition"]["budget"] == 100
  if not group_files:
    shutil.rmtree(published / "groups")

  fresh = tmp_path / "machine2" / "addition"
  for f in published.rglob("*"):  # files only: git keeps no empty folders
    if f.is_file():
      (fresh / f.relative_to(published)).parent.mkdir(parents=True, exist_ok=True)
      shutil.copy2(f, fresh / f.relative_to(published))
  stopping, advances[:] = False, []
  experiment.run(config, str(fresh))
  assert advances == [2]  # resumed after chunk 1: one chunk left, not two
  same_results(fresh, reference)
  assert not (fresh / "checkpoints").exists() and not (fresh / "partial.json").exists()
  assert Workdir.open(fresh).group_spec("addition") == spec
