"""A fitted table's files: the comparison with the published numbers, runs, history."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from rnn_dynamics import results

if TYPE_CHECKING:
  from rnn_dynamics.natural.epochs import FitResult

__all__ = ["comparison_table", "table_notes", "wall_note", "write_fit_outputs"]


def write_fit_outputs(
  path: str | Path,
  res: FitResult,
  *,
  algorithms: Sequence[str],
  paper: Mapping[str, Mapping[str, float | None]] | None,
  notes: Sequence[str],
  title: str,
  summary: dict[str, Any],
) -> str:
  """A table's files, each written atomically, and its Markdown (returned).

  The table is `comparison_table(res.runs, ...)`: `table.{md,csv,json}`; beside it
  `runs.*` (best epoch per run), `history.*` (every split per epoch per run),
  `best_params.npz` and `summary.json` (`summary` plus the paper's numbers, the wall time
  and why training stopped).
  """
  path = Path(path)
  md, rows = comparison_table(
    res.runs, algorithms=algorithms, paper=paper, notes=notes, title=title
  )
  results.atomic_write_text(path / "table.md", md)
  results.write_results(path / "table", rows)
  results.write_results(path / "runs", res.runs)
  results.write_results(path / "history", res.history)
  results.write_npz(path / "best_params.npz", res.best_params)
  results.write_json(
    path / "summary.json", dict(summary, paper=paper, wall_s=res.wall_s, stopped=res.stopped)
  )
  return md


def table_notes(
  config: Any,
  res: FitResult,
  published: Any,
  *,
  score: str,
  baseline: str,
  setup: str,
  extra: Sequence[str] = (),
  missing: str = "The paper reports no numbers for this data set.",
) -> list[str]:
  """A table's notes, in the order both tables give them: what the score is (at each
  run's best-validation epoch, mean ± std over seeds), the baseline, the set-up, the
  wall time, `extra`, and how the set-up compares with the paper's (`missing` when the
  paper has no number; the preset when it is not `paper`)."""
  notes = [
    f"{score}, at each run's best-validation epoch; ours: mean ± std over "
    f"{config.seeds} seed(s).",
    baseline,
    setup,
    wall_note(res),
    *extra,
  ]
  if published is None:
    notes.append(missing)
  elif config.preset != "paper":
    notes.append(f"Preset '{config.preset}' is smaller/shorter than the paper's set-up.")
  return notes


def wall_note(res: FitResult) -> str:
  """`Wall time … over N epoch(s) (stopped: …).` for a table's notes."""
  epochs = max((r["epochs"] for r in res.runs), default=0)
  return (
    f"Wall time {res.wall_s / 60:.1f} min over {epochs} epoch(s) "
    f"(stopped: {res.stopped or 'running'})."
  )


def comparison_table(
  runs: Sequence[Mapping[str, Any]],
  *,
  algorithms: Sequence[str],
  title: str,
  paper: Mapping[str, Mapping[str, float | None]] | None,
  notes: Sequence[str] = (),
) -> tuple[str, list[dict[str, Any]]]:
  """The paper's table layout, ours beside the published numbers.

  Args:
    runs: `FitResult.runs` (scores at each run's best-validation epoch).
    algorithms: column order.
    title: first line of the Markdown.
    paper: `{"train": {algorithm: value or None}, "test": {...}}`, quoted from docs/reference.md §4,
      or None when the paper has no number for this data set.
    notes: lines printed under the table.

  Returns:
    `(markdown, csv_rows)`; ours is the mean ± standard deviation over seeds.
  """
  labels = {"sgd": "SGD", "sgd_c": "SGD+C", "sgd_cr": "SGD+CR"}
  head = "| fold | source | " + " | ".join(labels.get(a, a) for a in algorithms) + " |"
  lines = [title, "", head, "|" + "---|" * (len(algorithms) + 2)]
  rows = []
  for fold in ("train", "test"):
    ours, published = [], []
    for a in algorithms:
      vals = np.asarray(
        [r[fold] for r in runs if r["algorithm"] == a and r[fold] is not None], np.float64
      )
      mean = float(vals.mean()) if vals.size else None
      std = float(vals.std()) if vals.size > 1 else None
      p = None if paper is None else paper.get(fold, {}).get(a)
      rows.append(
        dict(fold=fold, algorithm=a, ours=mean, ours_std=std, seeds=int(vals.size), paper=p)
      )
      ours.append("—" if mean is None else f"{mean:.2f}" + (f" ± {std:.2f}" if std else ""))
      published.append("N/A" if p is None else f"{p:.2f}")
    lines.append(f"| {fold} | ours | " + " | ".join(ours) + " |")
    if paper is not None:
      lines.append(f"| {fold} | paper | " + " | ".join(published) + " |")
  epochs = []
  for a in algorithms:
    e = [r["best_epoch"] for r in runs if r["algorithm"] == a and r["best_epoch"] is not None]
    epochs.append(", ".join(str(x) for x in e) or "—")
  lines.append("| best epoch | ours | " + " | ".join(epochs) + " |")
  lines += [""] + [f"{n}" for n in notes]
  return "\n".join(lines) + "\n", rows
