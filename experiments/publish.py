r"""Copies a workdir's result files into the repository, e.g. `docs/results/`.

Checkpoints, progress files, the lock and SVG copies of figures stay behind
(`rnn_dynamics.workdir.publish`); the notebooks open the copy as they open the workdir. A
workdir that a run is still writing is refused (stop the run: it checkpoints first), and
so is one whose groups are still training, unless `--partial`: then each group's latest
checkpoint and progress rows go along, with `partial.json` saying how far they got, and
the copy resumes on any machine once copied back to a workdir (BUILD.md, "Carrying a long
run"). `--leave_out` leaves out files no reader needs (e.g. a grid's weights); the copy
lists them in `left_out.json`, and its readers name such a file as left out, not damaged.

  python -m experiments.publish --workdir=runs/fig7_long --out=docs/results/fig7_long
  python -m experiments.publish --partial --overwrite --workdir=runs/addition_long \
      --out=docs/results/addition_long
"""

from __future__ import annotations

from pathlib import Path

from absl import app, flags

from experiments import cli
from rnn_dynamics.workdir import LEFT_OUT_FILE, PARTIAL_FILE, Workdir, publish

# Above this a folder weighs on every clone; the results of one experiment fit well under.
_LARGE_MB = 5.0


def main(argv):
  path = cli.require_workdir(argv, _WORKDIR, "runs/fig7")
  if not _OUT.value:
    raise app.UsageError("--out is required, e.g. --out=docs/results/fig7")
  size_mb = publish(
    path, _OUT.value, overwrite=_OVERWRITE.value, partial=_PARTIAL.value,
    leave_out=_LEAVE_OUT.value or (),
  ) / 2**20
  print(f"published {path} -> {_OUT.value} ({size_mb:.2f} MB)")
  published = Workdir.open(_OUT.value)
  if published.exists(LEFT_OUT_FILE):
    print(f"  left out (listed in {LEFT_OUT_FILE}): {', '.join(published.left_out())}")
  # The copy's own note, as written (a finished workdir's copy has none).
  note = published.read_json(PARTIAL_FILE) if published.exists(PARTIAL_FILE) else {"groups": {}}
  for group, got in note["groups"].items():
    lo, hi = got["updates_done"]
    print(
      f"  {group}: in progress, {got['solved']}/{got['runs']} solved, {lo}-{hi} of "
      f"{got['budget']} updates"
    )
  if warning := size_warning(Path(_OUT.value), size_mb):
    print(warning)


def size_warning(copy: Path, size_mb: float, limit_mb: float = _LARGE_MB) -> str | None:
  """One line if the published `copy` weighs over `limit_mb`, naming its largest files
  (what `--leave_out` would spare a clone, if no reader needs them); else None."""
  if size_mb <= limit_mb:
    return None
  files = sorted((f for f in copy.rglob("*") if f.is_file()), key=lambda f: -f.stat().st_size)
  largest = ", ".join(
    f"{f.relative_to(copy)} ({f.stat().st_size / 2**20:.1f} MB)" for f in files[:3]
  )
  return (
    f"warning: {size_mb:.1f} MB, over {limit_mb:.0f} MB; the largest files: {largest}. "
    "Leave out what no reader needs (--leave_out=<glob relative to the workdir>)"
  )


if __name__ == "__main__":
  _WORKDIR = cli.define_workdir("a finished experiment's workdir")
  _OUT = flags.DEFINE_string("out", None, "Folder to publish to (e.g. docs/results/NAME).")
  _OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace --out if it exists.")
  _PARTIAL = flags.DEFINE_bool(
    "partial", False, "Publish groups still training with what resuming them needs."
  )
  _LEAVE_OUT = flags.DEFINE_list(
    "leave_out", None,
    "Glob patterns of files, relative to the workdir, that the copy does without (e.g. "
    "groups/grid_*/params.npz: weights no reader needs and resuming does not read); the "
    "copy lists them in left_out.json.",
  )
  cli.run(main)
