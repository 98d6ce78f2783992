"""The sweep's Optuna storage: an ``RDBStorage`` whose queue of waiting trials hands each trial out once.

Optuna pops a waiting trial (a grid point, a retried trial) by reading its state and then writing
RUNNING. SQLite ignores ``SELECT … FOR UPDATE``, so two threads of one agent (``--jobs 2``) or two agents
on one ``study.db`` could both read WAITING and both run the same trial; the second then failed with
"Cannot tell a COMPLETE trial" (8 threads popping 200 queued trials took 49 twice). Here the pop is a
single conditional ``UPDATE … WHERE state = WAITING``: the database lets exactly one caller change the row.
"""

from __future__ import annotations

from datetime import datetime

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState


class QueueSafeRDBStorage(RDBStorage):
    """``RDBStorage`` whose WAITING → RUNNING change is one atomic statement on every database."""

    def set_trial_state_values(self, trial_id: int, state: TrialState, values=None) -> bool:
        if state != TrialState.RUNNING or values is not None:
            return super().set_trial_state_values(trial_id, state, values)
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        with _create_scoped_session(self.scoped_session) as session:
            changed = (session.query(models.TrialModel)
                       .filter(models.TrialModel.trial_id == trial_id,
                               models.TrialModel.state == TrialState.WAITING)
                       .update({models.TrialModel.state: TrialState.RUNNING}, synchronize_session=False))
            if changed == 1:  # the start time through the model (its column's name and time zone vary)
                models.TrialModel.find_or_raise_by_id(trial_id, session).datetime_start = datetime.now()
        if changed == 1:
            return True
        # someone else took it: False while it runs, UpdateFinishedTrialError once it has finished
        return super().set_trial_state_values(trial_id, state)


def open_storage(url: str, heartbeat_s: int, grace_s: int) -> QueueSafeRDBStorage:
    """The storage at ``url`` with heartbeats every ``heartbeat_s`` s; a trial silent for ``grace_s`` s is
    failed and its parameters re-enqueued (at most three times)."""
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return QueueSafeRDBStorage(
        url, heartbeat_interval=heartbeat_s, grace_period=grace_s,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
        engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None,
    )
