"""Errors a user can fix: the binaries report them as one line, without a traceback.

Anything else that escapes a binary is a bug and keeps its traceback. `exit_code` follows
the Unix convention: 2 for a bad command line or config (a usage error), 1 for other
anticipated failures (a damaged file in a workdir).
"""

from __future__ import annotations

__all__ = ["ConfigError", "CorruptFileError", "UserError"]


class UserError(Exception):
  """An anticipated failure whose message says what is wrong and how to fix it."""

  exit_code = 1


class ConfigError(UserError, ValueError):
  """A config field, flag or workdir that cannot be used as given (a usage error)."""

  exit_code = 2


class CorruptFileError(UserError):
  """A file a run wrote earlier cannot be read back.

  Attributes:
    path: the file.
  """

  def __init__(self, path, reason: str, remedy: str):
    super().__init__(f"{path} is damaged ({reason}); {remedy}")
    self.path = path
