"""The sweep's storage hands each queued trial to one caller only (CI failure: two threads of
``sweep run --gpus 0,1`` ran the same grid point on SQLite and the second could not report it)."""

import collections
import threading
import warnings

import pytest

optuna = pytest.importorskip("optuna", reason="the sweep extra")

from boltzmatch.sweep.storage import QueueSafeRDBStorage, open_storage  # noqa: E402


def _pops(storage, threads=8, queued=200):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=storage)
    for i in range(queued):
        study.enqueue_trial({"x": i})
    taken = collections.Counter()
    barrier = threading.Barrier(threads)

    def work():
        barrier.wait()
        while (trial_id := study._pop_waiting_trial_id()) is not None:
            taken[trial_id] += 1

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return taken


def test_threads_popping_the_queue_take_every_trial_exactly_once(tmp_path):
    taken = _pops(open_storage(f"sqlite:///{tmp_path / 'study.db'}", 5, 20))
    assert len(taken) == 200 and set(taken.values()) == {1}


def test_a_taken_or_finished_trial_is_not_taken_again(tmp_path):
    storage = QueueSafeRDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(storage=storage)
    study.enqueue_trial({"x": 1})
    trial_id = study.trials[0]._trial_id
    assert storage.set_trial_state_values(trial_id, optuna.trial.TrialState.RUNNING)
    assert study.trials[0].datetime_start is not None  # a started trial has its start time
    assert not storage.set_trial_state_values(trial_id, optuna.trial.TrialState.RUNNING)
    storage.set_trial_state_values(trial_id, optuna.trial.TrialState.COMPLETE, [1.0])
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_state_values(trial_id, optuna.trial.TrialState.RUNNING)


def test_optunas_own_storage_shows_the_race_this_guards_against(tmp_path):
    """Without the guard the same stress takes trials twice; if a future Optuna fixes this, the guard
    can go (this test then fails and says so). Up to three tries, stopping at the first that shows it (each
    takes about 11 s on 2 cores)."""
    counts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(3):
            counts.append(max(_pops(optuna.storages.RDBStorage(f"sqlite:///{tmp_path / f's{k}.db'}")).values()))
            if counts[-1] > 1:
                break
    assert max(counts) > 1, "Optuna's RDBStorage no longer pops a queued trial twice: QueueSafeRDBStorage may go"
