"""What the run loop writes into a run directory after its epochs: ``model.pt``, ``checkpoint.pt``,
``metrics.csv`` and the TensorBoard mirror, in that order, at a pace that keeps them a small share of the
run's time.

Writing them takes a fixed time (a SchNet run: ``model.pt`` 1.8 ms, ``checkpoint.pt`` 7.4 ms, ``metrics.csv``
of 300 rows 3.4 ms on a 2-core CPU), which is a tenth of an epoch of 900 small molecules on a GPU and 6 % of
the demo's 0.2 s epochs. So after an epoch the files are written only once the time since the last write
is at least ``1 / WRITE_SHARE`` times what that write took: every epoch for epochs longer than that, every
few epochs for short ones. The first epoch and the last (when the loop ends, early stopping and time
budgets included) are always written. A run killed with SIGKILL loses the epoch in progress and at most
that span of epochs before it (half a second for SchNet); its files stay consistent, since the checkpoint
is written before the rows that depend on it. An improved epoch whose files wait keeps a copy of its
weights for ``model.pt``.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import torch

from ..runs import run_dir as rd
from ..utils.atomic import atomic_write_text

#: the share of a run's wall time that writing its files may take (see the module docstring)
WRITE_SHARE = 0.02


def write_metrics(out: Path, rows: list[dict]) -> None:
    """``metrics.csv`` of ``out`` from ``rows``, atomically; columns in order of first appearance."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(Path(out) / rd.METRICS, buffer.getvalue())


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the tensorboard extra is optional
        return None
    return SummaryWriter(str(out / "tensorboard"))


def _copy(state):
    """A copy of a (nested) state dict whose tensors no longer follow the live ones."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return type(state)((k, _copy(v)) for k, v in state.items())
    if isinstance(state, list | tuple):
        return type(state)(_copy(v) for v in state)
    return state


class RunFiles:
    """The files of the run directory ``out`` for ``step`` (a :class:`~boltzmatch.training.loop.Step`),
    written by :meth:`after_epoch` at the pace of the module docstring, and by :meth:`flush` at the end."""

    def __init__(self, step, out: Path, *, tensorboard: bool = False):
        self.step, self.out = step, Path(out)
        self.writer = _tensorboard(self.out) if tensorboard else None
        self.unwritten: list[tuple[int, dict]] = []  # (epoch index, row) since the last write (for TensorBoard)
        self.best = None  # a copy of an improved epoch's model state, when its write waits
        self.best_pending = False  # model.pt is due at the next write
        self.last_end: float | None = None
        self.cost = 0.0  # seconds the last write took
        self.failed = False

    def after_epoch(self, index: int, row: dict, state: dict, improved: bool) -> None:
        """Record epoch ``index`` (0-based), which just ended (its ``row`` is already in ``state``), and write
        if it is time."""
        self.unwritten.append((index, row))
        if improved:
            self.best, self.best_pending = None, True
        if self.last_end is None or (time.perf_counter() - self.last_end) * WRITE_SHARE >= self.cost:
            self.write(state)
        elif improved:
            self.best = _copy(self.step.model_state())  # the next epoch moves the live weights on

    def flush(self, state: dict) -> None:
        """Write what waits (the loop calls it when it ends, with the step at its last epoch); nothing after
        a write that failed (it would fail again)."""
        if self.unwritten and not self.failed:
            self.write(state)

    def write(self, state: dict) -> None:
        start = time.perf_counter()
        self.failed = True  # until this write is through
        if self.best_pending:
            rd.save_torch(self.best if self.best is not None else self.step.model_state(), self.out / rd.MODEL)
            self.best, self.best_pending = None, False
        # the checkpoint before metrics.csv: a row on disk always has a checkpoint to resume from
        rd.save_torch({**self.step.checkpoint(), "state": state}, self.out / rd.CHECKPOINT)
        write_metrics(self.out, state["rows"])
        if self.writer is not None:
            for index, row in self.unwritten:
                for key, value in row.items():
                    if key != "epoch":
                        self.writer.add_scalar(key, value, row.get("epoch", index + 1))
            self.writer.flush()
        self.unwritten, self.failed = [], False
        self.last_end = time.perf_counter()
        self.cost = self.last_end - start

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
