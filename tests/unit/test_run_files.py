"""The run loop writes a run's files at a pace that keeps them a small share of its time, and the files on disk
always agree: every row of metrics.csv has a checkpoint, model.pt holds the last improved epoch, and the
epochs whose files waited are written when the run ends, also when it is stopped between epochs."""

from __future__ import annotations

import pytest
import torch

from boltzmatch.runs import run_dir as rd
from boltzmatch.training import run_files
from boltzmatch.training.loop import Step, read_checkpoint, run_loop


class Counter(Step):
    """Adds 1 to a weight every epoch; the epochs in ``improving`` improve. ``fail_at`` raises inside that
    epoch (after changing the weight, as a real step would); ``stop_after`` raises KeyboardInterrupt between
    epochs (where Ctrl-C, SIGTERM or the app's Stop land at the progress bar's update)."""

    def __init__(self, improving=(), fail_at=None, stop_after=None):
        self.w = torch.zeros(2)
        self.improving, self.fail_at, self.stop_after = set(improving), fail_at, stop_after

    def run(self, index, state):
        self.w += 1
        if index == self.fail_at:
            raise RuntimeError("inside the epoch")
        return {"loss": float(self.w[0])}

    def improved(self, row, state):
        return row["epoch"] - 1 in self.improving

    def stop(self, row, state):
        if row["epoch"] - 1 == self.stop_after:
            raise KeyboardInterrupt
        return False

    def checkpoint(self):
        return {"w": self.w}

    def restore(self, checkpoint):
        self.w = checkpoint["w"].clone()

    def model_state(self):
        return {"w": self.w}


@pytest.fixture
def saves(monkeypatch):
    """The files the loop saves with torch, in order; writes may wait as long as they like (share 1e-9)."""
    names = []
    real = rd.save_torch

    def counted(obj, path):
        names.append(path.name)
        real(obj, path)

    monkeypatch.setattr(run_files.rd, "save_torch", counted)
    monkeypatch.setattr(run_files, "WRITE_SHARE", 1e-9)
    return names


def _agree(out, epochs: int) -> None:
    checkpoint = read_checkpoint(out)
    assert checkpoint["state"]["epoch"] == epochs == len(rd.read_metrics(out))
    assert float(checkpoint["w"][0]) == epochs


def test_short_epochs_wait_and_the_last_is_written(tmp_path, saves):
    step = Counter(improving=(0, 3))
    run_loop(step, tmp_path, epochs=8, progress=False)
    # the first epoch at once; the other seven together at the end, model.pt first
    assert saves == [rd.MODEL, rd.CHECKPOINT, rd.MODEL, rd.CHECKPOINT]
    _agree(tmp_path, 8)
    # model.pt holds epoch 4's weights (index 3), copied when its write waited, not the live ones of epoch 8
    assert float(torch.load(tmp_path / rd.MODEL)["w"][0]) == 4


def test_epochs_longer_than_their_writes_are_written_every_epoch(tmp_path, monkeypatch):
    written = []
    real = run_files.RunFiles.write
    monkeypatch.setattr(run_files.RunFiles, "write", lambda self, state: (written.append(state["epoch"]),
                                                                          real(self, state)))
    monkeypatch.setattr(run_files, "WRITE_SHARE", 1e9)
    run_loop(Counter(), tmp_path, epochs=4, progress=False)
    assert written == [1, 2, 3, 4]


def test_a_stop_between_epochs_writes_the_epochs_that_waited(tmp_path, saves):
    with pytest.raises(KeyboardInterrupt):
        run_loop(Counter(improving=(1,), stop_after=4), tmp_path, epochs=10, progress=False)
    _agree(tmp_path, 5)
    assert float(torch.load(tmp_path / rd.MODEL)["w"][0]) == 2
    resumed = Counter()
    state = run_loop(resumed, tmp_path, epochs=10, resume=True, progress=False)
    assert state["epoch"] == 10 and float(resumed.w[0]) == 10
    _agree(tmp_path, 10)


def test_an_error_inside_an_epoch_leaves_the_last_written_epoch(tmp_path, saves):
    with pytest.raises(RuntimeError, match="inside the epoch"):
        run_loop(Counter(fail_at=5), tmp_path, epochs=10, progress=False)
    # epochs 2-5 waited and the step is partway through epoch 6: what is on disk is epoch 1, consistent
    _agree(tmp_path, 1)


def test_a_failed_write_is_not_retried_and_the_files_before_it_stay(tmp_path, monkeypatch):
    """A write that fails (disk full, a kill during it) is not retried at the end, and the files of the
    epoch before it are intact."""
    real = rd.save_torch
    calls = []

    def failing(obj, path):
        calls.append(path.name)
        if len(calls) == 3:
            raise OSError("No space left on device")
        real(obj, path)

    monkeypatch.setattr(run_files.rd, "save_torch", failing)
    monkeypatch.setattr(run_files, "WRITE_SHARE", 1e9)  # every epoch
    with pytest.raises(OSError, match="No space"):
        run_loop(Counter(), tmp_path, epochs=5, progress=False)
    assert calls == [rd.CHECKPOINT] * 3  # epochs 1, 2 and the failed 3: no retry when the loop ends
    _agree(tmp_path, 2)
