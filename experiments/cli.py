"""How every binary reads its flags and reports what a user got wrong.

A bad flag, config field or workdir ends the binary with one line on stderr,
`<binary>: error: <what is wrong>`, and exit code 2 (a usage error); other anticipated
failures (`rnn_dynamics.errors.UserError`, e.g. a damaged results file) with one line and
exit code 1. Anything else is a bug and keeps its traceback. `RNN_DYNAMICS_TRACEBACK=1`
in the environment shows the traceback of the anticipated errors too.

Every binary stops the same way (`rnn_dynamics.runs.stop`): the first Ctrl-C or SIGTERM
lets a running trainer finish its chunk (or segment batch) and checkpoint; the binary then
warns "interrupted; run the same command again to resume from the checkpoint" and exits
with code 130 (128 + SIGINT, the shell's convention). A second signal stops at once.

Flag errors need catching in two places: absl parses `--config=...` when the flags are
parsed, but `config_flags` loads the *default* config file, and applies the
`--config.<field>` overrides to it, already when the flag is defined.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from absl import app, flags, logging
from ml_collections import config_flags

from experiments import runtime
from rnn_dynamics.errors import UserError
from rnn_dynamics.runs import stop

__all__ = [
  "INTERRUPTED",
  "TRACEBACK_ENV",
  "define_config",
  "define_workdir",
  "require_workdir",
  "run",
]

TRACEBACK_ENV = "RNN_DYNAMICS_TRACEBACK"
_USAGE = 2
INTERRUPTED = 130  # the exit code of a binary stopped by a signal (128 + SIGINT)


def _fail(message: str, code: int) -> NoReturn:
  # Messages may carry a config file's traceback or several lines; the user gets one.
  line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
  print(f"{Path(sys.argv[0]).stem}: error: {line}", file=sys.stderr)
  sys.exit(code)


def _flag_message(error: BaseException) -> str:
  """One line out of a flag error, which for a config file that failed to load embeds
  the traceback of `get_config` (e.g. an unknown preset's ValueError)."""
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  if isinstance(error, (AttributeError, KeyError)):
    # An override of a field the config does not have; the name comes quoted, twice.
    name = lines[0].strip("\"'") if lines else "?"
    hint = " ".join(lines[1:])
    return f"the config has no field {name!r}" + (f" ({hint})" if hint else "")
  if len(lines) > 1 and lines[1].startswith("Traceback"):
    head = lines[0].replace("Error whilst parsing config file:", "").strip()
    cause = re.sub(r"^[\w.]+(Error|Exception): ", "", lines[-1])
    return f"{head} {cause}"
  return " ".join(lines)


def _traceback_wanted() -> bool:
  return os.environ.get(TRACEBACK_ENV, "") not in ("", "0")


@contextlib.contextmanager
def _flag_errors() -> Iterator[None]:
  try:
    yield
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    if _traceback_wanted():
      raise
    _fail(_flag_message(e), _USAGE)


def define_config(default: str) -> flags.FlagHolder:
  """The `--config` flag (a config file, preset after ':') with `--config.<field>`
  overrides; `default` is e.g. `"experiments/configs/success_rate.py:cpu"`."""
  with _flag_errors():
    return config_flags.DEFINE_config_file(
      "config", default, "Experiment config (preset after ':')."
    )


def define_workdir(what: str = "results, checkpoints and figures") -> flags.FlagHolder:
  """The `--workdir` flag: the folder an experiment writes to (and resumes from)."""
  return flags.DEFINE_string("workdir", None, f"Folder for {what}.")


def require_workdir(argv: list[str], workdir: flags.FlagHolder, example: str) -> str:
  """The `--workdir` a binary's `main` was given; a usage error if there is none (the
  message suggests `--workdir=<example>`) or if arguments other than flags are left."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not workdir.value:
    raise app.UsageError(f"--workdir is required, e.g. --workdir={example}")
  return workdir.value


def _parse_flags(argv: list[str]) -> list[str]:
  with _flag_errors():
    return flags.FLAGS(argv)


def _reporting(main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
  def wrapped(argv: list[str]) -> None:
    stop.install_handlers()
    try:
      main(argv)
    except KeyboardInterrupt:
      logging.warning("interrupted; run the same command again to resume from the checkpoint")
      sys.exit(INTERRUPTED)
    except (UserError, app.UsageError) as e:
      if _traceback_wanted():
        raise
      _fail(str(e), e.exit_code if isinstance(e, UserError) else _USAGE)

  return wrapped


def run(main: Callable[[list[str]], None]) -> NoReturn:
  """`absl.app.run(main)`, with flag, config and workdir errors reported as above, and
  the stop path's signal handlers installed (an interrupt exits with `INTERRUPTED`)."""
  runtime.setup()  # devices, compilation cache, jax.distributed: before any computation
  app.run(_reporting(main), flags_parser=_parse_flags)
