"""Results of numbered tasks written to one file in task order, whatever order they finish in.

:class:`OrderedJournal` is how ``generate --trajectories`` and ``refine``'s labelling keep every result
the moment it returns and still write the file a serial run writes, byte for byte:

- the result of task ``i`` is appended to ``target`` (and flushed to disk) when every task before ``i``
  is in it; a result that arrives ahead of its turn waits in ``<target>.parts/i.txt`` (written atomically);
- ``<target>.parts/journal.json`` records the settings of the run, how many tasks ``target`` holds and
  its length in bytes (after each task's group of results, and at least every second). A killed client
  resumes from it: ``target`` is cut back to the recorded length (a half-appended or unrecorded result
  goes and is computed again), waiting results are kept, and :attr:`missing` lists only what is left;
- a result given twice (a task retried after its worker died) is kept once.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import BoltzmatchError
from .atomic import atomic_write_text

JOURNAL = "journal.json"
SAVE_SECONDS = 1.0  # the journal is rewritten at most this often while results stream in, and after each task


class OrderedJournal:
    """Append the text results of tasks ``0 … n_tasks − 1`` to ``target`` in order; resume a killed run.

    ``settings`` (JSON-able) identify the run: a journal left by other settings is an error, not a resume.
    ``existing`` counts the tasks a ``target`` written without a journal already holds (a run from before
    journals existed); without it such a file is an error.
    """

    def __init__(self, target: str | Path, n_tasks: int, settings: dict, *,
                 existing: Callable[[Path], int] | None = None):
        self.target = Path(target)
        self.parts = self.target.with_name(self.target.name + ".parts")
        self.n_tasks = int(n_tasks)
        self.settings = json.loads(json.dumps(settings))
        self.resumed = 0  # tasks already done when this journal opened
        self._recorded, self._saved_at = -1, 0.0
        journal = self.parts / JOURNAL
        if journal.exists():
            state = json.loads(journal.read_text())
            if state.get("settings") != self.settings or state.get("n_tasks") != self.n_tasks:
                raise BoltzmatchError(f"{self.target}: a killed run with other settings left {self.parts}; "
                                      "use the same settings to resume it, or remove both to start again")
            self.done, size = int(state["done"]), int(state["bytes"])
            with open(self.target, "a+b") as handle:  # a half-appended result goes
                handle.truncate(size)
        elif self.target.exists() and self.target.stat().st_size:
            if existing is None:
                raise BoltzmatchError(f"{self.target}: exists; choose another output or remove it")
            self.done = min(int(existing(self.target)), self.n_tasks)
            self._save()
        else:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.target.write_bytes(b"")
            self.done = 0
            self._save()
        self.resumed = self.done + len(self._waiting())
        self._advance()

    @property
    def missing(self) -> list[int]:
        """Task indices with no result yet, neither in ``target`` nor waiting for their turn."""
        waiting = self._waiting()
        return [i for i in range(self.done, self.n_tasks) if i not in waiting]

    @property
    def complete(self) -> bool:
        return self.done >= self.n_tasks

    def add(self, index: int, text: str) -> None:
        """Keep the result of task ``index``: append it (and any results waiting behind it), else park it."""
        if not 0 <= index < self.n_tasks:
            raise ValueError(f"task {index} is not one of 0 … {self.n_tasks - 1}")
        if index < self.done or (self.parts / f"{index}.txt").exists():
            return  # a retried task's second result
        if index == self.done:  # its turn: straight into the target
            self._append(text)
        else:
            atomic_write_text(self.parts / f"{index}.txt", text)
        self._advance()

    def close(self) -> None:
        """Record what is appended; remove the journal folder once every task is in ``target``."""
        if self.complete and self.parts.exists():
            shutil.rmtree(self.parts)
        elif self.parts.exists():
            self.commit()

    def _waiting(self) -> set[int]:
        if not self.parts.exists():
            return set()
        return {int(p.stem) for p in self.parts.glob("*.txt") if p.stem.isdigit() and int(p.stem) >= self.done}

    def _advance(self) -> None:
        """Append every waiting result whose turn has come: text, journal, then the part file goes."""
        while (part := self.parts / f"{self.done}.txt").exists():
            self._append(part.read_text())
            part.unlink()
        for stale in self.parts.glob("*.txt"):  # results appended before a kill removed their part
            if stale.stem.isdigit() and int(stale.stem) < self.done:
                stale.unlink()

    def _append(self, text: str) -> None:
        """Append the next task's text (flushed: a killed process loses none of it); the journal records it
        within :data:`SAVE_SECONDS` (a result appended but not yet recorded is cut back and computed again
        on resume: never kept twice)."""
        with open(self.target, "a") as handle:
            handle.write(text)
        self.done += 1
        if time.monotonic() - self._saved_at > SAVE_SECONDS:
            self._save()

    def commit(self) -> None:
        """Record every appended result in the journal now (after each task's results; on close)."""
        if self._recorded != self.done:
            self._save()

    def _save(self) -> None:
        size = self.target.stat().st_size if self.target.exists() else 0
        atomic_write_text(self.parts / JOURNAL, json.dumps(
            {"settings": self.settings, "n_tasks": self.n_tasks, "done": self.done, "bytes": size}))
        self._recorded, self._saved_at = self.done, time.monotonic()
