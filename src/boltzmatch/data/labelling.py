"""Reference labels for chosen frames, as tasks: in this process or on Dask (``refine``'s labelling).

Each frame is labelled by a fresh calculator: tblite reuses the previous frame's wavefunction as its
next guess, which moved ethanol forces by 1e-4 eV/Å depending on what the same calculator labelled before,
so a frame's label would depend on how frames were shared among workers. The labelled frames go through
an :class:`~boltzmatch.utils.journal.OrderedJournal`: the file lists them in the candidates' order, each
kept the moment its task returns, and a resumed run labels only what is missing.
"""

from __future__ import annotations

from pathlib import Path

from ase import Atoms

from ..utils.journal import OrderedJournal
from ..utils.task_pool import TaskPool
from .labels import make_structure, reference_stress

#: ``info`` key of a frame the reference method could not label (its reason); such a frame keeps its place in
#: the labels file, positions only, so that the file still holds one frame per task
LABEL_FAILED = "label_failed"


def label_texts(job: list[tuple[str, Atoms]]) -> list[str]:
    """The task: each ``(calculator, frame)`` labelled with energy (eV) and forces (eV/Å), and a crystal's stress
    (eV/Å³) where the calculator gives one (EMT), as extxyz text
    keeping the frame's ``info``. A frame the reference cannot compute (GFN2-xTB's SCF does not converge on a
    frame torn apart by a collapse) is written without labels, its reason under :data:`LABEL_FAILED`."""
    import io

    from ase.calculators.calculator import CalculationFailed
    from ase.io import write
    from threadpoolctl import threadpool_limits

    from .reference_md import make_calculator

    texts = []
    for calculator, atoms in job:
        work = atoms.copy()
        # openmm's force field is alanine dipeptide's; xtb and emt take any structure
        work.calc = make_calculator(calculator, "alanine-dipeptide" if calculator == "openmm" else "")
        try:
            with threadpool_limits(limits=1):
                labelled = make_structure(work.numbers, work.positions, energy=work.get_potential_energy(),
                                          forces=work.get_forces(), stress=reference_stress(work), cell=work.cell,
                                          pbc=work.pbc)
        except CalculationFailed as exc:
            labelled = make_structure(work.numbers, work.positions, cell=work.cell, pbc=work.pbc)
            labelled.info[LABEL_FAILED] = f"{calculator}: {str(exc).strip() or type(exc).__name__}"
        labelled.info.update({k: v for k, v in atoms.info.items() if v is not None})
        labelled.info["reference_method"] = calculator  # the labels' method, whatever made the positions
        buffer = io.StringIO()
        write(buffer, labelled, format="extxyz")
        texts.append(buffer.getvalue())
    return texts


def label_frames(frames: list[Atoms], path: str | Path, calculator: str, *, workers: int = 1,
                 scheduler: str | None = None, progress: bool = True) -> int:
    """Label ``frames`` with ``calculator`` (xtb, emt, openmm) into ``path`` (extxyz, in the frames' order);
    frames ``path`` already holds (a killed run's) are kept, not labelled again. Returns the number labelled
    now. ``workers``/``scheduler`` as :class:`~boltzmatch.utils.task_pool.TaskPool` takes them. Frames the
    reference could not compute stay in ``path`` without labels (:func:`labelled_only` leaves them out)."""
    from ase.io import read

    from ..utils.progress import progress_bar
    from ..utils.stopping import DeferredStop

    path = Path(path)
    settings = {"calculator": calculator, "frames": len(frames)}
    pool = TaskPool(workers, scheduler)  # options checked before anything is written
    journal = OrderedJournal(path, len(frames), settings, existing=lambda p: len(read(p, index=":")))
    missing, done = journal.missing, 0
    bar = progress_bar(total=len(frames), initial=len(frames) - len(missing), desc="label", unit="frame",
                       disable=None if progress else True)
    try:
        if missing:  # SIGTERM/Ctrl-C stop after a committed frame (utils/stopping.py says why)
            with pool, DeferredStop() as stop:
                done = pool.run(label_texts, [(k, (calculator, frames[k])) for k in missing], journal.add,
                                tick=lambda n: (journal.commit(), bar.update(n), stop.check()))
    finally:
        bar.close()
        journal.close()  # records what was appended; the folder goes once every frame is in
    return done


def labelled_only(frames: list[Atoms]) -> tuple[list[Atoms], list[str]]:
    """(the frames with labels, the reasons of those the reference could not label)."""
    failed = [str(a.info[LABEL_FAILED]) for a in frames if LABEL_FAILED in a.info]
    return [a for a in frames if LABEL_FAILED not in a.info], failed
