"""experiments/methods.py and its table (rnn_dynamics/methods.py): the method table, the
grid's pick rule, FLOPs per update, and the binary end to end on its `test` preset
(files, groups, resume after Ctrl-C, a finished workdir read back and not retrained)."""

from __future__ import annotations

import json
import shutil

import pytest

from experiments import methods as experiment
from experiments import validation
from experiments.configs import methods as configs
from rnn_dynamics import algorithms, cells, methods, paper
from rnn_dynamics.errors import ConfigError
from rnn_dynamics.synthetic import flops, sweep
from rnn_dynamics.tasks import get_task

pytestmark = pytest.mark.usefixtures("fast_compiles")  # a few hundred updates per program


# --- the table -------------------------------------------------------------------------------


def test_every_method_names_a_registered_or_pending_cell_and_a_known_algorithm():
  for name, m in methods.METHODS.items():
    assert name == f"{m.cell}_{m.algorithm}"
    assert m.cell in cells.CELLS or m.cell in methods.PENDING_CELLS, (name, m.cell)
    assert m.algorithm in algorithms.ALGORITHMS, name
    assert m.available == (m.cell in cells.CELLS)
    for task in methods.TASKS:  # a learning rate comes from somewhere on every task
      published = m.published_for(task)
      assert (published is not None and published.lr > 0) or (
        m.lr_grid and all(lr > 0 for lr in m.lr_grid)
      ), (name, task)
  assert methods.runnable() == tuple(n for n, m in methods.METHODS.items() if m.available)


def test_the_issue_s_methods_are_in_the_table():
  for name in ("rnn_sgd_cr", "rnn_sgd_c", "rnn_adam_c", "irnn_sgd_c", "orthogonal_sgd_c",
               "lstm_sgd_c", "lstm_sgd_cr", "gru_sgd_c", "gru_sgd_cr", "exprnn_adam",
               "lru_adam_c"):  # fmt: skip
    assert name in methods.METHODS


def test_the_paper_rnn_runs_its_published_set_up():
  sgd_cr = methods.get("rnn_sgd_cr")
  assert sgd_cr.published_for("temporal_order").lr == paper.FIGURE7.lr
  assert methods.task_setting("temporal_order") == (paper.FIGURE7.clip, paper.FIGURE7.alpha)
  setup = paper.PATHOLOGICAL["addition"]
  assert sgd_cr.published_for("addition").lr == setup.lr
  assert methods.task_setting("addition") == (setup.clip, setup.alpha)
  assert methods.rnn_init("addition") == setup.init
  hp = methods.hparams(sgd_cr, "addition", setup.lr)
  assert (float(hp.clip), float(hp.alpha)) == (setup.clip, setup.alpha)
  assert float(hp.lr) == pytest.approx(setup.lr)
  # Ω only where the algorithm uses it; Adam's rows run the Adam optimizer.
  assert float(methods.hparams(methods.get("rnn_sgd_c"), "addition", 0.01).alpha) == 0.0
  assert methods.hparams(methods.get("rnn_adam_c"), "addition", 0.01).optimizer == "adam"
  # Only the paper's RNN has published rates for these tasks.
  assert {n for n, m in methods.METHODS.items() if m.published} == {"rnn_sgd_cr", "rnn_sgd_c"}


def test_presets_run_what_this_build_has():
  for preset in ("long", "cpu"):
    assert configs.get_config(preset).methods == methods.runnable()
  test = configs.get_config("test")
  used = {methods.get(n).cell for n in test.methods}
  assert used <= {"rnn", "tanh", "irnn"}
  assert any(c != "rnn" for c in used)  # an autodiff cell
  assert any(methods.get(n).algorithm == "adam_c" for n in test.methods)
  long = configs.get_config("long")
  assert long.seeds >= 10 and max(long.lengths.temporal_order) == 200
  assert tuple(long.lengths.temporal_order) == (50, 100, 200)
  assert tuple(long.lengths.addition) == (100, 200) and long.grid_length == 50


def _grid(results):
  """Grid rows from `{lr: [(solved, updates_to_solve, final_error), ...]}`."""
  return [
    dict(lr=lr, solved=s, updates_to_solve=u if s else None, final_error=e)
    for lr, runs in results.items()
    for s, u, e in runs
  ]


def test_the_grid_picks_most_solved_then_fewest_updates_then_lowest_error_then_smaller_lr():
  # Most solved wins, however slowly.
  rows = _grid({0.01: [(1, 900, 0.0), (1, 950, 0.0)], 0.1: [(1, 100, 0.0), (0, 0, 0.3)]})
  assert methods.pick_lr(rows) == 0.01
  # Equal counts: the fewest median updates to solve.
  rows = _grid({0.01: [(1, 900, 0.0), (0, 0, 0.5)], 0.1: [(1, 300, 0.0), (0, 0, 0.2)]})
  assert methods.pick_lr(rows) == 0.1
  # None solved: the lowest median final error.
  rows = _grid({0.001: [(0, 0, 0.7), (0, 0, 0.6)], 0.01: [(0, 0, 0.1), (0, 0, 0.5)]})
  assert methods.pick_lr(rows) == 0.01
  # A tie everywhere: the smaller rate.
  rows = _grid({0.03: [(1, 500, 0.0)], 0.003: [(1, 500, 0.0)]})
  assert methods.pick_lr(rows) == 0.003
  summary = methods.grid_summary(_grid({0.1: [(1, 100, 0.0), (1, 300, 0.0), (0, 0, 0.4)]}))
  assert summary == [dict(lr=0.1, runs=3, solved=2, median_updates=200.0, median_error=0.0)]
  with pytest.raises(ValueError):
    methods.pick_lr([])


def test_sizes_match_state_by_default_or_parameters():
  rnn, irnn = methods.get("rnn_sgd_cr"), methods.get("irnn_sgd_c")
  # 6 inputs, 50 units, 4 classes: W_in, W_hh, b, the readout's weights and bias.
  assert methods.parameter_count(rnn, "temporal_order", 50) == 6 * 50 + 50 * 50 + 50 + 50 * 4 + 4
  assert methods.hidden_units(irnn, "temporal_order", 50) == 50
  # The IRNN has the paper RNN's parameters at any size: matched by parameters, the same.
  assert methods.hidden_units(irnn, "temporal_order", 50, "parameters") == 50
  # A cell with four blocks (an LSTM's count) gets about half the units.
  lstm_like = lambda n: 4 * (6 * n + n * n + n) + 4 * n + 4
  target = 6 * 50 + 50 * 50 + 50 + 50 * 4 + 4
  n = methods.closest_size(lstm_like, target, 200)
  assert n == 24 and lstm_like(24) - target == 22  # 3,076 against 3,054
  assert methods.closest_size(lambda n: 10 * n, 25, 10) == 2  # ties: the smaller
  with pytest.raises(ValueError, match="match must be"):
    methods.hidden_units(irnn, "temporal_order", 50, "flops")


# --- FLOPs per update ------------------------------------------------------------------------


@pytest.mark.parametrize("name,task", [("rnn_sgd_cr", "temporal_order"), ("irnn_sgd_c", "addition")])
def test_flops_per_update_are_affine_in_the_buffer_length(name, task):
  config = validation.validate(configs.get_config("test"), "methods")
  m = methods.get(name)
  least = get_task(task).min_length
  gcfg = experiment.group_config(config, m, task, least, config.chunk_size)
  hp = methods.hparams(m, task, 0.01)
  line = flops.affine_flops(gcfg, hp)
  assert line[1] > 0
  length = least + 7
  direct = flops.counted_flops(gcfg, hp, length)
  assert flops.update_flops(line, task, length) == pytest.approx(direct, rel=1e-9)


# --- the binary end to end --------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """The test preset, run once in this process."""
  config = validation.validate(configs.get_config("test"), "methods")
  workdir = tmp_path_factory.mktemp("methods")
  return workdir, config, experiment.run(config, str(workdir))


@pytest.fixture
def trained(monkeypatch) -> list[str]:
  """The names of the groups trained (not read back) while the test runs, in order."""
  names: list[str] = []
  run_group = sweep.run_group

  def counting(*args, **kwargs):
    names.append(kwargs["name"].split()[-1])  # "[i/n] <group>"
    return run_group(*args, **kwargs)

  monkeypatch.setattr(sweep, "run_group", counting)
  return names


def _groups(config) -> set[str]:
  grid = {
    experiment.group_name(m, t, config.grid_length, grid=True)
    for t in config.tasks
    for m in config.methods
    if methods.get(m).needs_grid(t)
  }
  main = {
    experiment.group_name(m, t, n) for t in config.tasks for n in config.lengths[t] for m in config.methods
  }
  return grid | main


def test_the_test_preset_writes_every_group_table_and_figure(finished):
  workdir, config, out = finished
  done = {p.name for p in (workdir / "groups").iterdir() if (p / "results.json").exists()}
  assert done == _groups(config)
  for name in ("results.csv", "table.md", "table.csv", "grid.md", "grid_runs.json",
               "flops.json", "success_rate.png", "updates_to_solve.png"):  # fmt: skip
    assert (workdir / name).stat().st_size > 0, name
  table = json.loads((workdir / "table.json").read_text())
  n_points = sum(len(config.lengths[t]) for t in config.tasks)
  assert len(table) == n_points * len(config.methods)
  for row in table:
    assert row["seeds"] == config.seeds and row["budget_updates"] == config.max_updates
    assert row["budget_sequences"] == config.max_updates * config.batch_size
    assert row["flops_per_update"] > 0 and row["params"] > 0 and row["wall_s"] > 0
    assert row["lr_source"] == ("published" if row["method"] == "rnn_sgd_cr" else "grid")
    assert 0 <= row["success_low"] <= row["success_rate"] <= row["success_high"] <= 1
  # Longer sequences cost more per update; the same network has the same parameters.
  by = {(r["method"], r["task"], r["length"]): r for r in table}
  for m in config.methods:
    assert by[(m, "temporal_order", 12)]["flops_per_update"] > by[(m, "temporal_order", 10)]["flops_per_update"]
    assert by[(m, "temporal_order", 12)]["params"] == by[(m, "temporal_order", 10)]["params"]
  # The paper's RNN (hand-written BPTT) and the IRNN cell have the same parameters.
  assert by[("rnn_sgd_cr", "temporal_order", 10)]["params"] == by[("irnn_sgd_c", "temporal_order", 10)]["params"]
  # Every main run used its grid's pick (or the published rate).
  grid = json.loads((workdir / "grid.json").read_text())
  picks = {(g["method"], g["task"]): g["lr"] for g in grid if g["picked"]}
  assert set(picks) == {(m, t) for t in config.tasks for m in config.methods if m != "rnn_sgd_cr"}
  for r in out["rows"]:
    if r["lr_source"] == "grid":
      assert r["lr"] == picks[(r["method"], r["task"])]
  assert len(out["grid"]) == len(picks) * 5 * config.grid_seeds
  assert {r["seed"] for r in out["grid"]} == set(range(config.grid_seed, config.grid_seed + config.grid_seeds))
  # A group says what it ran: its cell, task, length, and Ω only where the method uses it.
  spec = json.loads((workdir / "groups" / "irnn_sgd_c_addition_T10" / "group.json").read_text())
  assert spec["overrides"]["cell"] == "irnn" and spec["overrides"]["omega_enabled"] is False
  assert (spec["task"], spec["min_length"], spec["max_length"]) == ("addition", 10, 10)
  assert not any((workdir / "checkpoints").glob("*/*"))


def test_a_finished_workdir_is_read_back_not_retrained(finished, monkeypatch):
  workdir, config, out = finished

  def no_training(*args, **kwargs):
    raise AssertionError("a finished group was trained again")

  monkeypatch.setattr(sweep, "run_group", no_training)
  monkeypatch.setattr(flops, "affine_flops", no_training)  # flops.json is read back too
  config = config.copy_and_resolve_references()
  config.stage = "main"  # a stage is not part of what the workdir's config compares
  again = experiment.run(config, str(workdir))
  assert again == out


def test_a_finished_workdir_takes_another_length_and_trains_only_its_groups(finished, tmp_path, trained):
  # The lengths choose groups (`fields.chooses_groups`): the finished test preset's
  # workdir, asked for one more length, trains that length's groups and reads back the
  # rest; its table then holds every length.
  workdir, config, out = finished
  grown = tmp_path / "grown"
  shutil.copytree(workdir, grown)
  config = config.copy_and_resolve_references()
  config.lengths.temporal_order = (*config.lengths.temporal_order, 11)
  again = experiment.run(config, str(grown))
  assert sorted(trained) == sorted(
    experiment.group_name(m, "temporal_order", 11) for m in config.methods
  )
  old = {(r["method"], r["task"], r["length"], r["seed"]): r for r in out["rows"]}
  new = {(r["method"], r["task"], r["length"], r["seed"]): r for r in again["rows"]}
  assert {k: new[k] for k in old} == old and len(new) == len(old) + len(config.methods) * config.seeds
  table = json.loads((grown / "table.json").read_text())
  assert {r["length"] for r in table if r["task"] == "temporal_order"} == {10, 11, 12}


def test_seed_blocks_keep_what_each_group_holds_and_add_the_rest():
  base = "m_task_T50"
  assert experiment.seed_blocks(base, 5, {}) == [(base, range(0, 5))]
  five = {base: [0, 1, 2, 3, 4]}
  assert experiment.seed_blocks(base, 10, five) == [(base, range(0, 5)), (f"{base}_seeds5", range(5, 10))]
  assert experiment.seed_blocks(base, 3, five) == [(base, range(0, 5))]  # run() keeps seeds 0–2
  ten = {**five, f"{base}_seeds5": [5, 6, 7, 8, 9], "other_T50": [0, 1]}
  assert experiment.seed_blocks(base, 15, ten) == [
    (base, range(0, 5)), (f"{base}_seeds5", range(5, 10)), (f"{base}_seeds10", range(10, 15))
  ]
  with pytest.raises(ConfigError, match="holds seeds \\[0, 2\\]"):
    experiment.seed_blocks(base, 5, {base: [0, 2]})


def test_a_finished_workdir_takes_more_seeds_and_trains_only_them(finished, tmp_path, trained):
  # `seeds` chooses groups too: asked for one more seed, the finished test preset trains
  # that seed alone in a new group per method, task and length (the grid is untouched)
  # and reads back every run it had; asked for fewer, it trains nothing and keeps only
  # the seeds asked for.
  workdir, config, out = finished
  grown = tmp_path / "grown"
  shutil.copytree(workdir, grown)
  more = config.copy_and_resolve_references()
  more.seeds = config.seeds + 1
  again = experiment.run(more, str(grown))
  main = [(m, t, n) for t in config.tasks for n in config.lengths[t] for m in config.methods]
  assert sorted(trained) == sorted(
    f"{experiment.group_name(m, t, n)}_seeds{config.seeds}" for m, t, n in main
  )
  key = lambda r: (r["method"], r["task"], r["length"], r["seed"])  # noqa: E731
  old, new = {key(r): r for r in out["rows"]}, {key(r): r for r in again["rows"]}
  assert {k: new[k] for k in old} == old
  assert set(new) - set(old) == {(*g, config.seeds) for g in main}
  lrs = {(r["method"], r["task"]): r["lr"] for r in out["rows"]}  # the grid's picks, kept
  assert all(new[k]["lr"] == lrs[k[:2]] for k in set(new) - set(old))
  table = json.loads((grown / "table.json").read_text())
  assert len(table) == len(main) and {r["seeds"] for r in table} == {config.seeds + 1}
  for r in table:  # the wall time of both groups
    base = experiment.group_name(r["method"], r["task"], r["length"])
    walls = {g: json.loads((grown / "groups" / g / "results.json").read_text())[0]["wall_s"]
             for g in (base, f"{base}_seeds{config.seeds}")}  # fmt: skip
    assert r["wall_s"] == pytest.approx(sum(walls.values())) and min(walls.values()) > 0
  trained.clear()
  fewer = config.copy_and_resolve_references()
  fewer.seeds = 1
  back = experiment.run(fewer, str(grown))
  assert trained == [] and {r["seed"] for r in back["rows"]} == {0}
  assert {r["seeds"] for r in json.loads((grown / "table.json").read_text())} == {1}


def test_seeds_added_in_a_group_of_their_own_are_the_runs_one_group_would_train(tmp_path):
  # Pooling seed blocks is one experiment only if a seed's run does not depend on the
  # group it trains in: 1 seed, then grown to 3, gives the rows 3 seeds in one group give.
  config = configs.get_config("test")
  config.methods, config.tasks = ("rnn_sgd_cr",), ("temporal_order",)
  config.lengths.temporal_order = (10,)
  config.seeds = 3
  config = validation.validate(config, "methods")
  whole = experiment.run(config, str(tmp_path / "whole"))["rows"]
  first = config.copy_and_resolve_references()
  first.seeds = 1
  experiment.run(first, str(tmp_path / "grown"))
  grown = experiment.run(config, str(tmp_path / "grown"))["rows"]
  strip = lambda rows: sorted(  # noqa: E731  (not the group that trained it, nor its time)
    ({k: v for k, v in r.items() if k not in ("wall_s", "group")} for r in rows),
    key=lambda r: r["seed"],
  )
  assert len(whole) == 3 and strip(grown) == strip(whole)
  assert (tmp_path / "grown" / "groups" / "rnn_sgd_cr_temporal_order_T10_seeds1").is_dir()


def test_the_tables_hold_every_finished_group_wherever_a_run_is_interrupted(finished, tmp_path, stop_group):
  # A new length asked first and interrupted in its first group: the finished groups were
  # read back before it, so the table already holds all of them (the tables are removed
  # first, so only this run can have written them).
  workdir, config, out = finished
  grown = tmp_path / "grown"
  shutil.copytree(workdir, grown)
  for f in grown.glob("table.*"):
    f.unlink()
  config = config.copy_and_resolve_references()
  config.lengths.temporal_order = (11, *config.lengths.temporal_order)
  first = experiment.group_name(config.methods[0], "temporal_order", 11)
  stop_group(f"[1/{len(config.methods) * 4}] {first}")
  with pytest.raises(KeyboardInterrupt):
    experiment.run(config, str(grown))
  table = json.loads((grown / "table.json").read_text())
  assert len(table) == len(config.methods) * 3  # T = 10, 12 and addition's 10
  assert {(r["task"], r["length"]) for r in table} == {
    ("temporal_order", 10), ("temporal_order", 12), ("addition", 10)
  }


def test_interrupted_group_resumes_to_the_same_results(finished, tmp_path, stop_group, same_results):
  # One method on one task and length (its grid, then its group), Ctrl-C'd after the
  # first chunk of the group, then run again: the same files as the full run's groups.
  workdir, config, _ = finished
  small = config.copy_and_resolve_references()
  small.methods, small.tasks = ("irnn_sgd_c",), ("temporal_order",)
  small.lengths.temporal_order = (10,)
  group = experiment.group_name("irnn_sgd_c", "temporal_order", 10)
  lines = stop_group(f"[1/1] {group}")
  with pytest.raises(KeyboardInterrupt):
    experiment.run(small, str(tmp_path))
  assert (tmp_path / "groups" / "grid_irnn_sgd_c_temporal_order_T10" / "results.json").exists()
  assert not (tmp_path / "groups" / group / "results.json").exists()
  assert any((tmp_path / "checkpoints" / group).glob("*"))
  experiment.run(small, str(tmp_path))
  assert any(f"{group}: resumed from chunk 1" in line for line in lines)
  for name in ("grid_irnn_sgd_c_temporal_order_T10", group):
    a, b = tmp_path / "groups" / name, workdir / "groups" / name
    same_results(a, b)


def test_a_method_whose_cell_is_pending_is_refused_with_one_line():
  config = configs.get_config("test")
  config.methods = ("rnn_sgd_cr", "lstm_sgd_c")
  if "lstm" in cells.CELLS:
    pytest.skip("this build has the lstm cell")
  with pytest.raises(Exception, match="entry 'lstm_sgd_c' needs cell 'lstm'"):
    validation.validate(config, "methods")
