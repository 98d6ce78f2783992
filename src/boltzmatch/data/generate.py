"""Reference data from real calculators: NVT (or NPT) Langevin MD, every ``interval``-th frame written.

Calculators: ``xtb`` (GFN2-xTB through tblite's ASE calculator), ``emt`` (ASE's EMT),
``openmm`` (an OpenMM force field, for ``alanine-dipeptide``). The MD is ASE's Langevin
integrator driven by a seeded NumPy generator, so the same seed gives the same file.
Frames stream through :class:`~boltzmatch.data.writers.FrameWriter`: Ctrl-C or a crash
leaves a valid extxyz holding the frames written so far.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from time import perf_counter

import numpy as np
from ase import Atoms

from ..errors import BoltzmatchError
from .reference_md import (
    CALCULATORS,
    GenerateSummary,
    MDSettings,
    make_calculator,
    reference_dynamics,
    run_reference_md,
    summarize,
)
from .trajectories import generate_trajectories
from .writers import FrameWriter

__all__ = ["CALCULATORS", "GenerateSummary", "generate", "make_calculator"]


def generate(
    system: str,
    *,
    out: str | Path,
    calculator: str = "xtb",
    temperature: float = 500.0,
    time: float = 2.5,  # noqa: A002  (the CLI flag is --time, as in simulate, compare and refine)
    interval: int = 10,
    timestep: float = 0.5,
    equilibration: int = 1000,
    friction: float = 0.01,
    seed: int = 0,
    progress: bool = True,
    steps: int | None = None,
    trajectories: int = 1,
    workers: int = 1,
    scheduler: str | None = None,
    cell_scales: Sequence[float] | None = None,
    pressure: float | None = None,
) -> GenerateSummary:
    """Run NVT (or, with ``pressure``, NPT) Langevin MD with a reference calculator and write frames with energy
    and forces.

    Parameters
    ----------
    system
        See :func:`~boltzmatch.data.systems.build_system`.
    out
        Output extxyz path.
    calculator
        ``xtb``, ``emt`` or ``openmm``.
    temperature
        Thermostat temperature in K.
    time
        Production MD in ps (``time`` × 1000 / ``timestep`` steps; default 2.5 ps = 5,000 steps of 0.5 fs).
    interval
        Write every ``interval``-th production step.
    equilibration
        MD steps run (and not written) before production, at the same temperature and timestep.
    timestep
        In fs.
    steps
        Production steps: the old way to give the length (deprecated, goes in the next release; use ``time``).
    friction
        Langevin friction in 1/fs.
    seed
        Seeds initial velocities and the thermostat noise; trajectory ``k`` of several uses ``seed + k``.
    trajectories
        Independent trajectories, one after another in ``out`` (each frame's ``info["trajectory"]`` says
        which); the same seed gives the same file whatever runs them.
    cell_scales
        Factors the crystal's cell (and its atoms) are scaled by before the MD, e.g. ``(0.98, 1.0, 1.02)``:
        ``trajectories`` runs at each, one scale after another in ``out`` (each frame's ``info["cell_scale"]``
        says which), seeds ``seed + k`` counting every run. Data at several volumes teach a model its equation of
        state and stress (docs/concepts.md); a structure that is not periodic in 3-D is refused.
    pressure
        GPa: NPT with a fully flexible cell (ASE's ``LangevinBAOAB``), so each frame has its own cell: the
        reference for ``simulate --pressure`` at this pressure, whose h(r) and volume a model's NPT run should
        match (:mod:`~boltzmatch.simulate.rdf_rule`). Crystals only; None (default): NVT at the built cell.
    workers, scheduler
        Run the trajectories as tasks on a local Dask cluster of ``workers`` processes, or on the running
        cluster at ``scheduler`` (``tcp://HOST:PORT``); see :mod:`~boltzmatch.data.trajectories`.
    """
    steps = _production_steps(time, steps, timestep)
    _check_md_options(steps=steps, interval=interval, equilibration=equilibration, timestep=timestep,
                      temperature=temperature)
    md = MDSettings(system=system, calculator=calculator, temperature=float(temperature), steps=int(steps),
                    interval=int(interval), timestep=float(timestep), equilibration=int(equilibration),
                    friction=float(friction), seed=int(seed),
                    pressure=None if pressure is None else _check_pressure(pressure))
    scales = _check_cell_scales(cell_scales)
    if len(scales) == 1:
        md = replace(md, cell_scale=scales[0])
    if trajectories != 1 or workers != 1 or scheduler is not None or len(scales) > 1:
        summary = generate_trajectories(md, out=out, trajectories=trajectories, workers=workers,
                                        scheduler=scheduler, progress=progress,
                                        cell_scales=scales if len(scales) > 1 else (1.0,))
    else:
        summary = _generate_one(md, out, progress)
    if scales != [1.0]:  # the summary table names the scales, one or several
        summary.cell_scales = scales
    return summary


def _check_pressure(pressure: float) -> float:
    """The pressure as a float (GPa); a one-line error for one that is not a finite number."""
    value = float(pressure)
    if not np.isfinite(value):
        raise BoltzmatchError(f"--pressure must be a finite number of GPa, got {pressure}")
    return value


def _check_cell_scales(cell_scales: Sequence[float] | None) -> list[float]:
    """The cell scales as floats (``[1.0]`` for none); a one-line error for values that are not positive."""
    if cell_scales is None:
        return [1.0]
    scales = [float(value) for value in cell_scales]
    if not scales or any(not value > 0 for value in scales):
        raise BoltzmatchError(f"--cell-scale takes positive factors, e.g. 0.98,1,1.02; got {list(cell_scales)}")
    return scales


def _generate_one(md: MDSettings, out: str | Path, progress: bool) -> GenerateSummary:
    """One trajectory in this process, each frame flushed to ``out`` as it is made."""
    from ..utils.progress import progress_bar

    prepared = reference_dynamics(md)
    temperatures: list[float] = []
    energies: list[float] = []
    start = perf_counter()
    completed = False
    bar = progress_bar(total=md.equilibration + md.steps, desc=f"{md.system} {md.calculator} MD", unit="step",
                       disable=None if progress else True, mininterval=1.0)
    with FrameWriter(out) as writer:
        def on_frame(frame: Atoms) -> None:
            writer.write(frame)
            temperatures.append(frame.info["kinetic_temperature"])
            energies.append(frame.get_potential_energy())
            bar.set_postfix(frames=writer.count, T=f"{np.mean(temperatures):.0f}K", refresh=False)

        try:
            run_reference_md(md, on_frame, tick=lambda: bar.update(1), prepared=prepared)
            completed = True
        finally:
            bar.close()
    if not energies:
        raise BoltzmatchError(f"{out}: no frames written; steps ({md.steps}) must reach interval ({md.interval})")
    return summarize(md, out, temperatures, energies, perf_counter() - start, completed)


def _production_steps(time: float, steps: int | None, timestep: float) -> int:  # noqa: A002
    """MD steps for ``time`` ps at ``timestep`` fs, or the deprecated ``steps`` as given."""
    if steps is not None:
        warnings.warn("generate(steps=...) is deprecated and goes in the next release; use time=... (ps)",
                      DeprecationWarning, stacklevel=3)
        return steps
    if not time > 0:
        raise BoltzmatchError(f"time must be positive (ps), got {time}")
    return max(1, round(time * 1000.0 / timestep)) if timestep > 0 else 0


def _check_md_options(*, steps: int, interval: int, equilibration: int, timestep: float, temperature: float) -> None:
    for name, value in (("steps", steps), ("interval", interval)):
        if value < 1:
            raise BoltzmatchError(f"{name} must be a positive integer, got {value}")
    if equilibration < 0:
        raise BoltzmatchError(f"equilibration must be ≥ 0 steps, got {equilibration}")
    if not timestep > 0:
        raise BoltzmatchError(f"timestep must be positive (fs), got {timestep}")
    if not temperature > 0:
        raise BoltzmatchError(f"temperature must be positive (K), got {temperature}")
