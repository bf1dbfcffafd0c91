"""Tests for rnn_dynamics/workdir/: the writer's `Workdir(...)` and the readers'
`Workdir.open` (read-only, clear errors), also on the results published in docs/results."""

from __future__ import annotations

import hashlib
import shutil
import json
from pathlib import Path

import ml_collections
import numpy as np
import pytest

from experiments import validation
from experiments.configs import fields
from rnn_dynamics import provenance, results
from rnn_dynamics.errors import ConfigError, CorruptFileError, UserError
from rnn_dynamics.workdir import (
  LEFT_OUT_FILE,
  GroupSpec,
  GroupSpecMismatch,
  LeftOutError,
  ReadOnlyWorkdirError,
  Workdir,
  WorkdirConfigMismatch,
  group_config,
  publish,
)

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "docs" / "results"


def _config(**kw) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(dict(seed=0, lr=0.01, progress_every_s=5.0), **kw))


def _snapshot(path: Path) -> dict[str, str]:
  return {
    str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
    for f in sorted(path.rglob("*"))
    if f.is_file()
  }


def _finished_group(path: Path, name: str = "T10", runs: int = 2) -> None:
  # What `Workdir.save_group` leaves: traces and params first, the results file last.
  folder = path / "groups" / name
  results.write_npz(folder / "traces.npz", {"step": np.arange(3.0)[None].repeat(runs, 0)})
  results.write_npz(folder / "params.npz", {"w_hh": np.ones((runs, 2, 2))})
  results.write_results(folder / "results", [dict(seed=s, solved=True) for s in range(runs)])


def test_writer_records_the_config_and_refuses_another(tmp_path):
  Workdir(tmp_path, _config())
  Workdir(tmp_path, _config(progress_every_s=60.0))  # bookkeeping may change
  with pytest.raises(WorkdirConfigMismatch, match="lr"):
    Workdir(tmp_path, _config(lr=0.1))
  assert results.read_json(tmp_path / "config.json")["lr"] == 0.01


def test_fields_that_choose_groups_may_change_and_no_other(tmp_path):
  # A config that names `lengths` as choosing its groups (`fields.chooses_groups`) resumes
  # its workdir with another `lengths` and records it; every other field is still compared,
  # and a config that does not name it is refused as before.
  def config(lengths, lr=0.01, declared=True):
    c = _config(lengths=lengths, lr=lr)
    if declared:
      fields.chooses_groups(c, "lengths")
    return c

  Workdir(tmp_path, config((20, 50)))
  Workdir(tmp_path, config((20, 50, 100)))
  assert results.read_json(tmp_path / "config.json")["lengths"] == [20, 50, 100]
  with pytest.raises(WorkdirConfigMismatch, match="lr: 0.01 -> 0.1"):
    Workdir(tmp_path, config((20, 50, 100), lr=0.1))
  with pytest.raises(WorkdirConfigMismatch, match="lengths"):
    Workdir(tmp_path, config((20,), declared=False))
  with pytest.raises(KeyError, match="nonexistent"):
    fields.chooses_groups(_config(), "nonexistent")


def _with_added(field: str, value, former) -> ml_collections.ConfigDict:
  c = _config()
  fields.added(c, field, value, validation.anything(), former=former)
  return c


def test_a_field_added_since_resumes_only_at_its_former_value(tmp_path):
  # A workdir written before `new_field` existed resumes under a config that declares the
  # field with its former value (`fields.added`) and holds that value, and records it.
  results.write_json(tmp_path / "config.json", _config().to_dict())  # the old config
  with pytest.raises(WorkdirConfigMismatch, match="new_field: None -> 3"):
    Workdir(tmp_path, _with_added("new_field", 3, former=0))
  with pytest.raises(WorkdirConfigMismatch, match="other_field"):
    Workdir(tmp_path, _config(other_field=0))  # not declared as added
  Workdir(tmp_path, _with_added("new_field", 0, former=0))
  saved = results.read_json(tmp_path / "config.json")
  assert saved["new_field"] == 0 and saved["former_values"] == {"new_field": 0}
  with pytest.raises(WorkdirConfigMismatch, match="new_field: 0 -> 3"):
    Workdir(tmp_path, _with_added("new_field", 3, former=0))  # recorded: now it is fixed


def test_an_old_config_json_resumes_after_a_field_is_added(tmp_path, monkeypatch):
  # The config.json the pathological binary's long preset wrote before a field existed
  # (today's, without a field the config is then made to declare as added).
  from experiments import validation
  from experiments.configs import pathological

  def config(value):
    c = pathological.get_config("long")
    c.task = "addition"
    fields.added(c, "warmup_updates", value, validation.COUNT, former=0)
    return pathological.resolve(validation.validate(c, "pathological"))

  old = json.loads(json.dumps(config(0).to_dict()))
  del old["warmup_updates"], old["former_values"]
  results.write_json(tmp_path / "config.json", old)
  with pytest.raises(WorkdirConfigMismatch, match="warmup_updates: None -> 500"):
    Workdir(tmp_path, config(500))
  old_lr = dict(old, lr=0.5)  # and a change to an existing field is still refused
  results.write_json(tmp_path / "config.json", old_lr)
  with pytest.raises(WorkdirConfigMismatch, match="lr: 0.5 -> 0.01"):
    Workdir(tmp_path, config(0))
  results.write_json(tmp_path / "config.json", old)
  Workdir(tmp_path, config(0))


def test_a_removed_field_resumes_only_at_the_value_the_code_kept(tmp_path):
  # `clipping` is gone (every algorithm clips as its row of the algorithm table says): a
  # published workdir's "norm" is what the code still does, so it resumes and the field is
  # dropped; "elementwise" is refused with one line that says why.
  saved = results.read_json(PUBLISHED / "fig7_cpu" / "config.json")
  assert saved["clipping"] == "norm"
  now = ml_collections.ConfigDict({k: v for k, v in saved.items() if k != "clipping"})
  results.write_json(tmp_path / "config.json", dict(saved, clipping="elementwise"))
  with pytest.raises(WorkdirConfigMismatch) as refused:
    Workdir(tmp_path, now)
  message = str(refused.value)
  assert "\n" not in message and "clipping='elementwise'" in message
  assert "sgd_elementwise" in message and "new --workdir" in message
  results.write_json(tmp_path / "config.json", saved)
  with pytest.raises(WorkdirConfigMismatch, match="lr: 0.01 -> 0.1"):
    Workdir(tmp_path, ml_collections.ConfigDict(dict(now.to_dict(), lr=0.1)))  # still compared
  Workdir(tmp_path, now)
  assert "clipping" not in results.read_json(tmp_path / "config.json")
  Workdir(tmp_path, now)  # and resumes from then on


def test_the_published_fig7_cpu_config_resumes_under_todays_cpu_preset(tmp_path):
  # docs/results/fig7_cpu was written before the baselines' two fields existed (and with
  # `clipping`, since removed): today's cpu preset declares them as added, at the values
  # that run every algorithm of a length in one group as that run did, so the committed
  # config.json resumes and records them; another value is a different experiment.
  from experiments.configs import success_rate

  def cpu(**overrides):
    c = success_rate.get_config("cpu")
    c.update(overrides)
    return validation.validate(c, "success_rate")

  committed = results.read_json(PUBLISHED / "fig7_cpu" / "config.json")
  assert "baselines_after_sgd_cr" not in committed and "baseline_min_updates" not in committed
  results.write_json(tmp_path / "config.json", committed)
  with pytest.raises(WorkdirConfigMismatch, match="baselines_after_sgd_cr: None -> True"):
    Workdir(tmp_path, cpu(baselines_after_sgd_cr=True))
  with pytest.raises(WorkdirConfigMismatch, match="baseline_min_updates: None -> 500"):
    Workdir(tmp_path, cpu(baseline_min_updates=500))
  Workdir(tmp_path, cpu()).close()
  saved = results.read_json(tmp_path / "config.json")
  assert (saved["baselines_after_sgd_cr"], saved["baseline_min_updates"]) == (False, 0)
  assert "clipping" not in saved
  assert {k: v for k, v in saved.items() if k in committed} == {
    k: v for k, v in committed.items() if k != "clipping"
  }


def test_open_reads_what_the_writer_wrote_and_writes_nothing(tmp_path):
  wd = Workdir(tmp_path, _config())
  _finished_group(tmp_path, "T10")
  _finished_group(tmp_path, "T20", runs=3)
  (tmp_path / "groups" / "T50").mkdir()  # a group being written: no results.json yet
  wd.write_table([dict(seed=0, error=float("nan"))])
  before = _snapshot(tmp_path)

  ro = Workdir.open(tmp_path)
  assert ro.read_only and ro.config == wd.config
  assert ro.groups() == ["T10", "T20"]
  assert [r["seed"] for r in ro.load_rows("T20")] == [0, 1, 2]
  assert ro.load_traces("T20")["step"].shape == (3, 3)
  assert ro.load_params("T10")["w_hh"].shape == (2, 2, 2)
  group = ro.load_group("T10")
  assert len(group["rows"]) == 2 and set(group["traces"]) == {"step"}
  assert ro.table() == [dict(seed=0, error=None)]  # NaN is stored as null
  assert ro.table("generalization", default=[]) == []
  assert ro.exists("results.csv") and not ro.exists("nothing.json")
  with pytest.raises(ReadOnlyWorkdirError):
    ro.write_table([])
  assert _snapshot(tmp_path) == before


def test_open_refuses_what_is_not_a_workdir(tmp_path):
  with pytest.raises(ConfigError, match="no such folder"):
    Workdir.open(tmp_path / "missing")
  with pytest.raises(ConfigError, match="no config.json"):
    Workdir.open(tmp_path)
  assert not (tmp_path / "config.json").exists()


@pytest.mark.parametrize(
  "damage, match",
  [
    ("config.json", "config.json is damaged"),
    ("groups/T10/results.json", "results.json is damaged"),
    ("groups/T10/traces.npz", "traces.npz is damaged"),
  ],
)
def test_open_names_a_damaged_file(tmp_path, damage, match):
  Workdir(tmp_path, _config())
  _finished_group(tmp_path)
  (tmp_path / damage).write_bytes(b'{"seed": 0, "solv')
  with pytest.raises(CorruptFileError, match=match) as e:
    Workdir.open(tmp_path).load_group("T10")
  assert isinstance(e.value, UserError) and e.value.exit_code == 1


def test_open_asks_for_a_file_that_is_not_there(tmp_path):
  Workdir(tmp_path, _config())
  wd = Workdir.open(tmp_path)
  with pytest.raises(ConfigError, match="has no summary.json"):
    wd.read_json("summary.json")
  with pytest.raises(ConfigError, match="has no table.json"):
    wd.table("table")


# Every published folder (the benchmarks' JSON files are not workdirs).
_PUBLISHED_RUNS = sorted(p.name for p in PUBLISHED.iterdir() if (p / "config.json").exists())


def test_the_published_runs_are_found():
  assert {"fig7_cpu", "generalization_long", "nottingham_sgd"} <= set(_PUBLISHED_RUNS)


@pytest.mark.parametrize("name", _PUBLISHED_RUNS)
def test_published_results_open(name):
  wd = Workdir.open(PUBLISHED / name)
  assert wd.config["seed"] is not None
  # Files the copy was published without (`publish --leave_out`), as it lists them (the
  # copies published before `left_out.json` existed, in `partial.json`).
  left_out = wd.left_out()
  for group in wd.groups():
    g = wd.load_group(group)
    runs = len(g["rows"])
    assert all(a.shape[0] == runs for a in g["traces"].values())
    if not any(Path(f"groups/{group}/params.npz").match(p) for p in left_out):
      assert all(a.shape[0] == runs for a in wd.load_params(group).values())
    elif not (wd.group_path(group) / "params.npz").exists():
      with pytest.raises(LeftOutError, match="left out by publish"):
        wd.load_params(group)
  if "dataset" in wd.config:  # a natural task's fit
    assert wd.table("history") and wd.table("runs") and "|" in wd.read_text("table.md")
    assert wd.read_npz("best_params.npz")


# Every committed group that records what it ran (all of them since group files exist).
_PUBLISHED_GROUPS = sorted(
  (p.parents[2].name, p.parent.name) for p in PUBLISHED.glob("*/groups/*/group.json")
)


def test_the_committed_sweeps_record_every_group():
  # Every sweep folder, finished or partial, says per group what it ran.
  for name in _PUBLISHED_RUNS:
    wd = Workdir.open(PUBLISHED / name)
    assert set(wd.groups()) | set(wd.in_progress()) == set(wd.group_specs()), name
  assert ("fig7_long", "T200_baselines") in _PUBLISHED_GROUPS


@pytest.mark.parametrize("name, group", _PUBLISHED_GROUPS)
def test_a_committed_group_spec_agrees_with_its_rows(name, group):
  wd = Workdir.open(PUBLISHED / name)
  spec = wd.group_spec(group)
  rows = wd.load_rows(group) if wd.is_done(group) else wd.in_progress()[group]
  # Its runs are its rows, labelled as the spec says; the lengths and budget too.
  assert spec.runs == len(rows)
  assert spec == GroupSpec.of(wd.config, dict(wd.config, **spec.overrides), rows)
  for r in rows:
    assert r.get("length", spec.min_length) == spec.min_length
    assert (r.get("min_length", spec.min_length), r.get("max_length", spec.max_length)) == (
      spec.min_length,
      spec.max_length,
    )
    assert r.get("budget", spec.max_updates) == spec.max_updates
    assert r["updates_done"] <= spec.max_updates and r.get("task", spec.task) == spec.task


def test_fig7_long_groups_say_the_lengths_and_budgets_they_ran():
  wd = Workdir.open(PUBLISHED / "fig7_long")
  assert (wd.config["min_length"], wd.config["max_updates"]) == (50, 150_000)  # as given
  ran = {g: (s.min_length, s.max_length, s.max_updates) for g, s in wd.group_specs().items()}
  assert ran == {
    "T50_sgd_cr": (50, 50, 150_000),
    "T50_baselines": (50, 50, 20_000),
    "T100_sgd_cr": (100, 100, 150_000),
    "T100_baselines": (100, 100, 30_000),
    "T200_sgd_cr": (200, 200, 150_000),
    "T200_baselines": (200, 200, 56_000),
  }


def _spec(wd: Workdir, **overrides) -> GroupSpec:
  config = group_config(_config(task="temporal_order", min_length=10, max_length=10,
                                max_updates=300, chunk_size=100), **overrides)
  return GroupSpec.of(wd.config, config, [dict(seed=s) for s in range(2)])


class _Result:
  def __init__(self, rows):
    self.rows, self.traces = rows, {"step": np.zeros((len(rows), 1))}


def test_a_group_records_its_spec_first_and_refuses_another(tmp_path):
  base = _config(task="temporal_order", min_length=10, max_length=10, max_updates=300,
                 chunk_size=100)
  wd = Workdir(tmp_path, base)
  spec = _spec(wd, min_length=20, max_length=20)
  assert spec.overrides == dict(max_length=20, min_length=20) and spec.runs == 2
  assert spec.labels == {"seed": [0, 1]}
  seen = []

  def train():  # the spec is on disk while the group trains
    seen.append(Workdir.open(tmp_path).group_spec("T20"))
    _finished_group(tmp_path, "T20")
    return _Result([dict(seed=s, solved=True) for s in range(2)])

  group = wd.group("T20", spec, train)
  assert seen == [spec] and group.spec == spec and len(group.rows) == 2
  assert results.read_json(tmp_path / "config.json") == json.loads(base.to_json())
  assert results.read_json(tmp_path / "groups" / "T20" / "group.json") == spec.to_json()
  # Asked again, it is loaded, not trained.
  again = wd.group("T20", spec, lambda: pytest.fail("a finished group was trained again"))
  assert again.rows == Workdir.open(tmp_path).load_rows("T20")
  # Asked to run otherwise (the code derives another budget): refused, in one line.
  other = _spec(wd, min_length=20, max_length=20, max_updates=500)
  with pytest.raises(GroupSpecMismatch, match=r"group T20 ran .*max_updates: 300 -> 500") as e:
    wd.group("T20", other, lambda: pytest.fail("trained"))
  assert "\n" not in str(e.value)
  assert Workdir.open(tmp_path).group_spec("T20") == spec
  with pytest.raises(ReadOnlyWorkdirError):
    Workdir.open(tmp_path).group("T20", spec, lambda: pytest.fail("trained"))


def test_a_label_added_since_resumes_only_at_its_former_value(tmp_path):
  # Groups saved before their runs got a `budget` label (docs/results/fig7_cpu): declared
  # with its former value, a saved spec without it matches where every run holds that value.
  base = _config(task="temporal_order", min_length=10, max_length=10, max_updates=300,
                 chunk_size=100)
  wd = Workdir(tmp_path, base)
  old = _spec(wd)
  assert "budget" not in old.labels
  wd.group("T10", old, lambda: _finished_group(tmp_path, "T10") or _Result([]))
  wd.write_progress("T20", [])  # and one still training, whose spec is recorded too
  (tmp_path / "groups" / "T20").mkdir()
  results.write_json(tmp_path / "groups" / "T20" / "group.json", old.to_json())

  def spec(budgets=(300, 300), **overrides):
    config = group_config(base, **overrides)
    return GroupSpec.of(wd.config, config, [dict(seed=s, budget=b) for s, b in enumerate(budgets)])

  untrained = lambda: pytest.fail("trained")
  with pytest.raises(GroupSpecMismatch, match=r"\(labels.budget: None -> \[300\]\)"):
    wd.group("T10", spec(), untrained)  # not declared
  with pytest.raises(GroupSpecMismatch, match=r"\(labels.budget: None -> \[300\]\)"):
    wd.group("T10", spec(), untrained, former_labels=dict(budget=200))
  with pytest.raises(GroupSpecMismatch, match=r"\(labels.budget: None -> \[300, 500\]\)"):
    wd.group("T10", spec((300, 500)), untrained, former_labels=dict(budget=300))
  # Any other change is still refused, and the message names only it.
  with pytest.raises(GroupSpecMismatch, match=r"\(max_updates: 300 -> 500, overrides"):
    wd.group("T10", spec((500, 500), max_updates=500), untrained, former_labels=dict(budget=500))
  finished = wd.group("T10", spec(), untrained, former_labels=dict(budget=300))
  assert len(finished.rows) == 2 and Workdir.open(tmp_path).group_spec("T10") == old
  seen = []

  def train():
    seen.append(Workdir.open(tmp_path).group_spec("T20"))
    return _Result([])

  wd.group("T20", spec(), train, former_labels=dict(budget=300))
  assert seen == [spec()]  # a group still training records the labels its rows will have


def test_a_workdir_without_group_files_opens_and_gets_them(tmp_path):
  # What older code left: a finished group and one training, no group.json anywhere.
  base = _config(task="temporal_order", min_length=10, max_length=10, max_updates=300,
                 chunk_size=100)
  wd = Workdir(tmp_path, base)
  _finished_group(tmp_path, "T10")
  wd.write_progress("T20", [dict(seed=s, updates_done=100, solved=False) for s in range(2)])
  wd.close()
  old = Workdir.open(tmp_path)
  assert old.group_specs() == {} and old.group_spec("T10") is None
  # Readers get the config's values (what older code recorded) and the rows' runs.
  assert old.spec("T10") == GroupSpec.of(old.config, old.config, old.load_rows("T10"))
  assert old.spec("T20").runs == 2 and old.spec("T20").max_updates == 300
  # A writer loads and resumes them, and records their specs then.
  wd = Workdir(tmp_path, base)
  spec = _spec(wd)
  assert wd.group("T10", spec, lambda: pytest.fail("trained")).rows == old.load_rows("T10")
  trained = []
  wd.group("T20", _spec(wd, min_length=20, max_length=20), lambda: trained.append(1) or
           _Result([]))
  assert trained == [1]
  assert set(Workdir.open(tmp_path).group_specs()) == {"T10", "T20"}
  assert Workdir.open(tmp_path).group_spec("T10") == spec


def test_notebooks_find_their_workdirs_by_one_naming_scheme(tmp_path, monkeypatch):
  from rnn_dynamics.workdir import locate, locate_all, named_workdirs

  def workdir(path):
    (tmp_path / path).mkdir(parents=True)
    (tmp_path / path / "config.json").write_text("{}")

  (tmp_path / "notebooks").mkdir()
  workdir("docs/published_a")
  workdir("docs/published_b")
  (tmp_path / "docs" / "published_c").mkdir()  # not a workdir: no config.json
  monkeypatch.chdir(tmp_path / "notebooks")  # where Jupyter starts kernels
  monkeypatch.delenv("RNN_DYNAMICS_SOME_BOOK", raising=False)
  # runs/x does not exist: the published folder opens, found from the repository root.
  assert locate("some_book", "runs/x", "docs/published_a") == Path("../docs/published_a")
  assert locate_all("some_book", "runs/*", "docs/published_*") == [
    Path("../docs/published_a"), Path("../docs/published_b")]
  workdir("runs/x")
  assert locate("some_book", "runs/x", "docs/published_a") == Path("../runs/x")
  # The user's own runs replace the published ones rather than mix with them.
  assert locate_all("some_book", "runs/*", "docs/published_*") == [Path("../runs/x")]
  # The variable is named after the notebook, upper case, and wins over the defaults.
  monkeypatch.setenv("RNN_DYNAMICS_SOME_BOOK", "/elsewhere")
  assert locate("some_book", "runs/x") == Path("/elsewhere")
  assert named_workdirs("some_book") == [Path("/elsewhere")]
  monkeypatch.setenv("RNN_DYNAMICS_SOME_BOOK", "docs/published_b, docs/published_*")
  assert locate_all("some_book", "runs/x") == [
    Path("../docs/published_b"), Path("../docs/published_a"), Path("../docs/published_b")]
  monkeypatch.setenv("RNN_DYNAMICS_SOME_BOOK", "")
  assert named_workdirs("some_book") is None
  assert locate("some_book", "runs/none") == Path("runs/none")  # nothing exists: the first
  assert locate_all("some_book", "runs/none*") == []


_HOLD_SCRIPT = """
import sys, time, ml_collections
from rnn_dynamics.workdir import Workdir
Workdir(sys.argv[1], ml_collections.ConfigDict(dict(a=1)))
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_writer_is_refused_while_the_first_runs(tmp_path):
  import subprocess
  import sys

  from rnn_dynamics.workdir import WorkdirBusyError

  config = ml_collections.ConfigDict(dict(a=1))
  holder = subprocess.Popen(
    [sys.executable, "-c", _HOLD_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True
  )
  try:
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(WorkdirBusyError, match=rf"in use by another run \(pid {holder.pid}, since"):
      Workdir(tmp_path, config)
    assert Workdir.open(tmp_path).config == {"a": 1}  # readers are never refused
    # The same failure from a binary: one line, a usage error's exit code, nothing written.
    before = sorted(p.name for p in tmp_path.iterdir())
    run = subprocess.run(
      [sys.executable, "-m", "experiments.threshold_grid",
       "--config=experiments/configs/threshold_grid.py:test", f"--workdir={tmp_path}"],
      cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].endswith("or pass another --workdir")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
  finally:
    holder.kill()
    holder.wait()
  mine = Workdir(tmp_path, config)  # the lock went with its process
  Workdir(tmp_path, config)  # and one process may open its own workdir again
  mine.close()  # lets another process in
  other = subprocess.Popen(
    [sys.executable, "-c", _HOLD_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True
  )
  try:
    assert other.stdout.readline().strip() == "held"
  finally:
    other.kill()
    other.wait()


def test_publish_copies_the_results_and_leaves_the_run_state_behind(tmp_path):
  source, dest = tmp_path / "run", tmp_path / "docs" / "fig7"
  wd = Workdir(source, _config())
  _finished_group(source, "T10")
  wd.write_table([dict(seed=0, solved=True)])
  (source / "success_rate.png").write_bytes(b"png")
  (source / "success_rate.svg").write_text("<svg/>")
  wd.write_progress("T20", [dict(seed=0, updates_done=5)])
  (source / "checkpoints" / "T20").mkdir(parents=True)
  with pytest.raises(ConfigError, match=r"groups still training \(T20\).*--partial"):
    publish(source, dest)
  assert not dest.exists()
  (source / "progress" / "T20.json").unlink()
  (source / "progress" / "T20.csv").unlink()
  with pytest.raises(ConfigError, match="see checkpoints/"):  # progress lost, state not
    publish(source, dest)
  (source / "checkpoints" / "T20").rmdir()
  wd.close()

  size = publish(source, dest)
  files = sorted(str(f.relative_to(dest)) for f in dest.rglob("*") if f.is_file())
  assert files == [
    "config.json", "groups/T10/params.npz", "groups/T10/results.csv",
    "groups/T10/results.json", "groups/T10/traces.npz", "provenance.json", "results.csv",
    "results.json", "success_rate.png",
  ]  # no .lock, no svg, no empty progress/ or checkpoints/
  assert size == sum((dest / f).stat().st_size for f in files)
  assert Workdir.open(dest).load_rows("T10") == Workdir.open(source).load_rows("T10")
  with pytest.raises(ConfigError, match="exists: pass --overwrite"):
    publish(source, dest)
  (dest / "stale.txt").write_text("from an earlier publish")
  publish(source, dest, overwrite=True)
  assert not (dest / "stale.txt").exists()
  assert not list(dest.parent.glob(".*publishing"))


def test_publish_names_the_largest_files_of_a_heavy_copy(tmp_path):
  from experiments.publish import size_warning

  (tmp_path / "groups" / "g").mkdir(parents=True)
  (tmp_path / "groups" / "g" / "params.npz").write_bytes(b"x" * 3 * 2**20)
  (tmp_path / "traces.npz").write_bytes(b"x" * 2**20)
  (tmp_path / "config.json").write_text("{}")
  assert size_warning(tmp_path, 4.0, limit_mb=5.0) is None
  line = size_warning(tmp_path, 6.0, limit_mb=5.0)
  assert "\n" not in line and line.startswith("warning: 6.0 MB, over 5 MB")
  assert line.index("groups/g/params.npz (3.0 MB)") < line.index("traces.npz (1.0 MB)")
  assert "--leave_out" in line


def test_publish_refuses_a_workdir_a_run_is_writing(tmp_path):
  import subprocess
  import sys

  holder = subprocess.Popen(
    [sys.executable, "-c", _HOLD_SCRIPT, str(tmp_path / "run")], stdout=subprocess.PIPE,
    text=True,
  )
  try:
    assert holder.stdout.readline().strip() == "held"
    # The binary: one line naming the writer, a usage error's exit code, nothing written.
    run = subprocess.run(
      [sys.executable, "-m", "experiments.publish", f"--workdir={tmp_path / 'run'}",
       f"--out={tmp_path / 'out'}"],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert run.returncode == 2
    last = run.stderr.strip().splitlines()[-1]
    assert f"still being written by a run (pid {holder.pid}, since" in last
    assert not (tmp_path / "out").exists()
  finally:
    holder.kill()
    holder.wait()
  run = subprocess.run(
    [sys.executable, "-m", "experiments.publish", f"--workdir={tmp_path / 'run'}",
     f"--out={tmp_path / 'out'}"],
    cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
  )
  assert run.returncode == 0, run.stderr
  assert run.stdout.startswith("published ") and (tmp_path / "out" / "config.json").is_file()


def test_partial_publish_carries_the_run_state_and_says_how_far_it_got(tmp_path):
  source, dest = tmp_path / "run", tmp_path / "docs" / "addition_long"
  wd = Workdir(source, _config(max_updates=1000))
  _finished_group(source, "T10")
  wd.write_progress(
    "T20",
    [
      dict(seed=0, updates_done=300, solved=False, diverged=False, best_screen_error=0.3),
      dict(seed=1, updates_done=200, solved=True, diverged=False, best_screen_error=0.0),
    ],
  )
  step = source / "checkpoints" / "T20" / "6"
  (step / "state").mkdir(parents=True)
  (step / "state" / "data").write_bytes(b"orbax")
  (step / "commit_success.txt").write_text(f"Checkpoint commit was successful to {step.absolute()}")
  (source / "checkpoints" / "T20" / "7.orbax-checkpoint-tmp-1").mkdir()  # a save cut short
  (source / "partial.json").write_text("{}")  # a stale note from an earlier copy
  wd.close()

  publish(source, dest, partial=True, leave_out=["groups/T1*/params.npz"])
  files = sorted(str(f.relative_to(dest)) for f in dest.rglob("*") if f.is_file())
  assert "checkpoints/T20/6/state/data" in files and "progress/T20.json" in files
  # Left out as asked, and only that: the finished group still reads as finished.
  assert "groups/T10/params.npz" not in files and "groups/T10/traces.npz" in files
  assert Workdir.open(dest).groups() == ["T10"]
  assert not any("tmp" in f for f in files) and ".lock" not in files
  marker = (dest / "checkpoints/T20/6/commit_success.txt").read_text()
  assert marker == "Checkpoint commit was successful to <workdir>/checkpoints/T20/6"
  status = json.loads((dest / "partial.json").read_text())
  assert status["status"] == "in progress" and status["finished_groups"] == ["T10"]
  assert status["groups"]["T20"] == dict(
    runs=2, solved=1, diverged=0, updates_done=[200, 300], budget=1000, best_screen_error=0.0
  )
  assert status["code"] == provenance.summary(source) != "not recorded"
  assert status["left_out"] == ["groups/T1*/params.npz"]
  assert results.read_json(dest / LEFT_OUT_FILE) == dict(left_out=["groups/T1*/params.npz"])
  assert Workdir.open(dest).in_progress() == Workdir.open(source).in_progress()

  # Resuming the copy makes the note stale: the writer's first write removes it and
  # records which code wrote from then on.
  resumed = Workdir(dest, _config(max_updates=1000))
  assert (dest / "partial.json").exists() and len(provenance.entries(dest)) == 1
  resumed.write_progress("T20", Workdir.open(dest).in_progress()["T20"])
  resumed.close()
  assert not (dest / "partial.json").exists()
  assert len(provenance.entries(dest)) == 2
  # ... but not the record of what the copy lacks: the workdir it became lacks it too.
  with pytest.raises(LeftOutError, match="T10/params.npz was left out"):
    Workdir.open(dest).load_params("T10")
  # A finished publish of a workdir that was once a partial copy carries no note.
  for f in (dest / "progress").iterdir():
    f.unlink()
  shutil.rmtree(dest / "checkpoints")
  (dest / "partial.json").write_text("{}")
  publish(dest, tmp_path / "final")
  assert not (tmp_path / "final" / "partial.json").exists()


def test_a_copy_records_what_it_was_published_without(tmp_path):
  """`leave_out` is recorded in the copy itself (`left_out.json`), partial or not, and a
  reader asked for such a file says it was left out by publish, not that it is damaged;
  a copy published without `leave_out` has no record."""
  source = tmp_path / "run"
  Workdir(source, _config()).close()
  for group in ("T10", "grid_a"):
    _finished_group(source, group)
  (source / "notes.md").write_text("notes")
  publish(source, tmp_path / "whole")
  whole = Workdir.open(tmp_path / "whole")
  assert not whole.exists(LEFT_OUT_FILE) and whole.left_out() == []
  assert whole.load_params("grid_a") and whole.read_text("notes.md") == "notes"

  patterns = ["groups/grid_*/params.npz", "notes.md"]
  publish(source, tmp_path / "copy", leave_out=patterns)
  copy = Workdir.open(tmp_path / "copy")
  assert results.read_json(tmp_path / "copy" / LEFT_OUT_FILE) == dict(left_out=patterns)
  assert copy.left_out() == patterns and not copy.exists("partial.json")
  assert copy.load_params("T10") and copy.load_traces("grid_a")
  file = tmp_path / "copy" / "groups" / "grid_a" / "params.npz"
  with pytest.raises(LeftOutError) as e:
    copy.load_params("grid_a")
  assert str(e.value) == (
    f"{file} was left out by publish (--leave_out='groups/grid_*/params.npz'), not "
    "damaged: open the original workdir, or publish it again without that --leave_out"
  )
  assert isinstance(e.value, ConfigError) and e.value.exit_code == 2
  with pytest.raises(LeftOutError, match=r"notes.md was left out .*--leave_out='notes.md'"):
    copy.read_text("notes.md")
  # A copy of the copy lacks the same files, and says so.
  publish(tmp_path / "copy", tmp_path / "again", leave_out=["groups/T10/traces.npz"])
  again = Workdir.open(tmp_path / "again")
  assert again.left_out() == [*patterns, "groups/T10/traces.npz"]
  with pytest.raises(LeftOutError, match=r"grid_\*/params.npz"):
    again.load_params("grid_a")
  # A file the copy kept that went missing since is damaged, as in a workdir.
  (tmp_path / "copy" / "groups" / "T10" / "params.npz").unlink()
  with pytest.raises(CorruptFileError, match="missing"):
    copy.load_params("T10")
  # Copies published before `left_out.json` existed list the patterns in `partial.json`.
  (tmp_path / "copy" / LEFT_OUT_FILE).unlink()
  results.write_json(tmp_path / "copy" / "partial.json", dict(left_out=patterns[:1]))
  with pytest.raises(LeftOutError, match="left out by publish"):
    copy.load_params("grid_a")


def test_a_checkpointed_workdir_resumes_only_on_its_device_layout(tmp_path, monkeypatch):
  wd = Workdir(tmp_path, _config())
  (tmp_path / "checkpoints" / "T20" / "3").mkdir(parents=True)
  wd.write_progress("T20", [dict(seed=0, updates_done=3)])
  wd.close()
  entry = provenance.entries(tmp_path)[-1]
  assert entry["devices"] == provenance.layout()["devices"] and "commit" in entry
  monkeypatch.setattr(provenance, "layout", lambda: dict(backend="cpu", devices=7, processes=1))
  with pytest.raises(ConfigError, match=r"device_count=" + str(entry["devices"])):
    Workdir(tmp_path, _config())
  shutil.rmtree(tmp_path / "checkpoints")  # nothing to resume: any layout will do
  Workdir(tmp_path, _config()).close()
