"""The config rules, declared in `experiments/configs` and checked by
`experiments/validation.py`, in process (the binaries' side of it, exit codes and stderr,
is `test_bad_input.py`)."""

from __future__ import annotations

import importlib
import re

import ml_collections
import pytest

from experiments import validation
from experiments.configs import fields
from rnn_dynamics.errors import ConfigError

PRESETS = {
  "success_rate": ("paper", "long", "cpu", "test", "flossing_cpu", "flossing_test"),
  "generalization": ("paper", "long", "cpu", "test"),
  "generalization_continued": ("long", "cpu", "test"),
  "pathological": ("paper", "long", "cpu", "test"),
  "methods": ("long", "cpu", "test"),
  "char_lm": ("paper", "cpu", "test"),
  "polyphonic": ("paper", "cpu", "test"),
  "threshold_grid": ("paper", "cpu", "test"),
  "attractors": ("default", "test"),
  "lyapunov": ("full", "cpu", "test"),
  "bifurcation": ("default", "test"),
  "cliff": ("default", "test"),
  "mechanics": ("default", "test"),
}


def _config(binary: str, preset: str = "test") -> ml_collections.ConfigDict:
  return importlib.import_module(f"experiments.configs.{binary}").get_config(preset)


def test_every_binary_with_a_config_has_a_schema():
  assert set(validation.BINARIES) == set(PRESETS)


@pytest.mark.parametrize(
  "binary,preset", [(b, p) for b, presets in PRESETS.items() for p in presets]
)
def test_every_preset_passes_and_every_field_has_a_rule(binary, preset):
  config = _config(binary, preset)
  # Data sets read from files (PTB; polyphonic's default, Nottingham, in paper and cpu)
  # need a data_path; any existing folder passes the check.
  if config.get("dataset") in ("ptb", "nottingham"):
    config.data_path = "."
  validation.validate(config, binary)
  assert set(config) <= set(validation.rules(binary)), "add the new fields' rules"


def test_comma_lists_of_numbers_become_numbers():
  # `--config.thresholds=0.1,inf` arrives as strings (`inf` is no Python literal): read
  # as numbers, the infinite entry is named by the finite-threshold rule.
  config = _config("threshold_grid")
  config.thresholds = ("0.1", "inf")
  with pytest.raises(ConfigError, match="entry inf must be a finite number"):
    validation.validate(config, "threshold_grid")
  config.thresholds = ("0.1,2",)
  assert validation.validate(config, "threshold_grid").thresholds == (0.1, 2)


def test_comma_lists_of_names_are_split():
  config = _config("success_rate")
  config.inits = ("basic_tanh,smart_tanh",)  # what `--config.inits=a,b` arrives as
  config.algorithms = ("sgd_c", " sgd_cr")
  out = validation.validate(config, "success_rate")
  assert out.inits == ("basic_tanh", "smart_tanh")
  assert out.algorithms == ("sgd_c", "sgd_cr")
  assert config.inits == ("basic_tanh,smart_tanh",)  # the caller's config is left alone


@pytest.mark.parametrize(
  "field,value,says",
  [
    ("momentum", 1.0, "--config.momentum=1.0: must be < 1"),
    ("omega_form", "eq9", "must be one of original, paper"),
    ("success_error", 0.0, "must be > 0"),
    ("lengths", (10, 10), "must not repeat an entry"),
    ("inits", (), "must have at least 1 entry"),
    ("seed", -1, "must be ≥ 0"),
  ],
)
def test_field_rules(field, value, says):
  config = _config("success_rate")
  config[field] = value
  with pytest.raises(ConfigError, match=says):
    validation.validate(config, "success_rate")


def test_infinite_clip_is_no_clipping_not_an_error():
  config = _config("success_rate")
  config.clip = float("inf")
  validation.validate(config, "success_rate")


def test_relations_wait_for_the_fields_own_checks():
  # chunk_size 0 would make the multiple-of relation divide by zero.
  config = _config("success_rate")
  config.chunk_size = 0
  with pytest.raises(ConfigError, match="--config.chunk_size=0: must be ≥ 1"):
    validation.validate(config, "success_rate")


@pytest.mark.parametrize("mode", ["original", "always", "never"])
def test_nonfinite_guard_takes_the_named_modes(mode):
  config = _config("success_rate")
  config.nonfinite_guard = mode
  validation.validate(config, "success_rate")


def test_nonfinite_guard_refuses_other_values():
  config = _config("success_rate")
  config.nonfinite_guard = "sometimes"
  with pytest.raises(ConfigError, match="nonfinite_guard=sometimes"):
    validation.validate(config, "success_rate")


def test_fields_a_config_lacks_are_skipped_and_new_ones_checked():
  config = _config("success_rate")
  with config.unlocked():
    del config["nonfinite_guard"]
    del config["zero_mistake_stop"]
  validation.validate(config, "success_rate")  # no rule fires for a missing field
  config.length_buckets = 0
  with pytest.raises(ConfigError, match="--config.length_buckets=0: must be ≥ 1"):
    validation.validate(config, "success_rate")
  config.length_buckets = 2
  with config.unlocked():
    config.zero_mistake_stop = "yes"
  with pytest.raises(ConfigError, match="zero_mistake_stop=yes: must be true or false"):
    validation.validate(config, "success_rate")
  with config.ignore_type():
    config.zero_mistake_stop = True
  config.scan_unroll = 0
  with pytest.raises(ConfigError, match="--config.scan_unroll=0: must be ≥ 1"):
    validation.validate(config, "success_rate")


def test_placeholders_left_none_are_not_checked_but_given_values_are():
  config = _config("pathological")
  assert config.lr is None
  validation.validate(config, "pathological")
  config.lr = -1.0
  with pytest.raises(ConfigError, match="--config.lr=-1.0"):
    validation.validate(config, "pathological")


def test_pathological_budget_of_the_task_must_be_whole_chunks():
  config = _config("pathological", "cpu")  # max_updates None: budgets[task] is the budget
  config.budgets.addition = 1234
  with pytest.raises(ConfigError, match="budgets.addition=1234 must be a multiple"):
    validation.validate(config, "pathological")


def test_memorization_gaps_are_checked_against_memorization_not_train_lengths():
  config = _config("pathological")
  config.task = "memorization"
  config.train_lengths = (1, 2)  # unused by memorization
  validation.validate(config, "pathological")


def test_a_declared_rule_is_recorded_beside_the_config_not_in_it():
  def get_config(preset: str = "default") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    fields.declare(c, "warmup", 0, validation.COUNT)
    if preset == "long":
      c.warmup = 100  # an override, not a declaration
    return c

  assert validation.declared(get_config) == {"warmup": validation.COUNT}
  assert get_config("long").to_json() == '{"warmup": 100}'  # config.json: values only
  assert validation.declared(lambda: ml_collections.ConfigDict()) == {}  # nothing left over


@pytest.mark.parametrize(
  "target,says",
  [
    (0.0, "--config.target=0.0: must be > 0"),
    (1e-6, None),
    (0.7, None),
    (1 - 1e-6, None),
    (1.0, "--config.target=1.0: must be < 1"),
  ],
)
def test_cliff_target_is_a_value_the_sigmoid_takes(target, says):
  # The cliff's cost is (σ(x_T) − target)², and σ takes every value in the open (0, 1)
  # and no other: 0 and 1 are refused (the cost could never reach 0), values just inside
  # them pass. A bound moved either way, or made inclusive, fails one of these.
  config = _config("cliff")
  config.target = target
  if says is None:
    assert validation.validate(config, "cliff").target == target
  else:
    with pytest.raises(ConfigError, match=re.escape(says)):
      validation.validate(config, "cliff")
