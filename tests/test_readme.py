"""The README's two commands are the ones CI and users run."""

import json
import re
from pathlib import Path

import pytest

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


# --- The README is an entry point: its links, layout and headline stay true. -------------

DOCS = [ROOT / "README.md", ROOT / "BUILD.md", *sorted((ROOT / "docs").rglob("*.md"))]
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_exists(page):
  targets = [t for t in _LINK.findall(page.read_text()) if "://" not in t]
  missing = [t for t in targets if not (page.parent / t).exists()]
  assert not missing, f"{page.relative_to(ROOT)} links to missing {missing}"


def test_the_layout_names_every_module_and_folder():
  readme = (ROOT / "README.md").read_text()
  layout = readme[readme.index("## Layout") :]
  names = [
    p.name
    for p in (ROOT / "rnn_dynamics").iterdir()
    if (p.suffix == ".py" and p.name != "__init__.py") or (p.is_dir() and p.name != "__pycache__")
  ]
  tops = ["experiments/", "experiments/configs/", "benchmarks/", "notebooks/", "tests/", "docs/"]
  missing = [n for n in names if n not in layout] + [t for t in tops if f"`{t}`" not in layout]
  assert not missing, f"README's layout does not name {missing}"


def test_the_results_index_lists_every_folder():
  index = (ROOT / "docs" / "results" / "README.md").read_text()
  folders = [p.name for p in (ROOT / "docs" / "results").iterdir() if p.is_dir()]
  assert folders and all(f"| `{name}" in index for name in folders), folders


def test_the_headline_table_is_the_result_page_s():
  # The README's Figure 7 rows are the ones docs/fig7.md discusses, number for number.
  readme, page = (ROOT / "README.md").read_text(), (ROOT / "docs" / "fig7.md").read_text()
  inits = ("| sigmoid", "| basic_tanh", "| smart_tanh")
  rows = [line for line in readme.splitlines() if line.startswith(inits)]
  assert len(rows) == 9 and all(row in page.splitlines() for row in rows)


def test_no_machine_paths_in_the_docs():
  offenders = [
    str(p.relative_to(ROOT))
    for p in (ROOT / "docs").rglob("*")
    if p.is_file() and p.suffix in (".md", ".json", ".csv", ".txt") and "/work/" in p.read_text()
  ]
  assert not offenders


# What the README's speed sentence may name, by the `strongest_peer` it reports.
_PEER_WORDS = {
  "autodiff": "`jax.grad`",
  "torch_batched": "batched PyTorch",
  "torch_per_core": "one PyTorch process per core",
}


def test_the_speed_claim_is_the_strongest_peer_s():
  # Every "N× faster" of the README is the newest committed benchmark's ratio over the
  # strongest peer it measured, and the README names that peer.
  runs = (ROOT / "docs" / "results" / "benchmarks").glob("throughput_*.json")
  newest = sorted(p for p in runs if re.fullmatch(r"throughput_[\d-]+\.json", p.name))[-1]
  summary = json.loads(newest.read_text())["summary"]
  readme = " ".join((ROOT / "README.md").read_text().split())
  claims = list(re.finditer(r"(\d+(?:\.\d+)?)× faster", readme))
  assert claims, "the README states no speed"
  for m in claims:
    assert m.group(1) == f"{summary['ratio_vs_strongest']:.1f}", m.group(0)
    # The peer is named in the claim's own sentence.
    assert _PEER_WORDS[summary["strongest_peer"]] in readme[m.end() : m.end() + 120], m.group(0)
