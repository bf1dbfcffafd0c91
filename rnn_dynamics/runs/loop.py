"""The one host loop: a trainer is a stepper; `drive` polls, checkpoints, reports, stops.

Both trainers (the synthetic sweep's groups, `rnn_dynamics.synthetic.sweep`, and the natural tasks'
epochs, `rnn_dynamics.natural.fit`) are steppers: objects that take one step at a time
(a compiled chunk and what follows it on the host) and can save themselves. `drive`
owns everything around the steps, so it is written once:

* the stop request (`runs.stop`): checked before every step; on a stop (or a
  `KeyboardInterrupt` raised while no step is under way) the stepper is saved, so a
  checkpoint always holds whole steps, and the interrupt is re-raised;
* an interrupt *during* a step (a second Ctrl-C) saves nothing: the step's inputs were
  donated to it, so the state on hand is neither before nor after it; a restart resumes
  from the last checkpoint;
* checkpoint cadence: every `checkpoint_every_s` seconds (0: after every step; None:
  only where a step asks for it, e.g. an epoch's end), and whenever a step asks for it;
* progress lines every `progress_every_s` seconds, with the rate of the stepper's work
  units (`runs.Progress`), and always where a step asks for one (e.g. the last);
* live monitoring: each step's per-run scalars go to an `EventLog` (TensorBoard event
  files, `runs.events`), flushed at every checkpoint and closed at the end.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Mapping, Protocol

import numpy as np

from rnn_dynamics.runs import stop
from rnn_dynamics.runs.events import EventLog
from rnn_dynamics.runs.progress import Every, Progress

__all__ = ["Step", "Stepper", "drive"]


@dataclasses.dataclass(frozen=True)
class Step:
  """What one step did, as far as the loop cares.

  Attributes:
    units: work done, in the stepper's own unit (the progress rate counts these).
    save: checkpoint now, whatever the cadence (the cadence then starts again).
    report: say a progress line now, whatever the period.
    new_phase: measure the progress rate afresh from here (e.g. a new epoch).
    scalars: per-run values to monitor (tag → `[runs]`; NaN: nothing for that run).
    at: `[runs]` the step (x-axis) of each run's scalars, e.g. its updates done.
  """

  units: float = 1
  save: bool = False
  report: bool = False
  new_phase: bool = False
  scalars: Mapping[str, np.ndarray] | None = None
  at: np.ndarray | None = None


class Stepper(Protocol):
  """A trainer as `drive` sees it."""

  name: str

  def done(self) -> bool:
    """Whether there is nothing left to step."""

  def step(self) -> Step:
    """One step (a compiled chunk and its host work); all-or-nothing for `save`."""

  def save(self) -> None:
    """Checkpoints the state as of the last whole step (a no-op when already saved)."""

  def position(self) -> str:
    """Where the stepper is, for messages (e.g. 'chunk 12', 'epoch 3, chunk 40')."""

  def progress_line(self, progress: Progress, now: float) -> str:
    """The progress line (its rate and ETA from `progress`)."""


def drive(
  stepper: Stepper,
  *,
  checkpoint_every_s: float | None,
  progress_every_s: float,
  say: Callable[[str], None],
  events: EventLog | None = None,
) -> None:
  """Steps `stepper` until it is done (see the module docstring); `events`, when given,
  receives every step's scalars and is closed when the loop ends, however it ends.

  Raises:
    KeyboardInterrupt: on a stop request or an interrupt, after saving what is whole.
  """
  progress = Progress(progress_every_s, say)
  checkpoints = None if checkpoint_every_s is None else Every(checkpoint_every_s)
  in_flight = False
  with stop.polling():
    try:
      while not stepper.done():
        stop.check()
        in_flight = True
        step = stepper.step()
        in_flight = False
        if events is not None and step.scalars:
          events.write(step.at, step.scalars)
        progress.advance(step.units)
        now = time.time()
        if step.units or step.report:  # a step of no work (an evaluation) has no line
          progress.report(lambda: stepper.progress_line(progress, now), now, force=step.report)
        # An asked-for save is due whatever the period, and starts the period again.
        due = step.save if checkpoints is None else checkpoints.due(now, force=step.save)
        if due:
          stepper.save()
          if events is not None:
            events.flush()
        if step.new_phase:
          progress.restart()
    except KeyboardInterrupt:
      if in_flight:
        say(f"{stepper.name}: interrupted mid-chunk — a restart resumes from the last checkpoint")
      else:
        say(
          f"{stepper.name}: interrupted — saving a checkpoint at {stepper.position()} "
          "before exiting"
        )
        stepper.save()
      raise
    finally:
      if events is not None:
        events.close()
