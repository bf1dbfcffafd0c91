"""rnn_dynamics: the experiments of Pascanu, Mikolov & Bengio (2013) in JAX.

The public surface, one concept per module:

  rnn           the paper's RNN: params, initialisations, unrolling, exact BPTT + adjoints
  heads         the linear readout and each task's loss and error
  cells         the networks the synthetic trainer runs by name: the paper's RNN (its
                hand-written BPTT) and any `Cell` by autodiff, with Ω for every cell;
                `cells.flax_paper` is the paper's recurrence as a Flax cell
  algorithms    the algorithm table (SGD, SGD-C, SGD-CR, element-wise) → `hparams`, the optimizer
  tasks         on-device samplers of the pathological tasks (`get_task`)
  clipping      optax transformations: norm clipping, element-wise clipping, non-finite guard
  regularizers  Ω (both forms) and its gradient from the saved adjoints, for any transition
  synthetic     the pathological tasks' trainer: `train.make_train(config)` (one run as pure
                functions), `sweep` (many runs vmapped, sharded, checkpointed), the
                generalization and threshold-grid experiments
  natural       the natural tasks' trainer (truncated BPTT on music and text)
  runs          what both trainers share: the host loop, devices, checkpoints, events
  workdir, results, report  what an experiment leaves on disk, and its tables and figures
  analysis      dynamics and geometry (§2): bifurcations, the cliff, curvature, attractors
  data          natural data sets: polyphonic piano rolls, character text

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, ICML.
"""

from rnn_dynamics import algorithms, clipping, regularizers, rnn, synthetic, tasks
from rnn_dynamics.clipping import (
  clip_by_global_norm_with_stats,
  clip_elementwise,
  nonfinite_fallback,
)
from rnn_dynamics.regularizers import omega, omega_and_grad
from rnn_dynamics.rnn import Params, init_params, loss_and_grads, unroll
from rnn_dynamics.tasks import get_task
from rnn_dynamics.synthetic.train import make_train

__all__ = [
  "Params",
  "algorithms",
  "clip_by_global_norm_with_stats",
  "clip_elementwise",
  "clipping",
  "get_task",
  "init_params",
  "loss_and_grads",
  "make_train",
  "nonfinite_fallback",
  "omega",
  "omega_and_grad",
  "regularizers",
  "rnn",
  "synthetic",
  "tasks",
  "unroll",
]
