"""The README's two commands are the ones CI and users run."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _ci_command() -> str:
  lines = (ROOT / ".ci" / "run").read_text().splitlines()
  return next(line for line in lines if line.startswith("python3.11 -m venv"))


def test_ci_runs_the_readme_test_command():
  readme = (ROOT / "README.md").read_text()
  assert _ci_command() in readme.splitlines(), "README's test command and .ci/run differ"


def test_readme_main_job_uses_the_default_preset():
  readme = (ROOT / "README.md").read_text()
  main_job = next(line for line in readme.splitlines() if "experiments.success_rate" in line)
  assert main_job.startswith("python3.11 -m venv .venv && ")
  # The main job runs the built-in default (the cpu preset): no --config override.
  assert "--config" not in main_job and "--workdir=" in main_job
