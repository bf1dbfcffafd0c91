"""Analysis of the paper's §2: mechanics, dynamics and geometry of exploding gradients.

* `bifurcation`: fixed points, stability, bifurcations and basin boundary of the one-unit
  map (Figure 3).
* `surface`: the error surface with a cliff and gradient descent with and without norm
  clipping (Figure 6).
* `cliff`: Figure 6's numbers end to end, as `experiments/cliff.py` runs it.
* `curvature`: Hessian-vector products, Lanczos, gradient/eigenvector alignment (§2.3).
* `mechanics`: `‖∂x_t/∂x_k‖` by lag, adjoint norms and Ω terms (§2.1, eq. 9).
* `attractors`: fixed points of a trained network's autonomous map (§2.2, §4.1.1).
* `saved_model`: a trained model read back from a saved file or a workdir's stacked group.
* `training_history`: a short SGD run kept step by step, with ‖g‖, λ₁, alignment, ρ and Ω
  measured along it (§2.3).
* `trained_attractors`: what a trained temporal-order network's attractors hold, end to
  end, as `experiments/attractors.py` runs it (§4.1.1).
* `lyapunov`: the top-k Lyapunov exponents of an input-driven network by repeated QR, and
  the gradient-flossing penalty (beyond the paper, docs/reference.md §6).
The figures are `rnn_dynamics.report.dynamics`'s. `trained_attractors` writes its figure,
so it is imported as a module (as is `cliff`): importing this package loads neither
matplotlib nor the report.

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, ICML, §2.
"""

from rnn_dynamics.analysis.attractors import (
  FixedPointSet,
  assign_attractors,
  centroid_accuracy,
  find_fixed_points,
  flow,
  fixed_points_of,
  label_purity,
  linear_stability,
  map_for,
  unique_points,
)
from rnn_dynamics.analysis.bifurcation import (
  FixedPoints,
  basin_boundary,
  bifurcation_points,
  branches,
  fixed_points,
  iterate,
  one_unit_params,
)
from rnn_dynamics.analysis.curvature import (
  Curvature,
  alignment,
  curvature_diagnostics,
  hvp,
  lanczos,
  spike_mask,
  spike_statistics,
  top_eigenpair,
)
from rnn_dynamics.analysis.lyapunov import (
  flossing_loss,
  lyapunov_spectrum,
  rnn_lyapunov_exponents,
  rnn_spectrum,
)
from rnn_dynamics.analysis.mechanics import (
  GAMMA,
  adjoint_norms_by_lag,
  decay_rate,
  jacobian_norms_by_lag,
  linear_step,
  omega_terms,
  scaled_gaussian,
  scaled_orthogonal,
  trajectory_jacobians,
)
from rnn_dynamics.analysis.saved_model import load_params
from rnn_dynamics.analysis.surface import (
  CliffSetup,
  Trajectory,
  cliff_loss,
  descend,
  loss_surface,
  wall_bias,
)
from rnn_dynamics.analysis.training_history import measure_training, train_inline

__all__ = [
  "GAMMA",
  "CliffSetup",
  "Curvature",
  "FixedPointSet",
  "FixedPoints",
  "Trajectory",
  "adjoint_norms_by_lag",
  "alignment",
  "assign_attractors",
  "centroid_accuracy",
  "basin_boundary",
  "bifurcation_points",
  "branches",
  "cliff_loss",
  "curvature_diagnostics",
  "decay_rate",
  "descend",
  "find_fixed_points",
  "fixed_points",
  "fixed_points_of",
  "flossing_loss",
  "flow",
  "hvp",
  "iterate",
  "jacobian_norms_by_lag",
  "label_purity",
  "lanczos",
  "linear_stability",
  "linear_step",
  "load_params",
  "loss_surface",
  "lyapunov_spectrum",
  "map_for",
  "measure_training",
  "omega_terms",
  "one_unit_params",
  "rnn_lyapunov_exponents",
  "rnn_spectrum",
  "scaled_gaussian",
  "scaled_orthogonal",
  "spike_mask",
  "spike_statistics",
  "top_eigenpair",
  "train_inline",
  "trajectory_jacobians",
  "unique_points",
  "wall_bias",
]
