"""Truncated BPTT on the natural tasks of §4.2: polyphonic music and character-level text.

The model is the paper's sigmoid RNN of `rnn_dynamics.rnn` with an output at every step:
independent Bernoulli outputs per piano key (music, `all_bernoulli` head) or a softmax
over the symbols (text, `all_softmax` head). A data split is laid out host-side as
`n_lanes` parallel streams ("lanes") cut into segments of `segment_length` steps:

* music: each lane plays whole songs one after the other; the input at step t is the
  frame at t − 1 (a silent frame at a song's start), the target the frame at t, so every
  frame of a song is scored. A song starts at a segment boundary (its last segment is
  padded), where the state is reset to zero;
* text: the symbol stream is split into `n_lanes` contiguous pieces; the input at step t
  is symbol t, the target symbol t + `target_offset` (1: next character; 5: the paper's
  fifth character ahead).

Within a lane the hidden state is carried from one segment to the next (truncated BPTT:
the gradient stops at the segment boundary, the forward pass does not), so evaluating the
chained segments gives exactly the full-sequence likelihood.

Every run (the SGD / SGD-C / SGD-CR columns × seeds) is a row of stacked arrays, and
`chunk_size` segments of updates for all of them are one compiled, vmapped program, as in
`rnn_dynamics.synthetic.train`. What changes between epochs — the learning rate (halved when the
epoch's error rises) and α (constant or `α_0 / t`) — travels in the per-run `HParams`, so
it never recompiles.

The package, one concern a module:

* `datasets`: the data sets a table's config names, loaded (`music_splits`, `text_splits`);
* `segments`: a split laid out as lanes of segments (music, text);
* `task`: `NaturalTask`, the sanity baselines, small generated data sets for tests;
* `schedules`: α's schedule and the learning-rate halving rule;
* `trainer`: the compiled programs (`make_trainer`), `predict_roll`, `sample_text`;
* `columns`: a table's columns (SGD, SGD-C, SGD-CR) and its runs, columns × seeds, with
  their hyper-parameters per epoch (`RunTable`);
* `scoring`: parameters scored on a split (`score`; every split after an epoch,
  `SplitScores`);
* `epochs`: a fit's record of its epochs (`FitState`, checkpointed; `FitResult`);
* `fit`: the host loop (epochs, evaluation, best parameters, checkpoints, stop), on
  `rnn_dynamics.runs` as the synthetic sweep; `fit_in_workdir`, as a table's binary runs it;
* `report`: a table's files (`write_fit_outputs`, `comparison_table`, `table_notes`,
  `wall_note`);
* `rescore`: a finished table's best models scored on a whole split (imported as a
  module: `from rnn_dynamics.natural import rescore`).

References:
  Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural
  networks, ICML, §4.2, Tables 1 and 2, and the supplementary "Natural tasks".
  Boulanger-Lewandowski, Bengio & Vincent (2012), ICML (music data and metric).
  Mikolov et al. (2012), Subword language modeling with neural networks (character PTB).
"""

from rnn_dynamics.natural.datasets import (
  MUSIC_FILE_NAMES,
  MUSIC_NAMES,
  TEXT_NAMES,
  music_splits,
  recorded,
  text_splits,
)
from rnn_dynamics.natural.columns import ALGORITHMS, Column, columns
from rnn_dynamics.natural.epochs import FitResult, FitState
from rnn_dynamics.natural.fit import fit, fit_in_workdir
from rnn_dynamics.natural.report import (
  comparison_table,
  table_notes,
  wall_note,
  write_fit_outputs,
)
from rnn_dynamics.natural.schedules import ALPHA_SCHEDULES, alpha_at, halve_lr
from rnn_dynamics.natural.scoring import SPLITS, score
from rnn_dynamics.natural.segments import (
  Segments,
  music_segments,
  pad_segments,
  shift_targets,
  split_chunks,
  text_segments,
)
from rnn_dynamics.natural.task import (
  LN2,
  NaturalTask,
  frequency_baseline,
  music_task,
  synthetic_music,
  synthetic_text,
  text_task,
  unigram_baseline,
)
from rnn_dynamics.natural.trainer import (
  NaturalState,
  SegmentMetrics,
  Trainer,
  make_trainer,
  predict_roll,
  sample_text,
)

__all__ = [
  "ALGORITHMS",
  "MUSIC_FILE_NAMES",
  "MUSIC_NAMES",
  "TEXT_NAMES",
  "ALPHA_SCHEDULES",
  "Column",
  "FitResult",
  "FitState",
  "LN2",
  "NaturalState",
  "NaturalTask",
  "SPLITS",
  "SegmentMetrics",
  "Segments",
  "Trainer",
  "alpha_at",
  "columns",
  "comparison_table",
  "fit",
  "fit_in_workdir",
  "frequency_baseline",
  "halve_lr",
  "make_trainer",
  "music_segments",
  "music_splits",
  "music_task",
  "pad_segments",
  "predict_roll",
  "recorded",
  "sample_text",
  "score",
  "shift_targets",
  "split_chunks",
  "synthetic_music",
  "synthetic_text",
  "text_segments",
  "text_splits",
  "text_task",
  "unigram_baseline",
  "table_notes",
  "wall_note",
  "write_fit_outputs",
]
