r"""The throughput benchmark's PyTorch peers: the engine's update for every cell of
`rnn_dynamics.cells`, written as a competent PyTorch user would, many runs at once.

Every run has its own weights, stacked on a leading runs axis R, so one batched product
does every run's step (`torch.baddbmm`: `[R, B, H]·[R, H, H]`, not `nn.LSTM`, which
shares one set of weights). The input's contribution to every step is one product outside
the time loop, split into steps with `unbind` (indexing `drive[t]` under autograd was
measured 1.3× slower). The loss is the sum over runs of each run's mean cross-entropy, so
one backward pass gives every run its own gradient; each run's gradient is then
norm-clipped on its own (what `optax.clip_by_global_norm` does per run in the engine) and
applied by plain SGD. No non-finite guard (the engine's costs one `where` on finite
gradients).

Ω (the original code's form, docs/reference.md §2) comes from the adjoints `δ_t = ∂E/∂c_t`
that the same `torch.autograd.grad` call returns beside the parameter gradient, held
constant (eq. 10):

* the paper's RNN (`rnn`): the closed form `‖(δʰ_t ⊙ σ'_t) W_hhᵀ‖² / ‖δʰ_t‖²` of
  `rnn_dynamics.regularizers.omega`, its gradient by autograd;
* every other cell: the VJP of the cell's transition at the saved carries, all steps at
  once (`create_graph=True`), and Ω's gradient by a second `autograd.grad` through it —
  the construction of `regularizers.omega_of_transition`.

The cells follow `rnn_dynamics/cells/*.py` equation for equation: `tanh`, `irnn` and
`orthogonal` carry the pre-activation `x_t = f(x_{t-1}) W + u_t W_in + b`; `lstm` and `gru`
are Flax's `LSTMCell` and `GRUCell` with their gates' weights concatenated (one product
per step instead of one per gate); `exprnn` is `modReLU(h W + u W_in)` with
`W = matrix_exp(A − Aᵀ)` once per update; `lru` the diagonal complex recurrence on a real
`(re, im)` carry with the GELU (tanh form, `jax.nn.gelu`'s default) + GLU features.
`to_peer` lays the engine's own parameters out for the peer, so both sides start from the
same weights, and `tests/test_benchmark.py` checks that a peer's loss, Ω and gradient
equal the engine's to float32 round-off for every cell.

Two ways to run a peer: `Batched` trains all runs in the calling process (on whatever
`torch.get_num_threads()` says), `PerCore` splits them over one 1-thread worker process
per core (`python -m benchmarks.torch_peers` children fed by pickles on stdin), the layout
that uses a multi-core CPU best at these sizes. This module needs numpy and torch only, so
the workers start without JAX.
"""

from __future__ import annotations

import functools
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

try:
  import torch
  import torch.nn.functional as F
except ImportError:  # optional: pip install 'rnn_dynamics[benchmark]'
  torch = None

__all__ = ["CELLS", "Batched", "PerCore", "loss_and_grads", "to_peer"]


class _Cell(NamedTuple):
  """One cell's batched transition; every tensor has the runs axis first.

  Attributes:
    params: the peer's parameter names (`w_out`, `b_out`, the readout, come last).
    prepare: `prepare(p) -> q`, once per update (expRNN's `matrix_exp`, LRU's λ).
    drive: `drive(q, u [R, N, I]) -> [R, N, D]`, the input's contribution to N steps.
    step: `step(q, carry, d [R, B, D]) -> carry`, a carry a tuple of `[R, B, ·]`.
    features: `features(q, carry) -> [R, B, F]`, what the readout reads.
    n_carry: the carry's width per leaf (from `q`).
  """

  params: tuple[str, ...]
  prepare: Callable
  drive: Callable
  step: Callable
  features: Callable
  n_carry: Callable


_READOUT = ("w_out", "b_out")


def _plain(f: Callable) -> _Cell:
  # `rnn_dynamics.cells.vanilla.plain_cell`: the carry is the pre-activation x_t.
  return _Cell(
    ("w_in", "w_hh", "b", *_READOUT),
    lambda p: p,
    lambda q, u: torch.baddbmm(q["b"][:, None], u, q["w_in"]),
    lambda q, c, d: (torch.baddbmm(d, f(c[0]), q["w_hh"]),),
    lambda q, c: f(c[0]),
    lambda q: (q["w_hh"].shape[-1],),
  )


def _paper_rnn() -> _Cell:
  # `rnn_dynamics.rnn` with tanh units, carrying h_t = tanh(x_t) as the original code does.
  return _Cell(
    ("w_in", "w_hh", "b", *_READOUT),
    lambda p: p,
    lambda q, u: torch.baddbmm(q["b"][:, None], u, q["w_in"]),
    lambda q, c, d: (torch.tanh(torch.baddbmm(d, c[0], q["w_hh"])),),
    lambda q, c: c[0],
    lambda q: (q["w_hh"].shape[-1],),
  )


def _lstm_step(q, c, d):
  # flax.linen.LSTMCell, gates in the order i, f, g, o; the bias rides in the drive.
  cell, h = c
  i, f, g, o = torch.baddbmm(d, h, q["w_h"]).chunk(4, dim=-1)
  cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
  return cell, torch.sigmoid(o) * torch.tanh(cell)


def _gru_step(q, c, d):
  # flax.linen.GRUCell: only the candidate's recurrent product has a bias, inside r ⊙ (·).
  (h,) = c
  ir, iz, i_n = d.chunk(3, dim=-1)
  hr, hz, h_n = torch.bmm(h, q["w_h"]).chunk(3, dim=-1)
  r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
  n = torch.tanh(i_n + r * (h_n + q["b_hn"][:, None]))
  return ((1.0 - z) * n + z * h,)


def _exprnn_prepare(p):
  upper = torch.triu(p["a"], diagonal=1)
  return dict(p, w_hh=torch.linalg.matrix_exp(upper - upper.transpose(-1, -2)))


def _exprnn_step(q, c, d):
  z = torch.baddbmm(d, c[0], q["w_hh"])
  return (torch.sign(z) * torch.relu(torch.abs(z) + q["b"][:, None]),)


def _lru_prepare(p):
  modulus, phase = torch.exp(-torch.exp(p["nu_log"])), torch.exp(p["theta_log"])
  return dict(p, lam_re=modulus * torch.cos(phase), lam_im=modulus * torch.sin(phase))


def _lru_drive(q, u):
  gamma = torch.exp(q["gamma_log"])[:, None]
  return torch.cat([gamma * torch.bmm(u, q["b_re"]), gamma * torch.bmm(u, q["b_im"])], dim=-1)


def _lru_step(q, c, d):
  re, im = c
  n = re.shape[-1]
  a, b = q["lam_re"][:, None], q["lam_im"][:, None]
  return a * re - b * im + d[..., :n], a * im + b * re + d[..., n:]


def _lru_features(q, c):
  re, im = c
  z = F.gelu(torch.bmm(re, q["c_re"]) - torch.bmm(im, q["c_im"]), approximate="tanh")
  value = torch.baddbmm(q["b_1"][:, None], z, q["w_1"])
  return value * torch.sigmoid(torch.baddbmm(q["b_2"][:, None], z, q["w_2"]))


@functools.cache
def _cells() -> dict[str, _Cell]:
  relu = lambda x: torch.relu(x)  # noqa: E731
  width = lambda name: lambda q: (q[name].shape[-1],)  # noqa: E731
  lru_width = lambda q: (q["nu_log"].shape[-1],) * 2  # noqa: E731
  return {
    "rnn": _paper_rnn(),
    "tanh": _plain(torch.tanh),
    "irnn": _plain(relu),
    "orthogonal": _plain(torch.tanh),
    "lstm": _Cell(
      ("w_i", "w_h", "b", *_READOUT),
      lambda p: p,
      lambda q, u: torch.baddbmm(q["b"][:, None], u, q["w_i"]),
      _lstm_step,
      lambda q, c: c[1],
      lambda q: (q["w_h"].shape[1],) * 2,
    ),
    "gru": _Cell(
      ("w_i", "b_i", "w_h", "b_hn", *_READOUT),
      lambda p: p,
      lambda q, u: torch.baddbmm(q["b_i"][:, None], u, q["w_i"]),
      _gru_step,
      lambda q, c: c[0],
      width("b_hn"),
    ),
    "exprnn": _Cell(
      ("a", "w_in", "b", *_READOUT),
      _exprnn_prepare,
      lambda q, u: torch.bmm(u, q["w_in"]),
      _exprnn_step,
      lambda q, c: c[0],
      width("b"),
    ),
    "lru": _Cell(
      ("nu_log", "theta_log", "gamma_log", "b_re", "b_im", "c_re", "c_im")
      + ("w_1", "b_1", "w_2", "b_2", *_READOUT),
      _lru_prepare,
      _lru_drive,
      _lru_step,
      _lru_features,
      lru_width,
    ),
  }


CELLS = ("rnn", "tanh", "irnn", "orthogonal", "lstm", "gru", "exprnn", "lru")
"""The cells with a peer: every name of `rnn_dynamics.cells.CELLS` (a test keeps them equal)."""

_LSTM_GATES = ("i", "f", "g", "o")  # flax's LSTMCell: input `i?` and recurrent `h?` Dense
_GRU_GATES = ("r", "z", "n")


def to_peer(cell: str, params: Any) -> dict[str, np.ndarray]:
  """The engine's parameters of `cell` (or a gradient of them: the map is linear), with a
  leading runs axis, as the peer's flat dict of float32 arrays (`_Cell.params`)."""
  out = {"w_out": params.w_out, "b_out": params.b_out}
  p = params if cell == "rnn" else params.cell
  cat = lambda xs: np.concatenate([np.asarray(x) for x in xs], axis=-1)  # noqa: E731
  if cell in ("rnn", "tanh", "irnn", "orthogonal"):
    out.update({k: _get(p, k) for k in ("w_in", "w_hh", "b")})
  elif cell == "lstm":
    v = p["params"]
    out.update(
      w_i=cat(v[f"i{g}"]["kernel"] for g in _LSTM_GATES),
      w_h=cat(v[f"h{g}"]["kernel"] for g in _LSTM_GATES),
      b=cat(v[f"h{g}"]["bias"] for g in _LSTM_GATES),
    )
  elif cell == "gru":
    v = p["params"]
    out.update(
      w_i=cat(v[f"i{g}"]["kernel"] for g in _GRU_GATES),
      b_i=cat(v[f"i{g}"]["bias"] for g in _GRU_GATES),
      w_h=cat(v[f"h{g}"]["kernel"] for g in _GRU_GATES),
      b_hn=v["hn"]["bias"],
    )
  elif cell in ("exprnn", "lru"):
    out.update(p)
  else:
    raise ValueError(f"no PyTorch peer for cell {cell!r}; choose one of {CELLS}")
  names = _cells()[cell].params if torch is not None else tuple(out)
  return {k: np.asarray(out[k], np.float32) for k in names}


def _get(p: Any, name: str) -> Any:
  return getattr(p, name) if hasattr(p, name) else p[name]


# --- one update ------------------------------------------------------------------------


def _omega_of_norms(num_sq, den_sq, bound: float):
  """Per-run Ω (original form) from `[R, N]` squared norms: the mean over kept entries
  of `(num/den − 1)²` (`regularizers._omega_from_norms`, every step valid)."""
  kept = den_sq >= bound
  ratio = num_sq / torch.where(kept, den_sq, torch.ones_like(den_sq))
  terms = torch.where(kept, (ratio - 1.0) ** 2, torch.zeros_like(ratio))
  return terms.sum(1) / kept.sum(1).clamp(min=1)


def _omega_paper_rnn(p, carries, adjoints, bound):
  # The closed form: back_t = (δʰ_t ⊙ (1 − h_t²)) W_hhᵀ, adjoints and states constant.
  h = torch.stack([c[0] for c in carries], 1).detach().flatten(1, 2)  # [R, T·B, H]
  dh = torch.stack([a[0] for a in adjoints], 1).flatten(1, 2)
  back = torch.bmm(dh * (1.0 - h * h), p["w_hh"].transpose(1, 2))
  return _omega_of_norms(back.pow(2).sum(-1), dh.pow(2).sum(-1), bound)


def _omega_of_transition(cell, p, u, carry0, carries, adjoints, bound):
  # Every step's transition at once, at the saved carries c_{t-1}: its VJP with the
  # adjoints δ_t is Ω's numerator, differentiable in the parameters (create_graph).
  r, t, b, i = u.shape
  before = [
    torch.stack([c0] + [c[k] for c in carries[:-1]], 1).flatten(1, 2).detach().requires_grad_()
    for k, c0 in enumerate(carry0)
  ]
  delta = [torch.stack([a[k] for a in adjoints], 1).flatten(1, 2) for k in range(len(carry0))]
  q = cell.prepare(p)
  new = cell.step(q, tuple(before), cell.drive(q, u.reshape(r, t * b, i)))
  back = torch.autograd.grad(new, before, grad_outputs=delta, create_graph=True)
  num = sum(x.pow(2).sum(-1) for x in back)
  den = sum(x.pow(2).sum(-1) for x in delta)
  return _omega_of_norms(num, den, bound)


def loss_and_grads(
  cell: str,
  p: Mapping[str, torch.Tensor],
  inputs_RxTxBxI: torch.Tensor,
  targets_RxB: torch.Tensor,
  *,
  alpha: float = 0.0,
  bound: float = 1e-20,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
  """Every run's loss and gradient, Ω's included, in one forward and backward pass.

  Args:
    cell: one of `CELLS`.
    p: the peer's parameters (`to_peer`), `[R, ...]` tensors that require grad.
    inputs_RxTxBxI: each run's fixed-length batch, time-major after the runs axis.
    targets_RxB: class ids, read out from the last carry's features.
    alpha: Ω's weight; 0 skips Ω (SGD, SGD-C).
    bound: Ω skips an entry whose `‖δ_t‖²` is below this.

  Returns:
    `(loss [R], grads, omega [R] or None)`, `grads` by name with `α ∂⁺Ω/∂θ` added.
  """
  c = _cells()[cell]
  r, t, b, i = inputs_RxTxBxI.shape
  q = c.prepare(p)
  drives = c.drive(q, inputs_RxTxBxI.reshape(r, t * b, i)).view(r, t, b, -1).unbind(1)
  dtype = inputs_RxTxBxI.dtype
  carry0 = tuple(torch.zeros(r, b, n, dtype=dtype) for n in c.n_carry(q))
  carry, carries = carry0, []
  for d in drives:
    carry = c.step(q, carry, d)
    if alpha:
      # An alias per carry leaf, read only by the next step: the gradient with respect to
      # it is the carry's adjoint, not the total derivative through the step's own use
      # of it (the LSTM's h_t = o ⊙ tanh(c_t) reads c_t).
      carry = tuple(x.view_as(x) for x in carry)
    carries.append(carry)
  logits = torch.baddbmm(p["b_out"][:, None], c.features(q, carry), p["w_out"])
  loss = F.cross_entropy(logits.flatten(0, 1), targets_RxB.flatten(), reduction="none")
  loss = loss.view(r, b).mean(1)  # each run's mean: the sum's gradient is every run's own
  params = [p[name] for name in c.params]
  if not alpha:
    grads = torch.autograd.grad(loss.sum(), params)
    return loss.detach(), dict(zip(c.params, grads)), None
  # One backward pass: the parameter gradient and every adjoint ∂E/∂c_t (a carry leaf the
  # loss does not read, e.g. the LSTM's last cell state, gets a zero adjoint).
  flat = [x for carry in carries for x in carry]
  out = torch.autograd.grad(loss.sum(), params + flat, allow_unused=True, materialize_grads=True)
  grads, k = out[: len(params)], len(carry0)
  adjoints = [out[len(params) + s * k : len(params) + (s + 1) * k] for s in range(t)]
  if cell == "rnn":
    omega = _omega_paper_rnn(p, carries, adjoints, bound)
  else:
    omega = _omega_of_transition(c, p, inputs_RxTxBxI, carry0, carries, adjoints, bound)
  g_omega = torch.autograd.grad(omega.sum(), params, allow_unused=True, materialize_grads=True)
  grads = [g + alpha * go for g, go in zip(grads, g_omega)]
  return loss.detach(), dict(zip(c.params, grads)), omega.detach()


# --- training ----------------------------------------------------------------------------


class Batched:
  """R runs of one cell trained together in this process, one update after another.

  Args:
    cell: one of `CELLS`.
    params: `to_peer`'s dict, `[R, ...]` arrays.
    inputs, targets: `[P, R, T, B, I]` and `[P, R, B]`, P batches drawn ahead of time
      (not counted), used in turn.
    lr, clip, alpha, bound: SGD's rate, the per-run norm-clipping threshold (None: no
      clipping), Ω's weight (0: no Ω) and bound.
  """

  def __init__(self, cell, params, inputs, targets, *, lr, clip=None, alpha=0.0, bound=1e-20):
    self.cell, self.lr, self.clip, self.alpha, self.bound = cell, lr, clip, alpha, bound
    self.p = {
      k: torch.tensor(np.asarray(v, np.float32), requires_grad=True) for k, v in params.items()
    }
    self.inputs = torch.from_numpy(np.array(inputs, np.float32))  # a writable copy
    self.targets = torch.from_numpy(np.asarray(targets, np.int64))
    self.runs = self.inputs.shape[1]
    self.i = 0
    self.updates_per_block = 1

  def update(self) -> None:
    k = self.i % self.inputs.shape[0]
    self.i += 1
    _, grads, _ = loss_and_grads(
      self.cell, self.p, self.inputs[k], self.targets[k], alpha=self.alpha, bound=self.bound
    )
    with torch.no_grad():
      scale = torch.full((self.runs,), -self.lr)
      if self.clip is not None:
        norm = sum(g.pow(2).flatten(1).sum(1) for g in grads.values()).sqrt()
        scale = torch.where(norm < self.clip, scale, scale * self.clip / norm)
      for name, g in grads.items():
        self.p[name].add_(g * scale.view(-1, *(1,) * (g.ndim - 1)))

  def seconds_per_update(self, target_s: float) -> float:
    """Warms up, then times updates for about `min(target_s, 0.2)` seconds."""
    for _ in range(2):
      self.update()
    t0, n = time.perf_counter(), 0
    while n < 2 or time.perf_counter() - t0 < min(0.2, target_s):
      self.update()
      n += 1
    return (time.perf_counter() - t0) / n

  def calibrate(self, target_s: float) -> None:
    """Sizes a block to take about `target_s` seconds."""
    self.updates_per_block = max(1, round(target_s / self.seconds_per_update(target_s)))

  def run(self, n: int) -> None:
    for _ in range(n):
      self.update()

  def __call__(self) -> None:
    self.run(self.updates_per_block)


class PerCore:
  """The same runs split over `processes` worker processes of one thread each.

  A block sends every worker the same number of updates at once and returns when the last
  is done; `__call__` returns the CPU seconds the workers spent on it (the caller's own
  are near zero). `close()` ends the workers.
  """

  def __init__(self, cell, params, inputs, targets, *, processes: int, **hparams):
    runs = np.asarray(inputs).shape[1]
    parts = [p for p in np.array_split(np.arange(runs), processes) if len(p)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    self.runs, self.updates_per_block, self.workers = runs, 1, []
    for part in parts:
      w = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.torch_peers"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=root,
        env=env,
      )
      self.workers.append(w)
      share = {k: np.asarray(v)[part] for k, v in params.items()}
      args = (cell, share, np.asarray(inputs)[:, part], np.asarray(targets)[:, part])
      self._send(w, ("init", (args, hparams)))
    for w in self.workers:
      self._recv(w)

  @staticmethod
  def _send(w, message) -> None:
    pickle.dump(message, w.stdin, protocol=pickle.HIGHEST_PROTOCOL)
    w.stdin.flush()

  @staticmethod
  def _recv(w):
    try:
      return pickle.load(w.stdout)
    except EOFError:
      raise RuntimeError(f"torch peer worker {w.pid} died (exit code {w.wait()})") from None

  def _all(self, message) -> list:
    for w in self.workers:
      self._send(w, message)
    return [self._recv(w) for w in self.workers]

  def calibrate(self, target_s: float) -> None:
    """Sizes a block so that the slowest worker takes about `target_s` seconds."""
    per_update = max(self._all(("time", target_s)))
    self.updates_per_block = max(1, round(target_s / per_update))

  def __call__(self) -> float:
    return float(sum(self._all(("run", self.updates_per_block))))

  def close(self) -> None:
    for w in self.workers:
      if w.poll() is None:
        try:
          self._send(w, ("stop", None))
          w.stdin.close()
          w.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
          w.kill()
    self.workers = []


def _worker() -> None:
  """A `PerCore` worker: one thread, commands from stdin, replies on stdout."""
  torch.set_num_threads(1)
  channel_in, channel_out = sys.stdin.buffer, sys.stdout.buffer
  sys.stdout = sys.stderr  # nothing else may write into the reply channel
  job = None
  while True:
    try:
      command, arg = pickle.load(channel_in)
    except EOFError:  # the benchmark has gone
      return
    if command == "init":
      args, hparams = arg
      job, reply = Batched(*args, **hparams), None
    elif command == "time":
      reply = job.seconds_per_update(arg)
    elif command == "run":
      c0 = time.process_time()
      job.run(arg)
      reply = time.process_time() - c0
    elif command == "stop":
      return
    else:
      raise ValueError(f"unknown command {command!r}")
    pickle.dump(reply, channel_out, protocol=pickle.HIGHEST_PROTOCOL)
    channel_out.flush()


if __name__ == "__main__":
  _worker()
