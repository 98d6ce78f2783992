"""Reference data from real calculators: NVT Langevin MD, every ``interval``-th frame written.

Calculators: ``xtb`` (GFN2-xTB through tblite's ASE calculator), ``emt`` (ASE's EMT),
``openmm`` (an OpenMM force field, for ``alanine-dipeptide``). The MD is ASE's Langevin
integrator driven by a seeded NumPy generator, so the same seed gives the same file.
Frames stream through :class:`~boltzmatch.data.writers.FrameWriter`: Ctrl-C or a crash
leaves a valid extxyz holding the frames written so far.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from time import perf_counter

import numpy as np
from ase import Atoms, units

from ..errors import BoltzmatchError
from ..utils.table import format_table
from .labels import attach_labels
from .systems import OPENMM_SYSTEMS, _canonical, build_system
from .writers import FrameWriter

CALCULATORS = ("xtb", "emt", "openmm")


@dataclass
class GenerateSummary:
    """What a reference run produced (temperature in K, energy in eV, time in ps)."""

    out: str
    system: str
    calculator: str
    frames: int
    simulated_ps: float
    temperature_mean: float
    temperature_std: float
    energy_min: float
    energy_max: float
    wall_seconds: float
    completed: bool

    def as_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        rows = [
            ["output", self.out],
            ["system / calculator", f"{self.system} / {self.calculator}"],
            ["frames written", self.frames],
            ["simulated time (ps)", self.simulated_ps],
            ["temperature mean ± std (K)", f"{self.temperature_mean:.1f} ± {self.temperature_std:.1f}"],
            ["energy range (eV)", f"{self.energy_min:.4f} … {self.energy_max:.4f}"],
            ["wall time (s)", self.wall_seconds],
            ["completed", self.completed],
        ]
        return format_table(rows, title="Reference data")


def make_calculator(name: str, system: str):
    """An ASE calculator for the reference method ``name``."""
    if name == "xtb":
        from tblite.ase import TBLite

        return TBLite(method="GFN2-xTB", verbosity=0)
    if name == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if name == "openmm":
        if _canonical(system) not in OPENMM_SYSTEMS:
            raise BoltzmatchError(
                f"the openmm calculator has a force field for {', '.join(OPENMM_SYSTEMS)} only, not {system!r}"
            )
        from .openmm_reference import alanine_dipeptide_calculator

        return alanine_dipeptide_calculator()
    raise BoltzmatchError(f"unknown calculator {name!r}; expected one of {', '.join(CALCULATORS)}")


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
) -> GenerateSummary:
    """Run NVT Langevin MD with a reference calculator and write frames with energy and forces.

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
        Seeds initial velocities and the thermostat noise.
    """
    from threadpoolctl import threadpool_limits

    from ..utils.progress import progress_bar

    steps = _production_steps(time, steps, timestep)
    _check_md_options(steps=steps, interval=interval, equilibration=equilibration, timestep=timestep,
                      temperature=temperature)
    atoms = build_system(system)
    atoms.calc = make_calculator(calculator, system)
    dyn = _thermostat(atoms, temperature=temperature, timestep=timestep, friction=friction, seed=seed)

    temperatures: list[float] = []
    energies: list[float] = []
    start = perf_counter()
    completed = False
    bar = progress_bar(total=equilibration + steps, desc=f"{system} {calculator} MD", unit="step",
               disable=None if progress else True, mininterval=1.0)
    with FrameWriter(out) as writer:
        def record() -> None:
            if dyn.nsteps <= equilibration or (dyn.nsteps - equilibration) % interval:
                return
            energy = float(atoms.get_potential_energy())
            frame = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
            # the calculator's own forces: with FixCom applied, ASE's get_forces() returns
            # constraint-adjusted forces that are not −∂E/∂x (up to 0.7 eV/Å off for ethanol)
            attach_labels(frame, energy, atoms.get_forces(apply_constraint=False))
            frame.info["temperature"] = float(temperature)  # the thermostat's, K
            writer.write(frame)
            temperatures.append(float(atoms.get_temperature()))
            energies.append(energy)
            bar.set_postfix(frames=writer.count, T=f"{np.mean(temperatures):.0f}K", refresh=False)

        def tick() -> None:
            if dyn.nsteps > 0:  # ASE also calls observers once before the first step
                bar.update(1)

        dyn.attach(record, interval=1)
        dyn.attach(tick, interval=1)
        try:
            # one OpenMP/BLAS thread: threaded reductions in tblite change the last digits from
            # run to run, and the same seed must give the same file
            with threadpool_limits(limits=1):
                dyn.run(equilibration + steps)
            completed = True
        finally:
            bar.close()
    if not energies:
        raise BoltzmatchError(f"{out}: no frames written; steps ({steps}) must reach interval ({interval})")
    return GenerateSummary(
        out=str(out), system=system, calculator=calculator, frames=len(energies),
        simulated_ps=steps * timestep / 1000.0,
        temperature_mean=float(np.mean(temperatures)), temperature_std=float(np.std(temperatures)),
        energy_min=float(np.min(energies)), energy_max=float(np.max(energies)),
        wall_seconds=perf_counter() - start, completed=completed,
    )


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


def _thermostat(atoms: Atoms, *, temperature: float, timestep: float, friction: float, seed: int):
    """ASE's Langevin at ``temperature`` (K), ``timestep`` (fs), ``friction`` (1/fs), velocities drawn with
    ``seed``; a molecule keeps its centre of mass fixed and starts without rotation."""
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

    rng = np.random.default_rng(seed)
    thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    if not atoms.pbc.any():
        # FixCom rather than Langevin(fixcm=True), which biases the temperature of small
        # molecules (617 K instead of 500 K for ethanol); get_temperature() then counts 3N-3 dof.
        ZeroRotation(atoms)
        atoms.set_constraint(FixCom())
    return Langevin(atoms, timestep * units.fs, temperature_K=temperature, friction=friction / units.fs,
                    fixcm=False, rng=rng)
