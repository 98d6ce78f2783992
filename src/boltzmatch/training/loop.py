"""The one run loop of every trainer: energy models (supervised, score matching, contrastive divergence),
the generative families and GFlowNets each supply a :class:`Step`; the loop owns the rest.

What the loop owns, for every kind of run:

* the run-directory contract (:mod:`.run_files`): after an epoch ``checkpoint.pt`` (the step's state, the
  loop's rows and counters, written atomically) *before* the rows reach ``metrics.csv``, so every row on disk
  has a checkpoint to resume from; ``model.pt`` holds the last epoch the step says improved. Short epochs
  are written every few epochs, so that writing stays a small share of the time; the last one always is,
  also when Stop, Ctrl-C or SIGTERM end the run between epochs;
* exact resume: ``resume=True`` restores the step from ``checkpoint.pt`` and continues at the next
  epoch, reaching the weights of an uninterrupted run;
* progress (a bar on a terminal, lines in a log, the desktop app's observer) and cancellation (the
  app's Stop raises :class:`~boltzmatch.utils.progress.Cancelled` at the next update);
* the wall-time budget ``max_minutes``: the loop stops after the epoch that crosses it (counted from
  this call, so a resumed run gets the budget again);
* ``time_s`` in every row: wall seconds since the run first started, summed over resumes;
* the TensorBoard mirror of the rows, when the extra is installed and asked for;
* under ``torchrun``: only the main process writes, all meet at a barrier after every epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import BoltzmatchError
from ..runs import run_dir as rd
from ..utils.atomic import atomic_write_text
from .run_files import RunFiles


class Step:
    """One family's part of a run: what an epoch does and what exact resume needs.

    Subclasses set ``desc`` and ``unit`` (the progress bar's label and unit) and implement :meth:`run`,
    :meth:`checkpoint`, :meth:`restore` and :meth:`model_state`; the other hooks have defaults.
    """

    desc = "train"
    unit = "epoch"

    def run(self, index: int, state: dict) -> dict[str, float]:
        """Train epoch ``index`` (0-based); returns its metrics row (the loop adds the index and ``time_s``).
        ``state`` is the loop's state (``epoch``, ``rows``): a step may keep its own counters in it."""
        raise NotImplementedError

    def checkpoint(self) -> dict:
        """Everything besides the loop's state that exact resume needs (weights, optimisers, RNGs, buffers)."""
        raise NotImplementedError

    def restore(self, checkpoint: dict) -> None:
        """Load what :meth:`checkpoint` returned (the whole ``checkpoint.pt``, ``state`` included)."""
        raise NotImplementedError

    def model_state(self) -> dict:
        """The state dict ``model.pt`` holds."""
        raise NotImplementedError

    def units(self, index: int) -> int:
        """How far epoch ``index`` moves the progress bar (1 epoch; a GFlowNet's block: its batches)."""
        return 1

    def row_index(self, index: int) -> dict:
        """The columns that name the row of epoch ``index`` (first in ``metrics.csv``)."""
        return {"epoch": index + 1}

    def improved(self, row: dict, state: dict) -> bool:
        """Whether ``model.pt`` should hold this epoch's model (by default: every epoch, the last one kept)."""
        return True

    def stop(self, row: dict, state: dict) -> bool:
        """Early stopping after this epoch."""
        return False

    def postfix(self, row: dict) -> dict[str, str]:
        """What the progress bar shows beside the count."""
        loss = row.get("train_loss", row.get("loss"))
        return {} if loss is None else {"loss": f"{loss:.4g}"}


def read_checkpoint(out: Path) -> dict:
    """``checkpoint.pt`` of the run ``out``; a one-line error when there is none."""
    path = Path(out) / rd.CHECKPOINT
    if not path.exists():
        raise BoltzmatchError(f"{out}: no {rd.CHECKPOINT} to resume from")
    return torch.load(path, map_location="cpu", weights_only=False)


#: with a time budget and at least this many epochs asked, training is bounded by time: progress in seconds
TIME_BOUND_EPOCHS = 1000


def run_loop(step: Step, out: str | Path, *, epochs: int, resume: bool = False, progress: bool = True,
             max_minutes: float | None = None, main: bool = True, barrier: Callable[[], None] | None = None,
             tensorboard: bool = False) -> dict:
    """Run ``step`` for ``epochs`` epochs into the run directory ``out`` (its ``config.yaml`` written
    already); returns the loop's state: ``epoch`` (epochs done), ``rows`` (one per epoch), the step's own
    keys, and ``session_seconds`` (wall time of this call). See the module docstring for the contract."""
    from ..utils.progress import progress_bar

    out = Path(out)
    state: dict = {"epoch": 0, "rows": []}
    if resume:
        checkpoint = read_checkpoint(out)
        step.restore(checkpoint)
        state = checkpoint["state"]
    files = RunFiles(step, out, tensorboard=tensorboard) if main else None
    session_start = time.perf_counter()
    run_start = session_start - (state["rows"][-1].get("time_s", 0.0) if state["rows"] else 0.0)
    done = sum(step.units(i) for i in range(state["epoch"]))
    total = sum(step.units(i) for i in range(epochs))
    # bounded by time (the demo asks 100,000 epochs for 3 minutes): the bar follows the budget, in seconds
    timed = bool(max_minutes) and epochs >= TIME_BOUND_EPOCHS
    bar = progress_bar(total=round(60 * max_minutes) if timed else total, initial=0 if timed else done,
                       desc=f"{step.desc} (time budget)" if timed else step.desc, unit="s" if timed else step.unit,
                       disable=(None if progress else True) if main else True, mininterval=1.0)
    between_epochs = True  # the step and the state agree (no epoch under way): the run's files may be written
    try:
        for index in range(state["epoch"], epochs):
            between_epochs = False
            row = {**step.row_index(index), **step.run(index, state)}
            row["time_s"] = time.perf_counter() - run_start
            state["rows"].append(row)
            state["epoch"] = index + 1
            improved = step.improved(row, state)
            between_epochs = True
            if files is not None:
                files.after_epoch(index, row, state, improved)
            if timed:
                bar.set_postfix(epoch=index + 1, **step.postfix(row), refresh=False)
                bar.update(max(0, min(round(time.perf_counter() - session_start), bar.total) - bar.n))
            else:
                bar.set_postfix(**step.postfix(row), refresh=False)
                bar.update(step.units(index))
            if barrier is not None:
                barrier()
            if step.stop(row, state):
                state["end_reason"] = "early stopping"
                break
            if max_minutes and time.perf_counter() - session_start > 60 * max_minutes:
                state["end_reason"] = f"time budget ({max_minutes:g} min)"
                break
        else:
            state["end_reason"] = "all epochs"
    finally:
        bar.close()
        if files is not None:
            try:
                # the epochs whose files wait, also when Stop, Ctrl-C or SIGTERM came between epochs; not
                # after an error inside one (the step is partway through it)
                if between_epochs:
                    files.flush(state)
            finally:
                files.close()
    state["session_seconds"] = time.perf_counter() - session_start
    return state


def write_summary(out: str | Path, text: str) -> None:
    """``summary.txt`` of the run ``out``: the table its command printed."""
    atomic_write_text(Path(out) / rd.SUMMARY, text.rstrip("\n") + "\n")
