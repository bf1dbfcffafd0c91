"""Trained single models trained on past their pass (§4.1.1), tested as they go.

`experiments/generalization_continued.py` starts from the models of a generalization
workdir (`--from_workdir`) and trains them on with that workdir's own set-up (task,
model, algorithm, lr, clip, α, Ω form, batch, training lengths, guard: read from its
`config.json`, so none of them is a field here), testing every model at each of
`eval_lengths` every `test_every` updates. Only how long, how often and on how many
sequences is set here.

Presets, chosen with `--config=experiments/configs/generalization_continued.py:<preset>`:
  long: for the committed `docs/results/generalization_long` (5 models that stopped at
    their first passed zero-mistake test, at 204k–269k updates): 250,000 more updates
    per model, tested every 50,000 (6 test points, 0 included) at 50 … 5000 steps on
    10,000 sequences each, the source's own test.
  cpu: a few minutes: 20,000 more updates, tested every 5,000, 1,000 sequences per length
    (for a `cpu`-preset generalization workdir, or a quick look at the long one).
  test: seconds; for CI and the end-to-end test, from a `test`-preset generalization
    workdir (200 more updates, tested every 100, lengths 10, 20, 40, 200 sequences).
Every field can be overridden on the command line, e.g. `--config.updates=100000`.
"""

import ml_collections

from experiments.configs import fields
from experiments.configs.fields import declare
from experiments.validation import SIZE, anything, integer, multiple_of, sequence


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  declare(c, "preset", preset, anything())
  # --- training on: updates per model after the source stopped it (a multiple of the
  # source's chunk_size), with its set-up and no stop at a passed success test ---
  declare(c, "updates", 250_000, SIZE)
  # The continued runs' data keys and length schedule come from this seed (the source's
  # models were trained from its own `seed`, 0 in every preset: 1 keeps them apart).
  declare(c, "seed", 1, integer(0))
  # --- the tests: every model at each length, at 0, test_every, …, updates updates ---
  declare(c, "test_every", 50_000, SIZE)
  declare(
    c,
    "eval_lengths",
    (50, 100, 150, 200, 250, 500, 1000, 2000, 3000, 5000),
    sequence(SIZE, unique=True),
  )
  # Fresh sequences per length, the same for every model and test point (the source's
  # test sequences: with its eval_sequences, eval_batch and eval_block_steps, test point
  # 0 repeats its generalization.csv bit for bit).
  declare(c, "eval_sequences", 10_000, SIZE)
  declare(c, "eval_batch", 1000, SIZE)  # most sequences in one evaluation block
  # Memory bound of the tests: sequences × steps in one block, per model.
  declare(c, "eval_block_steps", 200_000, SIZE)
  # --- bookkeeping ---
  fields.bookkeeping(c, checkpoint_every_s=60.0, progress_every_s=15.0)
  if preset == "long":
    pass
  elif preset == "cpu":
    c.updates = 20_000
    c.test_every = 5_000
    c.eval_sequences = 1000
    c.eval_batch = 500
  elif preset == "test":
    c.updates = 200
    c.test_every = 100
    c.eval_lengths = (10, 20, 40)
    c.eval_sequences = 200
    c.eval_batch = 100
    c.eval_block_steps = 2000
    c.checkpoint_every_s = 0.0
    c.progress_every_s = 0.0
  else:
    raise ValueError(f"unknown preset {preset!r}; choose 'long', 'cpu' or 'test'")
  return c


# The relations with the source (whole chunks of its chunk_size, lengths its task can
# make) are checked once the source is read (`rnn_dynamics.synthetic.continued.check`).
RELATIONS = (multiple_of("updates", "test_every"),)
