"""Several seeded reference trajectories as tasks: in this process or on Dask (``generate --trajectories K``).

Trajectory ``k`` is :func:`~boltzmatch.data.reference_md.run_reference_md` with seed ``seed + k``, computed
whole by one task (in this process, on a local cluster or on a running one:
:class:`~boltzmatch.utils.task_pool.TaskPool`) and returned as extxyz text. The text goes through an
:class:`~boltzmatch.utils.journal.OrderedJournal` into ``<out>.partial``: trajectory ``k`` follows
``k − 1`` however the tasks finish, so 1, 2 or 20 workers write the same file byte for byte, and a
result is on disk the moment its task returns. A killed run resumes from the journal when started again
with the same settings and computes only the trajectories that are missing; the finished file is renamed
to ``out``. With cell scales (``generate --cell-scale 0.98,1,1.02``) the K trajectories run at each scale in
turn, seeds counting on: a crystal's data at several volumes, for its equation of state and stress.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from time import perf_counter

from ase import Atoms

from ..errors import BoltzmatchError
from ..utils.journal import OrderedJournal
from ..utils.task_pool import TaskPool
from .reference_md import GenerateSummary, MDSettings, reference_dynamics, run_reference_md, summarize
from .writers import frame_text


def trajectory_texts(settings: list[dict]) -> list[str]:
    """The task: each trajectory of ``settings`` (:class:`MDSettings` fields plus ``trajectory``, its index)
    as extxyz text of its frames, each frame's ``info["trajectory"]`` set."""
    texts = []
    for item in settings:
        item = dict(item)
        index = item.pop("trajectory")
        parts: list[str] = []

        def keep(frame: Atoms, index: int = index, parts: list[str] = parts) -> None:
            frame.info["trajectory"] = index
            parts.append(frame_text(frame))

        run_reference_md(MDSettings(**item), keep)
        texts.append("".join(parts))
    return texts


def generate_trajectories(md: MDSettings, *, out: str | Path, trajectories: int, workers: int = 1,
                          scheduler: str | None = None, progress: bool = True,
                          cell_scales: Sequence[float] = (1.0,)) -> GenerateSummary:
    """``trajectories`` runs of ``md`` at each of ``cell_scales`` (the crystal's cell scaled by each, in turn)
    with seeds ``md.seed + k``, k counting every run, into ``out``; see the module docstring."""
    from ase.io import read

    from ..utils.progress import progress_bar

    if not isinstance(trajectories, int) or trajectories < 1:
        raise BoltzmatchError(f"--trajectories must be a positive integer, got {trajectories}")
    runs = [replace(md, seed=md.seed + k, cell_scale=float(scale) * md.cell_scale)
            for k, scale in enumerate(s for s in cell_scales for _ in range(trajectories))]
    trajectories = len(runs)
    if md.steps < md.interval:
        raise BoltzmatchError(f"{out}: no frames would be written; steps ({md.steps}) must reach interval "
                              f"({md.interval})")
    reference_dynamics(runs[0])  # an unknown system or calculator, a scaled molecule, fail before anything is written
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    settings = {**asdict(md), "trajectories": trajectories}
    if settings["cell_scale"] == 1.0:  # the settings of runs from before cell scales: they resume as before
        del settings["cell_scale"]
    if settings["pressure"] is None:  # nor a pressure
        del settings["pressure"]
    if len(set(cell_scales)) > 1 or float(cell_scales[0]) != 1.0:
        settings["cell_scales"] = [float(scale) for scale in cell_scales]
    start = perf_counter()
    pool = TaskPool(workers, scheduler)  # options checked before anything is written
    journal = OrderedJournal(partial, trajectories, settings)
    missing = journal.missing
    if journal.resumed:
        print(f"resuming {out}: {journal.resumed} of {trajectories} trajectories done, {len(missing)} to compute")
    bar = progress_bar(total=trajectories, initial=trajectories - len(missing), unit="trajectory",
                       desc=f"{md.system} {md.calculator} MD", disable=None if progress else True)
    try:
        if missing:
            with pool:
                payloads = [(k, {**asdict(runs[k]), "trajectory": k}) for k in missing]
                pool.run(trajectory_texts, payloads, journal.add, chunk=1,
                         tick=lambda n: (journal.commit(), bar.update(n)))
    finally:
        bar.close()
        journal.commit()
    os.replace(partial, out)
    journal.close()
    frames = read(out, index=":")
    return summarize(md, out, [a.info["kinetic_temperature"] for a in frames],
                     [a.get_potential_energy() for a in frames], perf_counter() - start, True, trajectories)
