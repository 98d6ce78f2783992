"""Trials spread over the machine's GPUs: ``--gpus 0,1,…`` gives each running trial one GPU of its own
through ``CUDA_VISIBLE_DEVICES`` (the trial sees it as ``cuda:0``; ``--device auto`` picks it)."""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator

from ..errors import BoltzmatchError


def parse_gpus(text: str | None) -> list[str] | None:
    """``"0,1,3"`` → ``["0", "1", "3"]``; None stays None (trials see whatever the agent sees)."""
    if text is None:
        return None
    ids = [part.strip() for part in str(text).split(",")]
    if not ids or not all(part.isdigit() for part in ids) or len(set(ids)) != len(ids):
        raise BoltzmatchError(f"--gpus {text}: expected distinct GPU indices like 0,1,2")
    return ids


def check_jobs(jobs: int, gpus: list[str] | None) -> int:
    """The trials run side by side: one per GPU when ``--gpus`` is given (``--jobs`` may not exceed them)."""
    if gpus is None:
        return jobs
    if jobs > len(gpus):
        raise BoltzmatchError(f"--jobs {jobs} with --gpus {','.join(gpus)}: each trial takes a GPU of its own; "
                              f"use at most {len(gpus)} jobs")
    return len(gpus) if jobs == 1 else jobs


class GpuSlots:
    """A pool of GPU indices; :meth:`take` lends one to a trial for as long as it runs (blocking while all
    are lent). With no GPUs given it lends ``None`` at once."""

    def __init__(self, gpus: list[str] | None):
        self.gpus = gpus
        self.free: queue.Queue[str] = queue.Queue()
        for gpu in gpus or []:
            self.free.put(gpu)

    @contextlib.contextmanager
    def take(self) -> Iterator[str | None]:
        if self.gpus is None:
            yield None
            return
        gpu = self.free.get()
        try:
            yield gpu
        finally:
            self.free.put(gpu)


def trial_environment(environment: dict[str, str], gpu: str | None) -> dict[str, str]:
    """The trial's environment: the agent's, with ``CUDA_VISIBLE_DEVICES`` set to its GPU when it has one."""
    return environment if gpu is None else {**environment, "CUDA_VISIBLE_DEVICES": gpu}
