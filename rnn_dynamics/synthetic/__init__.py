"""The synthetic tasks' trainer (§4.1): many runs of one pathological task in one program.

Beside `rnn_dynamics.natural` (truncated BPTT on music and text), one concern a module:

* `train`: `make_train(config)`, one run as pure functions of a key and per-run
  hyper-parameters (`RunState`, the compiled chunk of updates, the success test);
* `sweep`: a group of runs vmapped and sharded over devices, a stepper of the one host
  loop (`rnn_dynamics.runs.loop`), with its screen, full tests and compaction;
  `run_in_workdir`, as a binary trains a group of its workdir. Its parts:
  * `resident`: a group's runs on the host and in the compiled program, and compaction;
  * `success`: the paper's test of the runs that pass the screen;
  * `record`: a group's bookkeeping and traces, and the rows they give;
* `generalization`: single models trained over a length range, tested at longer lengths;
* `threshold_grid`: the (clipping threshold × α) grid of one task and length;
* `flops`: what one update costs in floating-point operations, from XLA's cost analysis.
"""

from rnn_dynamics.synthetic import flops, generalization, sweep, threshold_grid, train

__all__ = ["flops", "generalization", "sweep", "threshold_grid", "train"]
