"""Reporting: tables and figures of the experiments, drawn from saved results.

* `style`: one look for every experiment (algorithm labels, colours, markers; figure
  resolution);
* `generalization`: the figure and terminal table of `experiments/generalization.py`
  (§4.1.1);
* `pathological`: the tables and figures of `experiments/pathological.py` (§4.1.2).
"""
