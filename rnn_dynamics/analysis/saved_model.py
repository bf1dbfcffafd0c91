"""A trained model read back for analysis: one saved model, or one run of a stacked group.

Two kinds of file hold a model's arrays `w_in, w_hh, b, w_out, b_out`: a single model
saved whole, with its `init` string (the initialisation, which names the unit type,
docs/reference.md §1), and a workdir's `groups/<group>/params.npz`, which holds a group's
models stacked `[runs, ...]` and leaves the init to the workdir's `config.json`.

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, §4.1.1 (the initialisations); docs/reference.md §1.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp

from rnn_dynamics import results, rnn
from rnn_dynamics.errors import ConfigError
from rnn_dynamics.workdir import Workdir

__all__ = ["load_params"]


def load_params(path: str, index: int = 0) -> tuple[rnn.Params, rnn.Unit, str]:
  """Reads a saved model: arrays w_in, w_hh, b, w_out, b_out and an `init` string.

  The file may also hold a group's models stacked `[runs, ...]` (a workdir's
  `groups/<group>/params.npz`): `index` picks one, and the init, which such a file does
  not hold, comes from the workdir's `config.json` when there is one.

  Raises:
    UserError: the file is damaged, or `index` is not one of its models.
  """
  arrays = results.read_npz(Path(path).expanduser(), "pass a model saved whole")
  params = {k: arrays[k] for k in ("w_in", "w_hh", "b", "w_out", "b_out")}
  if params["w_hh"].ndim == 3:  # stacked [runs, H, H]
    runs = params["w_hh"].shape[0]
    if not 0 <= index < runs:
      raise ConfigError(
        f"--config.params_index={index}: {path} holds {runs} models, so use 0 to {runs - 1}"
      )
    params = {k: v[index] for k, v in params.items()}
  elif index != 0:
    raise ConfigError(f"--config.params_index={index}: {path} holds a single model (use 0)")
  params = rnn.Params(**{k: jnp.asarray(v, jnp.float32) for k, v in params.items()})
  init = str(arrays["init"]) if "init" in arrays else _workdir_init(Path(path))
  return params, rnn.unit_for_init(init), init


def _workdir_init(path: Path) -> str:
  """The init of the experiment whose workdir holds `path` (`<workdir>/groups/<g>/...`);
  `basic_tanh` (docs/reference.md §1) for a file outside a workdir, or one without it."""
  parents = path.expanduser().resolve().parents
  root = parents[2] if len(parents) > 2 else None
  if root is not None and (root / "config.json").is_file():
    return str(Workdir.open(root).config.get("init") or "basic_tanh")
  return "basic_tanh"
