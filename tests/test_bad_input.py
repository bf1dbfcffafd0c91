"""Bad input, as a new user would type it, gets one clear line and changes nothing.

Every case runs the real binary as a subprocess on its `test` preset and checks the exit
code (2: usage/config error, 1: other anticipated errors), that stderr is exactly one
line `<binary>: error: …` naming the problem (no traceback), and that the workdir holds
nothing new (an existing one: nothing changed). The refusals happen before JAX compiles
anything, so each process costs its imports only; they run two at a time.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import importlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from experiments import validation
from rnn_dynamics.methods import METHODS
from rnn_dynamics.workdir import Workdir

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Case:
  """One bad command line.

  Attributes:
    binary: module name under `experiments/`.
    args: flags after `--config=<its test preset>` (and `--workdir`).
    code: the exit code expected.
    says: text the one line on stderr must contain (what names the problem).
    workdir: `fresh` (a path that does not exist yet), `file` (a regular file), `corrupt`
      (a finished success_rate workdir whose results.json is damaged), `made` (a workdir
      of `binary` made by its test preset unchanged) or `none` (no --workdir).
    started: the binary gets as far as its work (reading finished groups) before it
      stops, so absl's progress log lines may come before the error line.
    data: a damaged data file (or PTB folder) to write under the case's folder, one of
      `DAMAGED`'s keys; `{data}` in `args` becomes its path, and the error line must name
      that path.
  """

  binary: str
  args: tuple[str, ...]
  code: int
  says: str
  workdir: str = "fresh"
  started: bool = False
  data: str = ""


# absl's log line prefix: severity, date, time, thread id, file:line].
_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\] ")
SR = "success_rate"
CASES = {
  # The table.
  "negative_lr": Case(SR, ("--config.lr=-0.1",), 2, "--config.lr=-0.1: must be > 0"),
  "zero_batch": Case(SR, ("--config.batch_size=0",), 2, "--config.batch_size=0: must be ≥ 1"),
  "unknown_init_in_list": Case(
    SR, ("--config.inits=basic_tanh,smartt",), 2, "entry 'smartt' must be one of"
  ),
  "workdir_is_a_file": Case(SR, (), 2, "is a file, not a folder", workdir="file"),
  "corrupt_results": Case(
    SR, (), 1, "groups/T10/results.json is damaged", workdir="corrupt", started=True
  ),
  "different_config": Case(
    SR, ("--config.alpha=2.0",), 2, "holds results of a different config (alpha", "made"
  ),
  # An analysis binary's workdir is checked the same way: a rerun recomputes, it never
  # mixes two configs' files in one folder.
  "analysis_different_config": Case(
    "cliff", ("--config.grid=9",), 2, "holds results of a different config (grid: 41 -> 9)",
    "made",
  ),
  # Names, choices, ranges, multiples, lengths.
  "unknown_task": Case(SR, ("--config.task=adding",), 2, "--config.task=adding: must be one of"),
  "unknown_algorithm": Case(SR, ("--config.algorithms=sgd,sgd_x",), 2, "entry 'sgd_x'"),
  "negative_clip": Case(SR, ("--config.clip=-1",), 2, "--config.clip=-1.0: must be > 0"),
  "nan_lr": Case(SR, ("--config.lr=nan",), 2, "--config.lr=nan: must be a finite number"),
  "momentum_one": Case(SR, ("--config.momentum=1",), 2, "--config.momentum=1.0: must be < 1"),
  "length_below_task_minimum": Case(
    SR, ("--config.lengths=5,20",), 2, "temporal_order needs lengths ≥ 10"
  ),
  "budget_not_whole_chunks": Case(
    SR, ("--config.max_updates=250",), 2, "must be a multiple of --config.chunk_size=100"
  ),
  "eval_size_not_whole_blocks": Case(
    SR, ("--config.eval_size=700",), 2, "must be a multiple of --config.eval_batch=500"
  ),
  "unknown_omega_form": Case(SR, ("--config.omega_form=eq9",), 2, "--config.omega_form=eq9"),
  "two_problems_one_line": Case(
    SR, ("--config.lr=0", "--config.seeds=0"), 2, "--config.lr=0.0: must be > 0; --config.seeds"
  ),
  # Flags themselves.
  "unknown_field": Case(SR, ("--config.learning_rate=0.1",), 2, "no field 'learning_rate'"),
  "not_a_number": Case(SR, ("--config.lr=abc",), 2, "could not convert string to float"),
  "unknown_preset": Case(SR, ("--config=experiments/configs/success_rate.py:tiny",), 2, "'tiny'"),
  "missing_workdir": Case(SR, (), 2, "--workdir is required", workdir="none"),
  "stray_argument": Case(SR, ("extra",), 2, "unexpected arguments: ['extra']"),
  # The other binaries.
  "generalization_min_above_max": Case(
    "generalization", ("--config.min_length=30",), 2, "must be ≤ --config.max_length=20"
  ),
  "continued_without_models": Case(
    "generalization_continued", (), 2, "--from_workdir is required: the experiments.generalization"
  ),
  "continued_models_not_a_workdir": Case(
    "generalization_continued",
    ("--from_workdir=/nonexistent/generalization",),
    2,
    "--from_workdir: /nonexistent/generalization is not a workdir of experiments.generalization",
  ),
  "continued_tests_not_whole_chunks": Case(
    "generalization_continued",
    ("--from_workdir=docs/results/generalization_long", "--config.test_every=150",
     "--config.updates=300"),
    2,
    "--config.test_every=150 must be a multiple of the models' chunk_size=1000",
  ),
  "continued_budget_not_whole_tests": Case(
    "generalization_continued",
    ("--config.updates=250",),
    2,
    "--config.updates=250 must be a multiple of --config.test_every=100",
  ),
  "pathological_unknown_task": Case(
    "pathological", ("--config.task=adding",), 2, "--config.task=adding: must be one of"
  ),
  "pathological_short_lengths": Case(
    "pathological", ("--config.train_lengths=4,8",), 2, "addition needs lengths ≥ 10"
  ),
  "char_lm_ptb_without_data_path": Case(
    "char_lm", ("--config.dataset=ptb",), 2, "pass --config.data_path"
  ),
  "polyphonic_data_path_missing": Case(
    "polyphonic",
    ("--config.dataset=nottingham", "--config.data_path=/nonexistent/Nottingham.mat"),
    2,
    "no such file or folder",
  ),
  "attractors_length_below_task_minimum": Case(
    "attractors", ("--config.length=5",), 2, "temporal_order needs lengths ≥ 10"
  ),
  "lyapunov_index_beyond_models": Case(
    "lyapunov", ("--config.params_indices=7",), 2, "holds 5 models, so use 0 to 4"
  ),
  "threshold_grid_infinite_threshold": Case(
    "threshold_grid", ("--config.thresholds=0.1,inf",), 2, "entry inf must be a finite number"
  ),
  "threshold_grid_short_length": Case(
    "threshold_grid", ("--config.length=5",), 2, "temporal_order needs lengths ≥ 10"
  ),
  "bifurcation_unknown_unit": Case("bifurcation", ("--config.unit=relu",), 2, "--config.unit"),
  "cliff_empty_range": Case("cliff", ("--config.w_min=9",), 2, "must be < --config.w_max=8.0"),
  "mechanics_zero_trajectories": Case(
    "mechanics", ("--config.n_trajectories=0",), 2, "--config.n_trajectories=0: must be ≥ 1"
  ),
  "summary_of_no_workdir": Case(
    "pathological_summary", (), 2, "is not a workdir of experiments.pathological", "none"
  ),
  "methods_unknown_method": Case(
    "methods", ("--config.methods=rnn_sgd_cr,rnn_sgd_x",), 2, "entry 'rnn_sgd_x' must be one of"
  ),
  "methods_unknown_task": Case(
    "methods", ("--config.tasks=temporal_order,adding",), 2, "entry 'adding' must be one of"
  ),
  "methods_unknown_stage": Case(
    "methods", ("--config.stage=grids",), 2, "--config.stage=grids: must be one of all, grid, main"
  ),
  "methods_unknown_size_match": Case(
    "methods", ("--config.match=flops",), 2, "--config.match=flops: must be one of state, parameters"
  ),
  "methods_length_below_task_minimum": Case(
    "methods", ("--config.lengths.addition=5,20",), 2, "addition needs lengths ≥ 10"
  ),
  "methods_main_stage_before_its_grid": Case(
    "methods", ("--config.stage=main",), 2, "the learning-rate grid of irnn_sgd_c on temporal_order"
  ),
  # Damaged data files, one per loader: the file exists, so validation lets it through and
  # the loader's DataError (a UserError) is the one line, exit code 1.
  "truncated_mat": Case(
    "polyphonic",
    ("--config.dataset=nottingham", "--config.data_path={data}"),
    1,
    "could not be read as a MATLAB .mat file; it looks truncated or corrupt",
    data="truncated_mat",
  ),
  "garbage_pickle": Case(
    "polyphonic",
    ("--config.dataset=jsb", "--config.data_path={data}"),
    1,
    "could not be read as a music pickle; it looks truncated, corrupt",
    data="garbage_pickle",
  ),
  "binary_ptb": Case(
    "char_lm",
    ("--config.dataset=ptb", "--config.data_path={data}"),
    1,
    "is not UTF-8 text",
    data="binary_ptb",
  ),
  "truncated_ptb": Case(
    "char_lm",
    ("--config.dataset=ptb", "--config.data_path={data}"),
    1,
    "does not end with a line break; the file looks truncated",
    data="truncated_ptb",
  ),
}


# A method of the table whose cell this build does not have yet (none once every cell is
# registered): refused with one line naming the cell.
_PENDING = next((n for n, m in METHODS.items() if not m.available), None)
if _PENDING is not None:
  CASES["methods_cell_not_in_this_build"] = Case(
    "methods", (f"--config.methods=rnn_sgd_cr,{_PENDING}",), 2,
    f"entry '{_PENDING}' needs cell '{METHODS[_PENDING].cell}', which this build does not have",
  )


def _small_mat() -> bytes:
  """A well-formed music .mat (one 2-step roll per split), as scipy writes it."""
  roll = np.zeros((2, 88), np.uint8)
  roll[0, 39] = roll[1, 43] = 1
  cells = {}
  for key in ("traindata", "validdata", "testdata"):
    cells[key] = np.empty((1, 1), dtype=object)
    cells[key][0, 0] = roll
  out = io.BytesIO()
  scipy.io.savemat(out, cells)
  return out.getvalue()


def _ptb_folder(root: Path, train: bytes) -> Path:
  """A PTB folder of word files whose train split is `train` (valid and test are fine)."""
  folder = root / "ptb"
  folder.mkdir()
  (folder / "ptb.train.txt").write_bytes(train)
  for split in ("valid", "test"):
    (folder / f"ptb.{split}.txt").write_bytes(b" the cat sat \n")
  return folder


def _damaged(kind: str, root: Path) -> tuple[Path, Path]:
  """Writes a damaged data file; returns (what data_path names, the file the line names).

  Standard file names, so a loader that warned about an unknown checksum before parsing
  would put a second line on stderr."""
  if kind == "truncated_mat":
    path = root / "Nottingham.mat"
    full = _small_mat()
    path.write_bytes(full[: len(full) // 2])
    return path, path
  if kind == "garbage_pickle":
    path = root / "JSB Chorales.pickle"
    path.write_bytes(bytes(range(256)) * 4)
    return path, path
  if kind == "binary_ptb":
    folder = _ptb_folder(root, b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary\n")
    return folder, folder / "ptb.train.txt"
  if kind == "truncated_ptb":
    folder = _ptb_folder(root, b" the cat sat \n on the m")
    return folder, folder / "ptb.train.txt"
  raise ValueError(kind)


def _snapshot(path: Path) -> dict[str, str] | str | None:
  """Everything under `path` as relative path → content hash (None: no such path)."""
  if not path.exists():
    return None
  if path.is_file():
    return hashlib.sha256(path.read_bytes()).hexdigest()
  return {
    str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else ""
    for f in sorted(path.rglob("*"))
    if f.name != ".lock"  # which process last held the workdir, not a result
  }


def _made_workdir(path: Path, binary: str = SR) -> Path:
  # A workdir as the binary's test preset leaves it when it starts: config.json only.
  configs = importlib.import_module(f"experiments.configs.{binary}")
  Workdir(path, validation.validate(configs.get_config("test"), binary)).close()
  return path


def _workdir(case: Case, root: Path) -> Path | None:
  path = root / "workdir"
  if case.workdir == "file":
    path.write_text("not a folder\n")
  elif case.workdir == "made":
    _made_workdir(path, case.binary)
  elif case.workdir == "corrupt":
    # A finished group as Workdir.save_group leaves it, with its results cut short.
    _made_workdir(path)
    (path / "groups" / "T10").mkdir(parents=True)
    (path / "groups" / "T10" / "results.json").write_text('[{"init": "sigmoid", "solv')
  elif case.workdir == "none":
    return None
  return path


def _command(case: Case, workdir: Path | None, data: Path | None = None) -> list[str]:
  cmd = [sys.executable, "-m", f"experiments.{case.binary}"]
  if case.binary == "pathological_summary":
    return cmd + [f"--workdirs={workdir or '/nonexistent/workdir'}", *case.args]
  if not any(a.startswith("--config=") for a in case.args):
    cmd.append(f"--config=experiments/configs/{case.binary}.py:test")
  if workdir is not None:
    cmd.append(f"--workdir={workdir}")
  return cmd + [a.replace("{data}", str(data)) for a in case.args]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
  """Runs every case once, two processes at a time: name → (process, before, after)."""
  env = {k: v for k, v in os.environ.items() if k != "RNN_DYNAMICS_TRACEBACK"}

  # Temporary folders first, in this thread: the factory's first mktemp is not thread-safe.
  folders = {name: tmp_path_factory.mktemp(name) for name in CASES}

  # The damaged data files, written here before the processes start.
  damaged = {
    name: _damaged(CASES[name].data, folders[name]) for name in CASES if CASES[name].data
  }

  def one(name: str):
    case = CASES[name]
    workdir = _workdir(case, folders[name])
    data = damaged.get(name, (None, None))[0]
    before = _snapshot(workdir) if workdir else None
    proc = subprocess.run(
      _command(case, workdir, data), cwd=ROOT, env=env, capture_output=True, text=True,
      timeout=300,
    )
    return proc, before, _snapshot(workdir) if workdir else None

  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    results = dict(zip(CASES, pool.map(one, CASES)))
  return {name: (*results[name], damaged.get(name, (None, None))[1]) for name in CASES}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gets_one_line_and_changes_nothing(outcomes, name):
  case = CASES[name]
  proc, before, after, damaged = outcomes[name]
  lines = proc.stderr.splitlines()
  if case.started:
    lines = [line for line in lines if not _LOG_LINE.match(line)]
  assert len(lines) == 1, proc.stderr
  assert "Traceback" not in proc.stderr
  assert lines[0].startswith(f"{case.binary}: error: "), lines[0]
  assert case.says in lines[0], lines[0]
  if damaged is not None:  # the line names the damaged file itself
    assert str(damaged.resolve()) in lines[0], lines[0]
  if case.workdir == "corrupt":  # and how to recover
    assert "delete " in lines[0] and "groups/T10 and run again to recompute group T10" in lines[0]
  assert proc.returncode == case.code, proc.stderr
  assert proc.stdout == ""
  assert after == before  # a fresh workdir is not even created


def test_traceback_on_request(tmp_path):
  env = dict(os.environ, RNN_DYNAMICS_TRACEBACK="1")
  case = CASES["negative_lr"]
  proc = subprocess.run(
    _command(case, tmp_path / "wd"), cwd=ROOT, env=env, capture_output=True, text=True
  )
  assert proc.returncode != 0
  assert "Traceback" in proc.stderr and "ConfigError: --config.lr=-0.1" in proc.stderr
  assert not (tmp_path / "wd").exists()
