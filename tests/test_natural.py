"""The natural-task trainer: data layout, truncated BPTT with carried state, schedules, binaries."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rnn_dynamics import algorithms, heads, natural, paper, rnn, runs  # noqa: E402
from rnn_dynamics.synthetic.train import HParams  # noqa: E402

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _config(**overrides) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict(dict(
    n_hidden=8, batch_size=3, init="sigmoid", cost="mean", biases=True,
    nonfinite_guard="original", momentum=0.0, omega_form="original", omega_bound=1e-20,
    segment_length=7, chunk_size=2, eval_batch_size=2, max_epochs=2, alpha_schedule="inverse",
    lr_halving="train", min_lr=0.0, time_budget_s=0.0, train_eval_limit=0, seeds=1, seed=0,
    checkpoint_every_s=0.0, progress_every_s=0.0,
  ))
  c.update(overrides)
  return c


def _songs(seed=0, n=5, keys=6):
  rng = np.random.default_rng(seed)
  return [(rng.random((int(rng.integers(3, 20)), keys)) < 0.3).astype(np.uint8) for _ in range(n)]


def _hp(lr=0.0, clip=math.inf, alpha=0.0):
  # Norm clipping at `clip`, guarded where it clips (SGD-C's row; SGD's at clip = ∞).
  run = algorithms.clipping_of("sgd_c", clip)
  return HParams(lr=jnp.float32(lr), clip=jnp.float32(clip), alpha=jnp.float32(alpha),
                 init=jnp.int32(rnn.init_id("sigmoid")), elementwise=jnp.bool_(run.elementwise),
                 guarded=jnp.bool_(run.guarded))


def _trained_params(task, key=0):
  # Away from the tiny initial weights, so that carrying the state matters.
  trainer = natural.make_trainer(_config(), task)
  params = trainer.init(jax.random.PRNGKey(key), _hp()).params
  return jax.tree.map(
    lambda a: a * 60.0 + 0.2 * jax.random.normal(jax.random.PRNGKey(key + 1), a.shape), params
  )


def _full_nll_music(params, songs):
  """NLL of whole songs, each one un-truncated unroll from the zero state (one padded batch)."""
  t_max = max(len(s) for s in songs)
  x = np.zeros((t_max, len(songs), songs[0].shape[1]), np.float32)
  y = np.zeros_like(x)
  mask = np.zeros((t_max, len(songs)), bool)
  for b, s in enumerate(songs):
    y[: len(s), b], x[1 : len(s), b], mask[: len(s), b] = s, s[:-1], True
  out = rnn.unroll(params, rnn.SIGMOID, jnp.asarray(x), jnp.asarray(mask))
  nll = jnp.sum(heads.sigmoid_bce(heads.readout(params, out.h_TxBxH), jnp.asarray(y)), axis=-1)
  return float(jnp.sum(jnp.where(mask, nll, 0.0)))


def test_music_segments_layout():
  songs = _songs(n=4)
  seg = natural.music_segments(songs, n_lanes=2, segment_length=5)
  assert seg.inputs.shape[1:] == (5, 2, 6) and seg.reset.shape == (seg.n_segments, 2)
  assert seg.mask.sum() == sum(len(s) for s in songs)
  # Walk every lane: each song starts at a reset segment, its inputs are the targets
  # shifted by one step with silence first.
  found = []
  for b in range(2):
    t_all = seg.targets[:, :, b].reshape(-1, 6)
    i_all = seg.inputs[:, :, b].reshape(-1, 6)
    m_all = seg.mask[:, :, b].reshape(-1)
    for s in np.flatnonzero(seg.reset[:, b] & seg.mask[:, 0, b]):
      n = int(m_all[s * 5:].argmin()) if not m_all[s * 5:].all() else m_all[s * 5:].size
      song = t_all[s * 5 : s * 5 + n]
      assert not i_all[s * 5].any()
      np.testing.assert_array_equal(i_all[s * 5 + 1 : s * 5 + n], song[:-1])
      found.append(song.tobytes())
  assert sorted(found) == sorted(s.tobytes() for s in songs)


def test_fifth_character_target_shift():
  ids = np.arange(50) % 17
  inputs, targets = natural.shift_targets(ids, 5)
  np.testing.assert_array_equal(targets, ids[5:])
  np.testing.assert_array_equal(inputs, ids[:-5])
  seg = natural.text_segments(ids, n_lanes=3, segment_length=4, offset=5)
  # Back to streams: lane b holds a contiguous piece; its targets are 5 symbols ahead.
  pos = np.arange(45)
  lane_len = -(-45 // 3)
  for b in range(3):
    m = seg.mask[:, :, b].reshape(-1)
    x = seg.inputs[:, :, b].reshape(-1)[m]
    y = seg.targets[:, :, b].reshape(-1)[m]
    p = pos[b * lane_len : (b + 1) * lane_len]
    np.testing.assert_array_equal(x, ids[p])
    np.testing.assert_array_equal(y, ids[p + 5])
  assert seg.reset[0].all() and not seg.reset[1:].any()
  with pytest.raises(ValueError, match="offset"):
    natural.shift_targets(ids, 0)


def test_lr_halving_rule():
  lr = np.asarray([1.0, 1.0, 0.5, 0.5, 0.1])
  prev = np.asarray([2.0, 2.0, np.nan, 3.0, 1.0])
  cur = np.asarray([2.5, 1.5, 9.0, np.nan, 1.0])
  # rose → halved; fell → kept; no previous epoch → kept; diverged → kept; equal → kept.
  np.testing.assert_allclose(natural.halve_lr(lr, prev, cur), [0.5, 1.0, 0.5, 0.5, 0.1])


def test_alpha_schedules():
  assert natural.alpha_at(0.5, 1, "inverse") == 0.5
  assert natural.alpha_at(0.5, 4, "inverse") == 0.125  # the paper's α_t = 1/(2t)
  assert natural.alpha_at(0.01, 7, "constant") == 0.01
  np.testing.assert_allclose(natural.alpha_at(np.asarray([0.1, 0.0]), 2, "inverse"), [0.05, 0])
  with pytest.raises(ValueError):
    natural.alpha_at(0.5, 0, "inverse")
  with pytest.raises(ValueError, match="schedule"):
    natural.alpha_at(0.5, 1, "cosine")


def _chained_train_losses(trainer, params, seg, chunk):
  """Σ loss·n over every segment of a training pass with lr = 0 (params unchanged)."""
  state = trainer.init(jax.random.PRNGKey(0), _hp()).replace(params=params)
  total = 0.0
  run_chunk = jax.jit(trainer.chunk)
  for i in range(0, seg.n_segments, chunk):
    part = natural.Segments(*(jnp.asarray(a[i : i + chunk]) for a in seg))
    state, m = run_chunk(state, _hp(), part)
    total += float(jnp.sum(m.loss * m.n_valid))
  return total


def test_truncated_bptt_with_carried_state_equals_full_forward_music():
  songs = _songs(seed=1, n=5)
  task = natural.music_task("toy", n_keys=6)
  cfg = _config(segment_length=4, chunk_size=3)
  trainer = natural.make_trainer(cfg, task)
  params = _trained_params(task)
  full = _full_nll_music(params, songs)
  seg = natural.pad_segments(natural.music_segments(songs, 3, 4), 3)
  # The training pass (segments chained through the chunk's carry and across chunks).
  np.testing.assert_allclose(_chained_train_losses(trainer, params, seg, 3), full, rtol=1e-5)
  # The evaluation pass.
  h, nll, n = jax.jit(trainer.evaluate)(params, jnp.zeros((3, 8)), _hp(), natural.Segments(
    *(jnp.asarray(a) for a in seg)))
  np.testing.assert_allclose(float(nll), full, rtol=1e-5)
  assert int(n) == sum(len(s) for s in songs)
  # Without carrying (every segment from zero) the loss differs: the test has teeth.
  cut = seg._replace(reset=np.ones_like(seg.reset))
  assert abs(_chained_train_losses(trainer, params, cut, 3) - full) > 1e-3 * full


def test_truncated_bptt_with_carried_state_equals_full_forward_text():
  ids = np.random.default_rng(0).integers(0, 7, 90)
  task = natural.text_task("toy", 7, target_offset=2)
  cfg = _config(segment_length=5, chunk_size=2, batch_size=2, cost="sum", biases=False)
  trainer = natural.make_trainer(cfg, task)
  params = _trained_params(task, key=3)
  inputs, targets = natural.shift_targets(ids, 2)
  # Each lane is one contiguous piece of 44 steps, unrolled whole from zero.
  x, y = inputs.reshape(2, 44).T, targets.reshape(2, 44).T
  out = rnn.unroll(params, rnn.SIGMOID, jax.nn.one_hot(x, 7), jnp.ones(x.shape, bool))
  logp = jax.nn.log_softmax(heads.readout(params, out.h_TxBxH))
  full = -float(jnp.sum(jnp.take_along_axis(logp, jnp.asarray(y)[..., None], axis=-1)))
  seg = natural.pad_segments(natural.text_segments(ids, 2, 5, offset=2), 2)
  np.testing.assert_allclose(_chained_train_losses(trainer, params, seg, 2), full, rtol=1e-5)


def test_summed_cost_scales_the_gradient_and_biases_stay_zero():
  ids = np.random.default_rng(1).integers(0, 5, 40)
  task = natural.text_task("toy", 5)
  seg = natural.text_segments(ids, 2, 10)
  part = natural.Segments(*(jnp.asarray(a[:1]) for a in seg))
  norms = {}
  for cost in ("mean", "sum"):
    trainer = natural.make_trainer(_config(batch_size=2, cost=cost, biases=False), task)
    state = trainer.init(jax.random.PRNGKey(0), _hp(lr=0.1))
    new, m = trainer.chunk(state, _hp(lr=0.1), part)
    norms[cost] = float(m.grad_norm[0])
    assert not np.asarray(new.params.b).any() and not np.asarray(new.params.b_out).any()
  # 10 valid steps per lane, averaged over lanes: the summed cost's gradient is 10×.
  np.testing.assert_allclose(norms["sum"], 10 * norms["mean"], rtol=1e-5)


def _fit(checkpoint_dir, on_progress=None):
  data = natural.synthetic_music(0, n_songs=(8, 3, 3))
  cols = [natural.Column("sgd", 1.0, math.inf, 0.0), natural.Column("sgd_cr", 1.0, 8.0, 0.5)]
  cfg = _config(segment_length=10, batch_size=2, chunk_size=2)
  return natural.fit(cfg, natural.music_task("toy"), data, cols, checkpoint_dir=checkpoint_dir,
                     on_progress=on_progress, events_dir=Path(checkpoint_dir) / "events")


def test_fit_resumes_mid_epoch_to_the_same_result(tmp_path):
  whole = _fit(tmp_path / "a", on_progress=lambda line: None)
  lines = []

  def interrupt(line):
    lines.append(line)
    if "epoch 2/2 chunk 2/" in line:  # in the middle of the second epoch
      raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    _fit(tmp_path / "b", on_progress=interrupt)
  assert "interrupted — saving a checkpoint at epoch 2, chunk 2" in lines[-1]
  resumed = _fit(tmp_path / "b", on_progress=lines.append)
  assert any("resumed at epoch 2" in line for line in lines)
  strip = lambda rows: [{k: v for k, v in r.items() if k != "epoch_wall_s"} for r in rows]
  assert strip(resumed.history) == strip(whole.history)
  # Each run's TensorBoard series: its epochs' scores, once each across the two sessions.
  events = runs.events.read(tmp_path / "b" / "events")
  assert events == runs.events.read(tmp_path / "a" / "events")
  for row in whole.history:
    series = events[f"algorithm={row['algorithm']},seed={row['seed']}"]
    assert (row["epoch"], pytest.approx(row["valid"])) in series["valid"]
    assert [e for e, _ in series["valid"]] == [1, 2]
  for k in whole.best_params:
    np.testing.assert_array_equal(resumed.best_params[k], whole.best_params[k])
  assert [r["best_epoch"] for r in whole.runs] == [r["best_epoch"] for r in resumed.runs]


def test_score_reproduces_the_epoch_evaluation_of_the_best_parameters(tmp_path):
  # `score` on the split fit evaluated gives the table's number for each run's best epoch.
  res = _fit(tmp_path / "a", on_progress=lambda line: None)
  data = natural.synthetic_music(0, n_songs=(8, 3, 3))
  cfg = _config(segment_length=10, batch_size=2, chunk_size=2)
  scores, steps = natural.score(cfg, natural.music_task("toy"), res.best_params, data["test"])
  assert steps == sum(len(song) for song in data["test"])
  np.testing.assert_allclose(scores, [r["test"] for r in res.runs], rtol=1e-6)
  # On another split the number is another one (the scorer reads what it is given).
  other, _ = natural.score(cfg, natural.music_task("toy"), res.best_params, data["valid"])
  np.testing.assert_allclose(other, [r["valid"] for r in res.runs], rtol=1e-6)
  assert not np.allclose(other, scores)


def test_predict_roll_matches_the_evaluated_likelihood():
  task = natural.music_task("toy", n_keys=6)
  params = _trained_params(task)
  song = _songs(seed=4, n=1)[0]
  p = natural.predict_roll(params, "sigmoid", song)
  nll = -np.sum(song * np.log(p) + (1 - song) * np.log1p(-p))
  np.testing.assert_allclose(nll, _full_nll_music(params, [song]), rtol=1e-4)


# --- the binaries, end to end ------------------------------------------------------------


@pytest.fixture(scope="module")
def music_run(tmp_path_factory):
  from experiments import polyphonic
  from experiments.configs import polyphonic as cfg

  workdir = tmp_path_factory.mktemp("music")
  res, md = polyphonic.run(cfg.get_config("test"), str(workdir))
  return workdir, res, md


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
  from experiments import char_lm
  from experiments.configs import char_lm as cfg

  workdir = tmp_path_factory.mktemp("chars")
  res, md = char_lm.run(cfg.get_config("test"), str(workdir))
  return workdir, res, md


def test_polyphonic_test_preset_end_to_end(music_run):
  from experiments import polyphonic
  from experiments.configs import polyphonic as cfg

  workdir, res, md = music_run
  assert len(res.runs) == 6 and all(r["test"] is not None for r in res.runs)
  assert "| test | ours |" in md
  for name in ("table.md", "table.csv", "runs.csv", "history.csv", "best_params.npz",
               "predictions.npz", "summary.json"):
    assert (workdir / name).exists(), name
  with np.load(workdir / "predictions.npz") as z:
    assert z["sgd_cr/0"].shape == z["real/0"].shape
  # Same workdir, same config: resumes, finds everything done.
  res2, _ = polyphonic.run(cfg.get_config("test"), str(workdir))
  assert res2.history == res.history


def test_char_lm_test_preset_end_to_end(text_run):
  workdir, res, md = text_run
  assert [r["algorithm"] for r in res.runs] == ["sgd", "sgd", "sgd_c", "sgd_c", "sgd_cr", "sgd_cr"]
  assert "bits per character" in md and (workdir / "table.csv").exists()
  samples = json.loads((workdir / "samples.json").read_text())
  assert set(samples) == {"prime", "sgd", "sgd_c", "sgd_cr"}


def test_rescore_scores_a_truncated_text_table_on_the_whole_split(tmp_path):
  # char_lm scored valid/test on their first 600 symbols; rescore reads the whole split.
  from experiments import char_lm
  from rnn_dynamics.natural import rescore
  from experiments.configs import char_lm as cfg

  config = cfg.get_config("test")
  config.max_epochs, config.seeds, config.max_eval_symbols = 1, 1, 600
  res, _ = char_lm.run(config, str(tmp_path))
  before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
  rows = rescore.rescore(tmp_path, "test")
  assert [r["algorithm"] for r in rows] == ["sgd", "sgd_c", "sgd_cr"]
  n_test = natural.synthetic_text(int(config.seed))["test"].size
  assert n_test > 600
  assert all(r["scored_steps"] == n_test - 1 for r in rows)  # the last symbol has no target
  assert [r["as_trained"] for r in rows] == [r["test"] for r in res.runs]
  # The whole split is another sample than its first half, so every score moves.
  assert all(abs(r["whole_split"] - r["as_trained"]) > 1e-4 for r in rows)
  rescore.write(tmp_path, rows, "bits per character")
  after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
  assert {k: v for k, v in after.items() if not k.startswith("rescored_")} == before
  assert "| sgd_c | 0 |" in (tmp_path / "rescored_test.md").read_text()


def test_rescore_refuses_a_folder_without_trained_parameters(tmp_path):
  from rnn_dynamics.natural import rescore
  from rnn_dynamics.errors import ConfigError

  (tmp_path / "config.json").write_text("{}")
  with pytest.raises(ConfigError, match="no best_params.npz"):
    rescore.rescore(tmp_path, "test")
  with pytest.raises(ConfigError, match="--split='dev'"):
    rescore.rescore(tmp_path, "dev")


def test_notebook_runs_on_both_workdirs(music_run, text_run, monkeypatch):
  # The jupytext percent file is plain Python: run it as a script, figures off-screen.
  pytest.importorskip("IPython")
  import runpy

  import matplotlib

  matplotlib.use("Agg")
  # One variable names both, text first: each is shown by what it is.
  monkeypatch.setenv("RNN_DYNAMICS_NATURAL", f"{text_run[0]},{music_run[0]}")
  ns = runpy.run_path(str(Path(__file__).resolve().parents[1] / "notebooks" / "natural.py"))
  assert ns["MUSIC"].path == Path(music_run[0]) and ns["TEXT"].path == Path(text_run[0])


def test_char_lm_command_line(tmp_path):
  # The real entry point: flags, a preset, and a placeholder overridden from the command line.
  import subprocess
  import sys

  proc = subprocess.run(
    [sys.executable, "-m", "experiments.char_lm", "--config=experiments/configs/char_lm.py:test",
     "--config.max_epochs=1", "--config.seeds=1", "--config.lr_sgd_c=0.02",
     "--config.target_offset=5",
     f"--workdir={tmp_path}"],
    cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "| test | ours |" in proc.stdout
  config = json.loads((tmp_path / "config.json").read_text())
  # The fifth-character task's paper columns and schedule, with the one lr overridden.
  assert config["lr_sgd_c"] == 0.02 and config["algorithms"] == ["sgd_c", "sgd_cr"]
  assert config["alpha_schedule"] == "inverse" and config["lr_sgd_cr"] == 0.05


def test_paper_numbers_only_for_the_paper_data_sets():
  from experiments.configs import char_lm as char_cfg
  from experiments.configs import polyphonic as music_cfg

  c = music_cfg.resolve(music_cfg.get_config("paper"))
  assert (c.n_hidden, c.lr, c.alpha0) == (300, 1.0, 0.5)
  m = music_cfg.get_config("paper")
  m.dataset = "musedata"
  assert (music_cfg.resolve(m).n_hidden, music_cfg.resolve(m).lr) == (400, 0.5)
  assert paper.TABLE1["nottingham"]["test"]["sgd_cr"] == 3.46
  t = char_cfg.get_config("paper")
  t.target_offset = 5
  t = char_cfg.resolve(t)
  assert t.algorithms == ("sgd_c", "sgd_cr") and t.alpha_schedule == "inverse"
  assert paper.TABLE2[5]["test"]["sgd"] is None
  m.algorithms = ("sgd, sgd_cr",)  # what `--config.algorithms=sgd,sgd_cr` gives
  assert music_cfg.resolve(m).algorithms == ("sgd", "sgd_cr")


# --- the real data, where this checkout has it ------------------------------------------

needs_music = pytest.mark.skipif(
  not (SHARED / "music" / "JSB_Chorales.mat").exists(),
  reason=f"no shared music data at {SHARED / 'music'}",
)
needs_ptb = pytest.mark.skipif(
  not (SHARED / "ptb" / "ptb.valid.txt").exists(), reason=f"no shared PTB at {SHARED / 'ptb'}"
)


@needs_music
def test_jsb_layout_and_frequency_baseline():
  from rnn_dynamics.data import load_music

  data = load_music(SHARED / "music" / "JSB_Chorales.mat")
  # The data README's sanity floor for JSB.
  assert abs(natural.frequency_baseline(data["train"], data["test"]) - 11.06) < 0.01
  seg = natural.music_segments(data["train"], 16, 200)
  assert seg.mask.sum() == 13_807 and seg.reset.sum() >= len(data["train"])


@needs_music
def test_polyphonic_one_epoch_on_jsb(tmp_path):
  from experiments import polyphonic
  from experiments.configs import polyphonic as cfg

  c = cfg.get_config("test")
  c.dataset, c.data_path = "jsb", str(SHARED / "music")
  c.seeds, c.max_epochs, c.segment_length, c.batch_size, c.chunk_size = 1, 1, 100, 32, 4
  c.eval_batch_size = 64
  res, _ = polyphonic.run(c, str(tmp_path))
  # One epoch moves every column well below the 88 keys' log 2 ≈ 61 nats of an untrained net.
  assert all(r["test"] < 30 for r in res.runs)


@needs_ptb
def test_ptb_fifth_character_segments():
  from rnn_dynamics.data import load_char_corpus

  corpus = load_char_corpus(SHARED / "ptb")
  assert corpus.vocab_size == 50 and corpus.valid.size == 393_042
  seg = natural.text_segments(corpus.valid, 16, 200, offset=5)
  assert seg.mask.sum() == corpus.valid.size - 5
  lane0 = seg.targets[:, :, 0].reshape(-1)[:100]
  np.testing.assert_array_equal(lane0, corpus.valid[5:105])


def test_sigterm_finishes_the_segment_batch_checkpoints_exits_130_and_resumes_identically(
  tmp_path, interrupted_run, same_results
):
  """The stop path of the natural trainer, from the command line: SIGTERM once training
  runs, then the same command again; the results equal an uninterrupted run's."""
  import re
  import signal
  import subprocess
  import sys

  preset = "--config=experiments/configs/polyphonic.py:test"
  args = ["experiments.polyphonic", preset]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  whole = subprocess.Popen([sys.executable, "-m", *args, f"--workdir={tmp_path / 'whole'}"],
                           cwd=Path(__file__).resolve().parents[1], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  # A progress line per segment batch (`progress_every_s = 0`): the loop is running.
  run = interrupted_run(args + [f"--workdir={tmp_path / 'resumed'}"],
                        ready="epoch 1/2 chunk 1/", sig=signal.SIGTERM)
  assert run.code == 130, run.first[-3000:]
  assert "signal 15: stopping after the current chunk" in run.first
  assert re.search(r"interrupted — saving a checkpoint at epoch \d, chunk \d+", run.first), run.first[-3000:]
  assert "interrupted; run the same command again to resume from the checkpoint" in run.first
  assert run.second.returncode == 0, run.second.stderr[-3000:]
  assert re.search(r"resumed at epoch \d, chunk \d+", run.second.stderr), run.second.stderr[-3000:]
  _, whole_err = whole.communicate(timeout=600)
  assert whole.returncode == 0, whole_err[-3000:]
  same_results(tmp_path / "whole", tmp_path / "resumed")
