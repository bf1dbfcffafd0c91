r"""The pathological tasks side by side with the paper (reads finished task workdirs).

  python -m experiments.pathological_summary \
      --workdirs=runs/path/addition,runs/path/temporal_order --out=runs/path/summary

Writes `summary.{md,csv,json}` to --out: per task variant, the set-up used, how many seeds
each algorithm solved (with the 95 % interval), SGD-CR's median updates to solve and how
far its solved models generalize, beside the paper's reported result (docs/reference.md §4). Workdirs
still running are summarized as far as they got.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from absl import app, flags

from experiments import cli
from rnn_dynamics import results
from rnn_dynamics.report import pathological
from rnn_dynamics.workdir import make_folder

_HEADERS = {
  "max_updates": "update budget",
  "lengths": "train lengths",
  "sgd_cr_updates_median": "SGD-CR updates to solve (median)",
  "sgd_cr_generalizes_to": "SGD-CR error < 1% up to length (median, range)",
  "paper": "paper (docs/reference.md §4)",
}


def summarize(workdirs: Sequence[str | Path], out: str | Path) -> str:
  """Builds the summary of `workdirs`, writes it under `out`, returns its Markdown."""
  loaded = [pathological.load_workdir(w) for w in workdirs]
  rows, algs = pathological.summary_table(loaded, pathological.ALGORITHMS)
  text = (
    "Seeds solved (error < 1% on fresh sequences) per algorithm, with the 95 % "
    "Clopper–Pearson interval of the success rate; one model per run for all training "
    "lengths (memorization: one per gap length, counted together).\n\n"
    + pathological.markdown(rows, pathological.summary_columns(algs), _HEADERS)
  )
  out = make_folder(out)
  results.write_results(out / "summary", rows)
  results.atomic_write_text(out / "summary.md", text)
  return text


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not _WORKDIRS.value:
    raise app.UsageError("--workdirs is required: comma-separated task workdirs")
  out = _OUT.value or Path(_WORKDIRS.value[0]).absolute().parent / "summary"
  print(summarize(_WORKDIRS.value, out))
  print(f"written to {out}/summary.md and summary.csv")


if __name__ == "__main__":
  # Flags are defined only when run as a binary, so tests can import several binaries.
  _WORKDIRS = flags.DEFINE_list("workdirs", None, "Workdirs of experiments.pathological runs.")
  _OUT = flags.DEFINE_string(
    "out", None, "Folder for summary.{md,csv,json} (default: <parent of the first>/summary)."
  )
  cli.run(main)
