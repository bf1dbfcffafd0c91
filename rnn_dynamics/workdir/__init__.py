"""An experiment's workdir: resolved config, finished groups, checkpoints, tables, figures.

Layout (every file written atomically):

    <workdir>/config.json                    the resolved config (checked on resume)
    <workdir>/checkpoints/<group>/           Orbax checkpoints of groups in progress
    <workdir>/progress/<group>.json          their runs as of the last checkpoint
    <workdir>/events/<group>/<run>/          TensorBoard event files (live; never published)
    <workdir>/groups/<group>/group.json      what the group runs (`GroupSpec`), from its start
    <workdir>/groups/<group>/results.json    one row per run; its presence marks the group done
    <workdir>/groups/<group>/traces.npz      per-chunk metrics, `[runs, chunks]` each
    <workdir>/groups/<group>/params.npz      final parameters, `[runs, ...]` each
    <workdir>/groups/<group>/...             anything else an experiment keeps per group
    <workdir>/results.{csv,json}             all finished rows, rewritten after each group
    <workdir>/provenance.json                the code and layout of each writing process

A finished group is never recomputed; a group in progress resumes from its checkpoint.
Deleting a group's folder makes the next run recompute that group (and only it).

`config.json` is the binary's config as given; what a group runs where it differs (a
length, a budget, a task variant) is the group's own `GroupSpec`, in `group.json`, written
when the group starts and read back with its results. `Workdir.group(name, spec, train)`
is the one load-or-train step every sweep binary takes (through `sweep.run_in_workdir`):
it refuses a group whose saved spec differs from the one asked for (a label added since
matches at its former value), records the spec, and loads the group if it is finished,
else trains it. A group written before group files existed has none: it opens, resumes
or loads as before, and gets its spec then.

`Workdir(path, config)` is the writer's view: it records the config and refuses a
different one, and it makes its process the workdir's only writer (a lock on
`<workdir>/.lock`, held until the process exits), so a second run launched on the same
folder by mistake is refused instead of writing over the first one's checkpoints.
`Workdir.open(path)` is every reader's (notebooks, summaries, the analysis of a trained
model): it never writes, reads the config that is there, and raises a `UserError` naming
the file when the folder is not a workdir or a file is damaged.

`publish(path, dest)` copies a finished workdir's result files (no
checkpoints, progress or event files, lock or SVG copies of figures) to `dest`, e.g. under
`docs/results/`, where every reader above opens it as it opens the workdir. With
`partial=True` it copies a workdir still training with its groups' latest checkpoints, so
that the copy, put back as a workdir anywhere, resumes where the run stopped. With
`leave_out` it leaves out files no reader needs (e.g. a grid's weights) and lists them in
the copy's `left_out.json`; a reader asking the copy for one is told it was left out.

The pieces, one module each:

* `config`: `config.json`, and which configs may resume it (fields added or removed since,
  fields that only choose groups);
* `lock`: the one writer per workdir;
* `groups`: what a group runs (`GroupSpec`) and its folder (`GroupFolder`);
* `training`: the run state of groups still training (checkpoints, progress, events);
* `published`: the published copy, whole or partial (`publish`, `partial.json`);
* `copies`: what a published copy records about itself (`partial.json`, `left_out.json`);
* `reader`: the workdir as every reader sees it (`Reader`, `Workdir.open`);
* `notebooks`: which workdirs a notebook opens (`RNN_DYNAMICS_<NOTEBOOK>`, else its defaults);
* `writer`: the workdir as its writer sees it (`Workdir`, a `Reader` that writes).
"""

from rnn_dynamics.workdir.config import (
  CHOOSES_GROUPS,
  FORMER_VALUES,
  REMOVED_FIELDS,
  WorkdirConfigMismatch,
)
from rnn_dynamics.workdir.groups import (
  GROUP_FILE,
  Group,
  GroupSpec,
  GroupSpecMismatch,
  group_config,
)
from rnn_dynamics.workdir.lock import WorkdirBusyError
from rnn_dynamics.workdir.copies import LEFT_OUT_FILE, LeftOutError
from rnn_dynamics.workdir.published import PARTIAL_FILE, publish
from rnn_dynamics.workdir.notebooks import locate, locate_all, named_workdirs
from rnn_dynamics.workdir.reader import Reader
from rnn_dynamics.workdir.writer import ReadOnlyWorkdirError, Workdir, make_folder

__all__ = [
  "CHOOSES_GROUPS",
  "FORMER_VALUES",
  "GROUP_FILE",
  "Group",
  "GroupSpec",
  "GroupSpecMismatch",
  "LEFT_OUT_FILE",
  "LeftOutError",
  "PARTIAL_FILE",
  "REMOVED_FIELDS",
  "Reader",
  "locate",
  "locate_all",
  "named_workdirs",
  "ReadOnlyWorkdirError",
  "Workdir",
  "WorkdirBusyError",
  "WorkdirConfigMismatch",
  "group_config",
  "make_folder",
  "publish",
]
