"""How trials are handed out and how they end when an agent stops.

- **A grid is a queue.** Optuna's GridSampler lets each agent pick an unvisited point at random from its
  own seed: two agents on one grid ran some points twice and skipped others (issue 42). Here the sweep
  that creates the study enqueues every grid point once, in grid order, as a WAITING trial; agents pop
  them (a popped trial turns RUNNING in one storage transaction, so no two agents get the same one).
  A trial an agent starts when the queue is already empty has no point: it is marked ``surplus`` and
  ends at once without running anything.
- **An agent stopped by SIGTERM or Ctrl-C** (the CLI turns SIGTERM into KeyboardInterrupt) kills its
  trial process and enqueues that trial's parameters again before the trial is recorded as failed
  (``interrupted``), so another agent (or the resumed sweep) runs it; an agent killed by SIGKILL is
  found by its stale heartbeat and its trial re-enqueued by Optuna's
  ``RetryHeartbeatStaleTrialCallback``.
- **Trial processes die with their agent** (Linux ``PR_SET_PDEATHSIG``): a SIGKILLed agent left its
  training running to the end, orphaned.

Interrupted and surplus trials are failed trials in the study but no failures of the sweep: the counts
and the report leave them out (:func:`counts_as_failure`).
"""

from __future__ import annotations

import ctypes
import itertools
import signal
import sys
from typing import Any

from .config import SweepConfig

GRID_QUEUED = "grid_queued"  # study user attribute: every grid point has been enqueued


def grid_queue_sampler(seed: int):
    """The sampler of a grid sweep: every trial's values come from the queue (fixed parameters); the
    random draws underneath are never used for a queued trial."""
    import optuna

    class GridQueueSampler(optuna.samplers.RandomSampler):
        grid_queue = True

    return GridQueueSampler(seed=seed)


def grid_points(sweep: SweepConfig) -> list[dict[str, Any]]:
    """Every grid point as the parameters Optuna records (constants are no Optuna parameters)."""
    space = {name: values for name, values in sweep.grid_space().items()}
    names = list(space)
    return [dict(zip(names, combination)) for combination in itertools.product(*space.values())]


def queue_grid(study, sweep: SweepConfig) -> None:
    """Enqueue each grid point once (idempotent: the study remembers it did)."""
    if study.user_attrs.get(GRID_QUEUED):
        return
    constants = {p.name for p in sweep.parameters if p.distribution == "constant"}
    for index, point in enumerate(grid_points(sweep)):
        study.enqueue_trial({k: v for k, v in point.items() if k not in constants},
                            user_attrs={"grid_point": index}, skip_if_exists=False)
    study.set_user_attr(GRID_QUEUED, True)


def is_surplus(trial, sweep: SweepConfig) -> bool:
    """A grid trial that popped no queued point (the queue ran dry between the check and the ask)."""
    return sweep.method == "grid" and "grid_point" not in trial.user_attrs


def requeue(trial) -> None:
    """Enqueue ``trial``'s parameters again (it is being interrupted) and mark it ``interrupted``."""
    trial.set_user_attr("interrupted", True)
    attrs = {k: v for k, v in trial.user_attrs.items() if k == "grid_point"}
    trial.study.enqueue_trial(dict(trial.params), user_attrs={**attrs, "retry_of": trial.number})


def counts_as_failure(trial) -> bool:
    return not (trial.user_attrs.get("interrupted") or trial.user_attrs.get("surplus"))


def die_with_parent() -> None:
    """``preexec_fn`` of a trial process: SIGKILL it when the agent that started it dies (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
