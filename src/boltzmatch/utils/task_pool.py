"""Where independent tasks run: in this process, on a Dask cluster started here, or on one that exists.

``TaskPool(workers=1)`` runs tasks one after another in this process (no Dask import at all);
``TaskPool(workers=N)`` starts a ``distributed.LocalCluster`` of N single-threaded worker processes on
this machine; ``TaskPool(scheduler="tcp://HOST:PORT")`` joins a running cluster (one started by
``dask scheduler``/``dask worker`` or by dask-jobqueue on SLURM/PBS). A task is a function of a list of
payloads that returns one result per payload; :meth:`TaskPool.run` hands each result to ``on_result``
as soon as its task returns. Dask reschedules the tasks of a worker that dies, so a result can
arrive twice: ``on_result`` must keep the first (:class:`~boltzmatch.utils.journal.OrderedJournal` does).
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Sequence

from ..errors import BoltzmatchError

# each worker process computes with one thread: reference codes (tblite, OpenMM's CPU platform) would
# otherwise start one thread per core in every worker and results would change in their last digits
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
TASKS_PER_WORKER = 4  # payloads are grouped so that each worker receives about this many tasks


class TaskPool:
    """Run tasks here (``workers=1``), on a local Dask cluster (``workers=N``) or on ``scheduler``.

    Use as a context manager: a cluster started here stops on exit. ``announce`` receives one line
    naming the cluster and its dashboard when one starts (default :func:`print`).
    """

    def __init__(self, workers: int = 1, scheduler: str | None = None,
                 announce: Callable[[str], None] | None = print):
        if not isinstance(workers, int) or workers < 1:
            raise BoltzmatchError(f"--workers must be a positive integer, got {workers}")
        if scheduler is not None and not str(scheduler).strip():
            raise BoltzmatchError("--scheduler must be an address such as tcp://HOST:8786")
        self.workers, self.scheduler, self.announce = workers, scheduler, announce
        self.client = self.cluster = None
        self._environment: dict[str, str] | None = None

    @property
    def distributed(self) -> bool:
        return self.scheduler is not None or self.workers > 1

    def __enter__(self) -> TaskPool:
        if not self.distributed:
            return self
        try:
            import logging

            from distributed import Client, LocalCluster
        except ImportError as error:
            raise BoltzmatchError("--workers above 1 and --scheduler need Dask: pip install 'boltzmatch[cluster]'"
                                  ) from error
        if self.scheduler is None:
            # the nanny sets its workers' environment (OMP_NUM_THREADS=1 and more) in this process's os.environ
            # before it spawns them, and leaves it there: every later subprocess of the user's session (a sweep
            # trial, the app's runs) would run on one thread. __exit__ puts it back.
            self._environment = dict(os.environ)
            self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                        dashboard_address=":0", silence_logs=logging.ERROR, env=WORKER_ENV)
            self.client = Client(self.cluster)
            where = f"a local Dask cluster of {self.workers} worker processes"
        else:
            try:
                self.client = Client(self.scheduler, timeout="20s")
            except (OSError, TimeoutError, ValueError) as error:
                raise BoltzmatchError(f"--scheduler {self.scheduler}: no Dask scheduler answers there ({error})"
                                      ) from None
            where = f"the Dask cluster at {self.scheduler} ({self.n_workers} workers)"
        if self.announce is not None:
            self.announce(f"tasks run on {where}; dashboard: {self.client.dashboard_link}")
        return self

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None
        if self._environment is not None:
            for key in set(os.environ) - set(self._environment):
                del os.environ[key]
            os.environ.update(self._environment)
            self._environment = None

    @property
    def n_workers(self) -> int:
        """Workers that take tasks: 1 here, the cluster's count on Dask."""
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info(n_workers=-1).get("workers", {})))

    def chunk_size(self, n_items: int) -> int:
        """Payloads per task: one at a time here (each result kept at once), else about
        :data:`TASKS_PER_WORKER` tasks per worker, so that Dask's per-task cost is spread."""
        if not self.distributed:
            return 1
        return max(1, math.ceil(n_items / (TASKS_PER_WORKER * self.n_workers)))

    def run(self, task: Callable[[list], list], items: Sequence[tuple[int, object]],
            on_result: Callable[[int, object], None], *, chunk: int | None = None,
            tick: Callable[[int], None] | None = None) -> int:
        """Run ``task`` over ``items`` (pairs of an index and a payload) in groups of ``chunk`` payloads
        (default :meth:`chunk_size`); ``on_result(index, result)`` for each payload as its group returns,
        ``tick(n)`` after each group. Returns the number of payloads computed."""
        items = list(items)
        if not items:
            return 0
        chunk = chunk or self.chunk_size(len(items))
        groups = [items[k:k + chunk] for k in range(0, len(items), chunk)]
        if self.client is None:
            for group in groups:
                self._deliver(group, task([payload for _, payload in group]), on_result, tick)
            return len(items)
        from distributed import as_completed

        token = uuid.uuid4().hex[:8]
        futures = {self.client.submit(task, [payload for _, payload in group], pure=False,
                                      key=f"{getattr(task, '__name__', 'task')}-{group[0][0]}-{token}"): group
                   for group in groups}
        try:
            for future in as_completed(futures):
                self._deliver(futures[future], future.result(), on_result, tick)
                future.release()
        finally:
            self.client.cancel(list(futures))
        return len(items)

    @staticmethod
    def _deliver(group, results, on_result, tick) -> None:
        if len(results) != len(group):
            raise RuntimeError(f"a task returned {len(results)} results for {len(group)} payloads")
        for (index, _), result in zip(group, results):
            on_result(index, result)
        if tick is not None:
            tick(len(group))

