"""Reporting: every figure of the experiments, and their tables, drawn from saved results.

One module per kind of figure, each drawing from the plain rows and arrays an experiment
saved (so a notebook redraws them from a workdir) and returning a matplotlib figure:

* `style`: one look for every figure (algorithm labels, colours, markers, font sizes,
  the length axis) and the one writer, `save_figure`; it selects the Agg backend;
* `success_rate`: Figure 7 and the updates-to-solve curves (`experiments/success_rate.py`);
* `flossing`: gradient flossing (SGD-CF) beside Ω (SGD-CR) in a Figure 7 workdir: seeds
  solved and updates to solve, each run's ρ, Ω and Lyapunov exponents over training;
* `generalization`: the figure and terminal table of `experiments/generalization.py`
  (§4.1.1);
* `pathological`: the tables and figures of `experiments/pathological.py` (§4.1.2);
* `threshold_grid`: the threshold × α heatmaps (`experiments/threshold_grid.py`, §3.2);
* `dynamics`: Figures 3 and 6, the lag curves of §2.1 and a trained network's attractors
  (`experiments/bifurcation.py`, `cliff.py`, `mechanics.py`, `attractors.py`);
* `methods`: the methods comparison's tables and figures (`experiments/methods.py`);
* `natural`: the natural tasks' score per epoch (Tables 1–2; their tables are
  `rnn_dynamics.natural.report`'s).

The modules import nothing that imports them back: the numbers come in as arguments.
"""
