r"""Figure 6 of Pascanu et al. (2013): the error surface with a cliff, and clipping.

Computes `E_50(w, b)` of the one-unit sigmoid network on a grid (vmapped), runs plain and
norm-clipped gradient descent from the same starts, and measures along the plain paths
the gradient norm, the leading Hessian eigenvalue (Lanczos on Hessian-vector products)
and their alignment: the paper's hypothesis that gradient and curvature explode
together. Writes `cliff.{npz,json,png,svg}` to --workdir.

  python -m experiments.cliff --workdir=runs/cliff
  python -m experiments.cliff --config=experiments/configs/cliff.py:test --workdir=/tmp/cliff
"""

from __future__ import annotations

import time

import numpy as np
from absl import logging

from experiments import cli, validation
from rnn_dynamics import results
from rnn_dynamics.analysis import cliff
from rnn_dynamics.report import dynamics, style
from rnn_dynamics.workdir import Workdir


def run(config, workdir_path: str) -> dict:
  """Computes Figure 6's data, writes it and the figure into the workdir (made, or checked
  against `config`, by `Workdir`); returns a summary."""
  workdir = Workdir(workdir_path, config)
  fig6 = cliff.compute(config)
  a = fig6.arrays
  # As before: the analysis binaries keep plain .npz.
  results.write_npz(workdir.output("cliff.npz"), a, compressed=False)
  results.write_json(workdir.output("cliff.json"), fig6.summary, sort_keys=True)
  fig = dynamics.cliff_figure(
    a["ws"],
    a["bs"],
    a["loss_BxW"],
    a["wall_W"],
    np.asarray(a["plain_theta"]),
    np.asarray(a["clipped_theta"]),
    grad_norm_P=fig6.curvature_grad_norm,
    top_eig_P=a["plain_top_eigenvalue"],
    alignment_P=a["plain_alignment"],
    threshold=config.clip_threshold,
  )
  style.save_figure(fig, workdir.output("cliff"))
  return fig6.summary


def main(argv):
  workdir = cli.require_workdir(argv, _WORKDIR, "runs/cliff")
  start = time.time()
  config = validation.validate(_CONFIG.value, "cliff")
  s = run(config, workdir)
  logging.info("done in %.1f s", time.time() - start)
  c = s["curvature"]
  print(
    f"largest step plain {np.max(s['largest_plain_step']):.3g} vs clipped "
    f"{np.max(s['largest_clipped_step']):.3g}; thrown off: {s['thrown_off_plain']} of "
    f"{len(s['final_loss_plain'])}; final loss plain {np.mean(s['final_loss_plain']):.3g}, "
    f"clipped {np.mean(s['final_loss_clipped']):.3g}"
  )
  print(
    f"alignment at spikes {c['alignment_spikes']:.3f} vs elsewhere {c['alignment_other']:.3f};"
    f" |λ1| at spikes {c['top_eig_spikes']:.3g} vs {c['top_eig_other']:.3g}; "
    f"Spearman(‖g‖, |λ1|) = {c['spearman']:.3f}"
  )
  r = s["random_starts"]
  print(
    f"{r['n']} random starts below the wall: solved (E < threshold) plain "
    f"{r['solved_plain']:.0%}, clipped {r['solved_clipped']:.0%}"
  )
  print(f"figure: {workdir}/cliff.png")


if __name__ == "__main__":
  # Flags are defined only when run as a binary, so tests can import several binaries.
  _CONFIG = cli.define_config("experiments/configs/cliff.py")
  _WORKDIR = cli.define_workdir("the data and figures")
  cli.run(main)
