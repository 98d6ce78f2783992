"""OpenMM force fields as an ASE calculator (the ``openmm`` extra).

``alanine-dipeptide`` is openmmtools' bundled Amber ff96 system in vacuum, without bond
constraints so that every degree of freedom moves. OpenMM works in kJ/mol and nm; this
calculator returns eV and eV/Å.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes

from ..errors import BoltzmatchError

KJ_PER_MOL = units.kJ / units.mol  # eV
NM = 10.0  # Å


def _openmm():
    import contextlib
    import io
    import logging

    try:
        import openmm
        import openmm.unit

        # openmmtools imports pymbar, which prints a JAX banner and a timeseries warning on import: not ours
        quiet = io.StringIO()
        pymbar_logger = logging.getLogger("pymbar")
        level = pymbar_logger.level
        pymbar_logger.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                from openmmtools import testsystems
        finally:
            pymbar_logger.setLevel(level)
    except ImportError:
        message = "the openmm calculator needs OpenMM and openmmtools; install boltzmatch[openmm]"
        raise BoltzmatchError(message) from None
    return openmm, testsystems


def _alanine_dipeptide():
    _, testsystems = _openmm()
    return testsystems.AlanineDipeptideVacuum(constraints=None)


def alanine_dipeptide_atoms() -> Atoms:
    """Alanine dipeptide's starting structure from openmmtools (Å)."""
    system = _alanine_dipeptide()
    symbols = [atom.element.symbol for atom in system.topology.atoms()]
    positions = np.asarray(system.positions.value_in_unit(system.positions.unit)) * NM
    return Atoms(symbols, positions=positions)


class OpenMMCalculator(Calculator):
    """Energy (eV) and forces (eV/Å) from an OpenMM ``System`` on the CPU platform."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, system, **kwargs):
        super().__init__(**kwargs)
        openmm, _ = _openmm()
        integrator = openmm.VerletIntegrator(0.001)
        platform = openmm.Platform.getPlatformByName("Reference")
        self._context = openmm.Context(system, integrator, platform)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self._context.setPositions(self.atoms.positions / NM)
        state = self._context.getState(getEnergy=True, getForces=True)
        energy = state.getPotentialEnergy()._value  # kJ/mol
        forces = np.asarray(state.getForces(asNumpy=True)._value)  # kJ/mol/nm
        self.results = {"energy": energy * KJ_PER_MOL, "forces": forces * KJ_PER_MOL / NM}


def alanine_dipeptide_calculator() -> OpenMMCalculator:
    return OpenMMCalculator(_alanine_dipeptide().system)
