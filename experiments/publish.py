r"""Copies a finished workdir's result files into the repository, e.g. `docs/results/`.

Checkpoints, progress files, the lock and SVG copies of figures stay behind
(`Workdir.publish`); the notebooks open the copy as they open the workdir. A workdir that
a run is still writing, or whose groups are still training, is refused.

  python -m experiments.publish --workdir=/work/runs/fig7_long --out=docs/results/fig7_long
"""

from __future__ import annotations

from absl import app, flags

from experiments import cli
from rnn_dynamics.workdir import Workdir

# Above this a folder weighs on every clone; the results of one experiment fit well under.
_LARGE_MB = 5.0


def main(argv):
  path = cli.require_workdir(argv, _WORKDIR, "runs/fig7")
  if not _OUT.value:
    raise app.UsageError("--out is required, e.g. --out=docs/results/fig7")
  size_mb = Workdir.open(path).publish(_OUT.value, overwrite=_OVERWRITE.value) / 2**20
  print(f"published {path} -> {_OUT.value} ({size_mb:.1f} MB)")
  if size_mb > _LARGE_MB:
    print(f"warning: over {_LARGE_MB:.0f} MB; leave out what a reader does not need")


if __name__ == "__main__":
  _WORKDIR = cli.define_workdir("a finished experiment's workdir")
  _OUT = flags.DEFINE_string("out", None, "Folder to publish to (e.g. docs/results/NAME).")
  _OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace --out if it exists.")
  cli.run(main)
