"""The notebooks run end to end on what the experiments write (smoke-sized inputs), and
every one of them opens in a fresh clone with no environment variable set, on the results
committed under docs/results/ (`FRESH`).

The kernel is this test's own interpreter, declared in a temporary kernelspec put first on
`JUPYTER_PATH`: a fresh `pip install -e .[test,notebooks]` needs no `ipykernel install`,
and a user-level "python3" kernel pointing at another environment cannot get in the way.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[1]
KERNEL = "rnn_dynamics_test"


@pytest.fixture
def kernel(tmp_path, monkeypatch):
  """A kernelspec that runs `sys.executable`; returns its name."""
  spec = tmp_path / "jupyter" / "kernels" / KERNEL
  spec.mkdir(parents=True)
  (spec / "kernel.json").write_text(json.dumps({
    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
    "display_name": "rnn_dynamics (tests)",
    "language": "python",
  }))
  monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
  return KERNEL


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory):
  """The repository's tracked files and nothing else (no runs/, no outputs), as a fresh
  clone has them."""
  listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True)
  if listed.returncode != 0:
    pytest.skip("not a git checkout: no tracked files to copy")
  root = tmp_path_factory.mktemp("clone")
  for name in filter(None, listed.stdout.decode().split("\0")):
    if (REPO / name).is_file():
      (root / name).parent.mkdir(parents=True, exist_ok=True)
      shutil.copy2(REPO / name, root / name)
  return root


@pytest.fixture
def no_variables(monkeypatch):
  """No `RNN_DYNAMICS_*` variable: what a newcomer's shell has."""
  for name in [n for n in os.environ if n.startswith("RNN_DYNAMICS_")]:
    monkeypatch.delenv(name)


def execute(notebook: Path, kernel_name: str, root: Path = REPO):
  """Executes a jupytext percent file in memory, from `root` (the repository, or a fresh
  clone of it); raises on the first failing cell."""
  nb = jupytext.read(notebook)
  client = nbclient.NotebookClient(
    nb, kernel_name=kernel_name, timeout=120, resources={"metadata": {"path": str(root)}}
  )
  client.execute()
  return nb


def outputs_text(nb) -> str:
  parts = []
  for c in nb.cells:
    for o in c.get("outputs", []):
      parts.append(o.get("text", ""))
      parts += [v for k, v in o.get("data", {}).items() if k.startswith("text/")]
  return "\n".join(parts)


def count_images(nb) -> int:
  return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def test_success_rate_notebook_opens_the_published_results(fresh_clone, no_variables, kernel):
  """In a fresh clone with nothing set, the committed docs/results/fig7_cpu opens."""
  nb = execute(fresh_clone / "notebooks" / "success_rate.py", kernel, fresh_clone)
  text = outputs_text(nb)
  assert "the paper says" in text and "SGD-CR" in text
  # The published T = 50 cells: SGD-CR 5/5 under both tanh initialisations.
  assert "T = 50" in text or "T=50" in text
  assert re.search(r"5/5 \(48–100 %\)", text)


def test_success_rate_notebook(tmp_path, kernel, monkeypatch):
  workdir = tmp_path / "fig7"
  subprocess.run(
    [sys.executable, "-m", "experiments.success_rate",
     "--config=experiments/configs/success_rate.py:test", f"--workdir={workdir}"],
    cwd=REPO, check=True, capture_output=True, timeout=300,
  )
  monkeypatch.setenv("RNN_DYNAMICS_SUCCESS_RATE", str(workdir))
  nb = execute(REPO / "notebooks" / "success_rate.py", kernel)
  text = outputs_text(nb)
  assert "the paper says" in text  # the claims table was rendered
  assert "SGD-CR" in text
  n_images = count_images(nb)
  # success curves, updates-to-solve curves, at least one traces figure, the ρ scatter
  assert n_images >= 4
  # Rates in the tables carry their 95 % interval, "k/n (low–high %)".
  assert re.search(r"\d+/\d+ \(\d+–\d+ %\)", text)


def test_natural_notebook_opens_the_published_tables(fresh_clone, no_variables, kernel):
  """In a fresh clone with nothing set, Tables 1 and 2 as committed: the Nottingham run
  (music) and PTB fifth-ahead (text)."""
  nb = execute(fresh_clone / "notebooks" / "natural.py", kernel, fresh_clone)
  text = outputs_text(nb)
  assert "Nottingham" in text and "Penn Treebank" in text
  assert "| test | ours | 4.11 | 3.39 | 3.39 |" in text  # the committed table, as written
  assert "3.83" in text  # ptb5's test score as trained (first 100k symbols)


def test_success_rate_notebook_opens_the_long_run(kernel, monkeypatch):
  """The committed Figure 7 run at the paper's lengths, with T = 200's baselines."""
  monkeypatch.setenv("RNN_DYNAMICS_SUCCESS_RATE", str(REPO / "docs" / "results" / "fig7_long"))
  nb = execute(REPO / "notebooks" / "success_rate.py", kernel)
  text = outputs_text(nb)
  assert "SGD-CR" in text and "200" in text
  assert re.search(r"5/5 \(48–100 %\)", text) and re.search(r"0/5 \(0–52 %\)", text)
  # 3 lengths × 3 inits × 5 seeds × (SGD-CR + the two baselines): every group published.
  assert "135 finished runs" in text


def test_generalization_notebook_opens_the_long_run(fresh_clone, no_variables, kernel):
  """In a fresh clone with nothing set, the committed single-model run: 5/5 solved at zero
  mistakes, its attractors."""
  nb = execute(fresh_clone / "notebooks" / "generalization.py", kernel, fresh_clone)
  text = outputs_text(nb)
  assert "solved 5/5 (48–100 %)" in text
  assert "| 0 | yes | 254,000 | 0 of 10,000 |" in text  # seed 0's row, as committed
  assert "errors at 5000" in text  # the generalization table reaches the paper's 5000
  assert "| seed0_T100 | u_mean | 9 | 4 | 1.00 |" in text  # its attractor analysis
  n_images = count_images(nb)
  assert n_images == 2  # training traces, error against length


def test_threshold_grid_notebook_opens_the_published_grid(fresh_clone, no_variables, kernel):
  nb = execute(fresh_clone / "notebooks" / "threshold_grid.py", kernel, fresh_clone)
  text = outputs_text(nb)
  assert "average pre-clip gradient norm: 0.397" in text
  assert "α=2: thresholds 0.5–10× avg" in text  # the summary, as the binary writes it
  # The Ω-without-clipping runs: 5 values of α > 0 × 3 seeds, none diverged.
  omega_only = re.findall(r"^\d\S*\s+\d\s+\S+\s+(solved at [\d,]+|diverged|not solved)$", text, re.M)
  assert len(omega_only) == 15 and "diverged" not in omega_only
  n_images = count_images(nb)
  assert n_images == 3  # two heatmaps, the clipping rate


@pytest.mark.parametrize(
  "experiment, env",
  [("generalization", "RNN_DYNAMICS_GENERALIZATION"),
   ("threshold_grid", "RNN_DYNAMICS_THRESHOLD_GRID")],
)
def test_long_memory_notebooks_open_a_fresh_test_run(experiment, env, tmp_path, kernel, monkeypatch):
  workdir = tmp_path / experiment
  subprocess.run(
    [sys.executable, "-m", f"experiments.{experiment}",
     f"--config=experiments/configs/{experiment}.py:test", f"--workdir={workdir}"],
    cwd=REPO, check=True, capture_output=True, timeout=300,
  )
  # A finished run leaves nothing "in progress" behind.
  assert not (workdir / "progress").exists() and not (workdir / "checkpoints").exists()
  monkeypatch.setenv(env, str(workdir))
  nb = execute(REPO / "notebooks" / f"{experiment}.py", kernel)
  text = outputs_text(nb)
  assert str(workdir) in text and "still training" not in text
  assert re.search(r"\d+/\d+ \(\d+–\d+ %\)", text)  # rates carry their 95 % interval
  n_images = count_images(nb)
  assert n_images >= 2


def test_natural_notebook_compares_the_two_published_ptb_runs(kernel, monkeypatch):
  """256 units (three columns) beside 500 units (SGD+C), with their whole-split scores."""
  published = REPO / "docs" / "results"
  monkeypatch.setenv(
    "RNN_DYNAMICS_NATURAL",
    ",".join(str(published / w) for w in ("ptb1_cpu", "nottingham_cpu", "ptb1_500_sgdc")),
  )
  nb = execute(REPO / "notebooks" / "natural.py", kernel)
  text = outputs_text(nb)
  assert "| ptb1_cpu | 256 | SGD+C | test | 30 | 1.634 | 1.670 |" in text
  assert "| ptb1_500_sgdc | 500 | SGD+C | test | 20 | 1.660 | 1.689 |" in text
  assert "| test | paper | 1.50 | 1.42 | 1.41 |" in text  # the table beside the paper


def test_pathological_notebook_opens_the_published_partial_runs(fresh_clone, no_variables, kernel):
  """In a fresh clone with nothing set, the committed long runs still training are listed,
  run by run, with the budget and the commits their partial state records."""
  nb = execute(fresh_clone / "notebooks" / "pathological.py", kernel, fresh_clone)
  text = outputs_text(nb)
  partial = sorted((REPO / "docs/results").glob("pathological_long_*/partial.json"))
  assert partial, "no committed long run is still training"
  for path in partial:
    folder, note = path.parent, json.loads(path.read_text())
    # One group per run of most tasks; memorization has one per variant and gap.
    for group, got in note["groups"].items():
      rows = json.loads((folder / "progress" / f"{group}.json").read_text())
      spec = json.loads((folder / "groups" / group / "group.json").read_text())
      assert spec["max_updates"] == got["budget"]
      assert (
        f"{folder.name}: {group} still training ({spec['task']}, lengths "
        f"[{spec['min_length']}, {spec['max_length']}), up to {spec['max_updates']:,} "
        "updates per run)"
      ) in text
      for r in rows:
        assert f"sgd_cr seed {r['seed']}: {r['updates_done']:,} updates" in text
    assert f"; code: {note['code']}" in text


def test_methods_notebook_opens_a_fresh_test_run(tmp_path, kernel, monkeypatch):
  """Two methods of the test preset on temporal order (one with its grid): the table with
  intervals, both figures, the grid and its figure."""
  workdir = tmp_path / "methods"
  subprocess.run(
    [sys.executable, "-m", "experiments.methods",
     "--config=experiments/configs/methods.py:test", f"--workdir={workdir}",
     "--config.methods=rnn_sgd_cr,rnn_adam_c", "--config.tasks=temporal_order",
     "--config.lengths.temporal_order=10,12"],
    cwd=REPO, check=True, capture_output=True, timeout=600,
  )
  monkeypatch.setenv("RNN_DYNAMICS_METHODS", str(workdir))
  nb = execute(REPO / "notebooks" / "methods.py", kernel)
  text = outputs_text(nb)
  assert str(workdir) in text and "still training" not in text
  assert "rnn_adam_c" in text and "rnn_sgd_cr" in text and "✓" in text  # the grid's pick
  assert re.search(r"\d+/\d+ \(\d+–\d+ %\)", text)  # rates carry their 95 % interval
  assert count_images(nb) == 3  # success rate, updates to solve, the grid


def test_dynamics_notebook_runs_in_a_fresh_clone(fresh_clone, no_variables, kernel, monkeypatch):
  """§2's argument piece by piece, at the sizes `RNN_DYNAMICS_SMOKE=1` picks: every figure
  is drawn."""
  monkeypatch.setenv("RNN_DYNAMICS_SMOKE", "1")
  nb = execute(fresh_clone / "notebooks" / "dynamics.py", kernel, fresh_clone)
  text = outputs_text(nb)
  assert "linear, ρ = 1.1: max |‖∂x_t/∂x_k‖ / ρ^(t−k) − 1| =" in text
  assert "9 fixed points, 4 attractors" in text  # two uncoupled bistable units: 3 × 3, 2 × 2
  assert count_images(nb) == 3  # the mechanics, the bifurcation, the cliff



def test_methods_notebook_opens_the_published_run(fresh_clone, no_variables, kernel):
  """In a fresh clone with nothing set, the committed methods run: every finished group's
  runs counted, every group still training listed with how far it got."""
  nb = execute(fresh_clone / "notebooks" / "methods.py", kernel, fresh_clone)
  text = outputs_text(nb)
  # The notebook's own order of preference.
  published = [REPO / "docs/results" / n for n in ("methods_long", "methods_cpu")]
  folder = next((f for f in published if (f / "config.json").exists()), None)
  assert folder is not None, "no committed methods run"
  counts = {"grid": 0, "main": 0}
  for results_file in (folder / "groups").glob("*/results.json"):
    kind = "grid" if results_file.parent.name.startswith("grid_") else "main"
    counts[kind] += len(json.loads(results_file.read_text()))
  assert (
    f"{folder.name}: preset 'cpu', {counts['main']} finished runs of the comparison, "
    f"{counts['grid']} of the grid"
  ) in text
  partial = folder / "partial.json"
  for group in json.loads(partial.read_text())["groups"] if partial.exists() else {}:
    assert f"{group} still training" in text
  assert count_images(nb) >= (3 if counts["main"] else 1)


def test_flossing_notebook_opens_a_flossing_test_run(flossing_test_run, kernel, monkeypatch):
  """The `flossing_test` preset's workdir (made once per session): the table with
  intervals, the rates figure, an exponents figure per (init, length), a line per run."""
  monkeypatch.setenv("RNN_DYNAMICS_FLOSSING", str(flossing_test_run))
  nb = execute(REPO / "notebooks" / "flossing.py", kernel)
  text = outputs_text(nb)
  config = json.loads((flossing_test_run / "config.json").read_text())
  rows = json.loads((flossing_test_run / "results.json").read_text())
  assert f"{flossing_test_run}: preset 'flossing_test', {len(rows)} finished runs" in text
  assert "still training" not in text
  assert "SGD-CR: solved (95 %)" in text and "SGD-CF (flossing): solved (95 %)" in text
  assert re.search(r"\d+/\d+ \(\d+–\d+ %\)", text)  # rates carry their 95 % interval
  per_run = (r"^\| \w+ \| \d+ \| SGD-C[RF]( \(flossing\))? \| \d+ \| "
             r"(solved at|not solved in|diverged by) ")
  assert len(re.findall(per_run, text, re.M)) == len(rows)
  assert count_images(nb) == 1 + len(config["inits"]) * len(config["lengths"])


FLOSSING_PUBLISHED = REPO / "docs" / "results" / "flossing_cpu"


@pytest.mark.skipif(
  not (FLOSSING_PUBLISHED / "config.json").is_file(),
  reason="docs/results/flossing_cpu is not published yet (the flossing_cpu run): the "
  "notebook has nothing to open in a fresh clone until it is committed",
)
def test_flossing_notebook_opens_the_published_run(fresh_clone, no_variables, kernel):
  """In a fresh clone with nothing set, the committed flossing_cpu run: every finished
  group's runs, an exponents figure per finished (init, length)."""
  nb = execute(fresh_clone / "notebooks" / "flossing.py", kernel, fresh_clone)
  text = outputs_text(nb)
  config = json.loads((FLOSSING_PUBLISHED / "config.json").read_text())
  finished = (FLOSSING_PUBLISHED / "groups").glob("*/results.json")
  runs = [r for f in finished for r in json.loads(f.read_text())]
  assert f"flossing_cpu: preset {config['preset']!r}, {len(runs)} finished runs" in text
  assert "SGD-CF (flossing): solved (95 %)" in text
  points = {(r["init"], r["length"]) for r in runs}
  assert count_images(nb) == 1 + len(points)


# The tests above that open each notebook in a fresh clone with nothing set (flossing's
# is skipped until its run is published).
FRESH = {
  "dynamics": test_dynamics_notebook_runs_in_a_fresh_clone,
  "flossing": test_flossing_notebook_opens_the_published_run,
  "generalization": test_generalization_notebook_opens_the_long_run,
  "methods": test_methods_notebook_opens_the_published_run,
  "natural": test_natural_notebook_opens_the_published_tables,
  "pathological": test_pathological_notebook_opens_the_published_partial_runs,
  "success_rate": test_success_rate_notebook_opens_the_published_results,
  "threshold_grid": test_threshold_grid_notebook_opens_the_published_grid,
}


def test_every_notebook_opens_in_a_fresh_clone():
  """A new notebook needs a test that opens it as a newcomer would."""
  assert {p.stem for p in (REPO / "notebooks").glob("*.py")} == set(FRESH)
