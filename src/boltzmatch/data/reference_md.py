"""Reference MD with a real calculator, frame by frame: the calculators, one run's settings, its summary.

Calculators: ``xtb`` (GFN2-xTB through tblite's ASE calculator), ``emt`` (ASE's EMT),
``openmm`` (an OpenMM force field, for ``alanine-dipeptide``). The MD is ASE's Langevin
integrator driven by a seeded NumPy generator, so the same seed gives the same frames.
:mod:`.generate` writes one run to a file, :mod:`.trajectories` runs several as tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms, units

from ..errors import BoltzmatchError
from ..utils.stopping import DeferredStop
from ..utils.table import format_table
from .labels import attach_labels, reference_stress
from .systems import OPENMM_SYSTEMS, _canonical, build_system

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
    trajectories: int = 1
    #: the factors the crystal's cell was scaled by, one after another (``generate --cell-scale``); None: as built
    cell_scales: list[float] | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        rows = [
            ["output", self.out],
            ["system / calculator", f"{self.system} / {self.calculator}"],
            ["trajectories", self.trajectories],
            *([["cell scales", ", ".join(f"{v:g}" for v in self.cell_scales)]] if self.cell_scales else []),
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


#: the reference methods whose isolated atoms have an energy on the molecules' scale (a force field's do not)
ISOLATED_ATOM_CALCULATORS = ("xtb", "emt")


def isolated_atom_energies(calculator: str, elements: list[int]) -> dict[int, float]:
    """{Z: energy in eV} of one atom of each element alone, by the reference method ``calculator`` (``xtb``:
    GFN2-xTB with tblite's defaults, as its molecules are computed; ``emt``: ASE's EMT), as MACE's E0s: the
    per-element energies that fix the energy zero where the training compositions leave it open."""
    if calculator not in ISOLATED_ATOM_CALCULATORS:
        raise BoltzmatchError(f"isolated-atom energies come from {' or '.join(ISOLATED_ATOM_CALCULATORS)}, not "
                              f"{calculator!r} (a force field has none); give the values, e.g. H=-10.7,C=-48.8")
    energies = {}
    for z in elements:
        atom = Atoms(numbers=[z])
        atom.calc = make_calculator(calculator, "")
        try:
            energies[int(z)] = float(atom.get_potential_energy())
        except Exception as exc:  # noqa: BLE001 - the calculator's own error, in one line
            from ase.data import chemical_symbols

            raise BoltzmatchError(f"{calculator} has no energy for an isolated {chemical_symbols[z]} atom: "
                                  f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return energies


@dataclass(frozen=True)
class MDSettings:
    """One reference MD run: K, steps, fs, 1/fs; ``seed`` seeds velocities and thermostat noise."""

    system: str
    calculator: str
    temperature: float
    steps: int
    interval: int
    timestep: float
    equilibration: int
    friction: float
    seed: int
    #: the crystal's cell (and atoms) scaled by this factor in every direction before the MD: data at several
    #: volumes, which a model's equation of state and stress need (training on stress)
    cell_scale: float = 1.0
    #: GPa: NPT, the crystal's cell free to change shape and volume at this pressure (ASE's LangevinBAOAB); None: NVT
    pressure: float | None = None


def reference_dynamics(md: MDSettings):
    """The system of ``md`` with its calculator and thermostat, ready to run: ``(atoms, dynamics)``. An unknown
    system or calculator, or a cell scale for a structure that is not a crystal, fails here, before anything is
    written."""
    atoms = build_system(md.system)
    for flag, used in (("--cell-scale", md.cell_scale != 1.0), ("--pressure", md.pressure is not None)):
        if used and not atoms.pbc.all():
            raise BoltzmatchError(f"{flag} needs a crystal; {md.system} is not periodic in all three directions")
    if md.cell_scale != 1.0:
        atoms.set_cell(atoms.cell * md.cell_scale, scale_atoms=True)
    atoms.calc = make_calculator(md.calculator, md.system)
    return atoms, _thermostat(atoms, temperature=md.temperature, timestep=md.timestep, friction=md.friction,
                              seed=md.seed, pressure=md.pressure)


def run_reference_md(md: MDSettings, on_frame: Callable[[Atoms], None],
                     tick: Callable[[], None] | None = None, prepared: tuple | None = None) -> None:
    """Run ``md`` and hand every ``interval``-th production frame to ``on_frame``: an ``Atoms`` with energy
    (eV), forces (eV/Å), the method (``info["reference_method"]``), the thermostat's temperature
    (``info["temperature"]``, K) and the instantaneous
    kinetic one (``info["kinetic_temperature"]``, K) and its time since equilibration (``info["time_ps"]``, ps).
    ``tick`` after each MD step; ``prepared``: what
    :func:`reference_dynamics` returned for ``md``."""
    from threadpoolctl import threadpool_limits

    atoms, dyn = prepared or reference_dynamics(md)

    def record() -> None:
        if dyn.nsteps <= md.equilibration or (dyn.nsteps - md.equilibration) % md.interval:
            return
        frame = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        # the calculator's own forces: with FixCom applied, ASE's get_forces() returns
        # constraint-adjusted forces that are not −∂E/∂x (up to 0.7 eV/Å off for ethanol)
        # a crystal's stress (eV/Å³) where the reference computes one (EMT): labels that training on stress reads
        attach_labels(frame, float(atoms.get_potential_energy()), atoms.get_forces(apply_constraint=False),
                      reference_stress(atoms))
        frame.info["reference_method"] = md.calculator  # whose isolated atoms fix an open energy zero (train)
        frame.info["temperature"] = md.temperature
        frame.info["kinetic_temperature"] = float(atoms.get_temperature())
        frame.info["time_ps"] = (dyn.nsteps - md.equilibration) * md.timestep / 1000.0
        if md.cell_scale != 1.0:
            frame.info["cell_scale"] = md.cell_scale
        if md.pressure is not None:
            frame.info["pressure_GPa"] = md.pressure
        on_frame(frame)

    dyn.attach(record, interval=1)
    if tick is not None:
        dyn.attach(lambda: dyn.nsteps > 0 and tick(), interval=1)  # ASE also calls observers before step 1
    # one OpenMP/BLAS thread: threaded reductions in tblite change the last digits from
    # run to run, and the same seed must give the same file; SIGTERM/Ctrl-C stop after a step (a raise from
    # the handler itself can land in tblite's cffi destructor, where Python ignores it)
    with threadpool_limits(limits=1), DeferredStop() as stop:
        dyn.attach(stop.check, interval=1)
        dyn.run(md.equilibration + md.steps)


def summarize(md: MDSettings, out: str | Path, temperatures: list[float], energies: list[float],
              wall_seconds: float, completed: bool, trajectories: int = 1) -> GenerateSummary:
    """The :class:`GenerateSummary` of frames with these kinetic temperatures (K) and energies (eV)."""
    return GenerateSummary(
        out=str(out), system=md.system, calculator=md.calculator, frames=len(energies),
        simulated_ps=trajectories * md.steps * md.timestep / 1000.0,
        temperature_mean=float(np.mean(temperatures)), temperature_std=float(np.std(temperatures)),
        energy_min=float(np.min(energies)), energy_max=float(np.max(energies)),
        wall_seconds=wall_seconds, completed=completed, trajectories=trajectories,
    )


def _thermostat(atoms: Atoms, *, temperature: float, timestep: float, friction: float, seed: int,
                pressure: float | None = None):
    """ASE's Langevin at ``temperature`` (K), ``timestep`` (fs), ``friction`` (1/fs), velocities drawn with
    ``seed``; a molecule keeps its centre of mass fixed and starts without rotation. With ``pressure`` (GPa, a
    crystal): ASE's LangevinBAOAB, the same Langevin thermostat (τ_T = 1/friction) with a fully flexible cell
    (Langevin-Hoover barostat, its default τ_P = 20 τ_T)."""
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
    if pressure is not None:
        import warnings

        from ase.md.langevinbaoab import LangevinBAOAB

        with warnings.catch_warnings():  # its note that the cell's mass comes from its heuristic for τ_P
            warnings.simplefilter("ignore", UserWarning)
            return LangevinBAOAB(atoms, timestep * units.fs, temperature_K=temperature,
                                 externalstress=-pressure * units.GPa, T_tau=units.fs / friction,
                                 P_tau=20 * units.fs / friction, rng=rng)
    return Langevin(atoms, timestep * units.fs, temperature_K=temperature, friction=friction / units.fs,
                    fixcm=False, rng=rng)
