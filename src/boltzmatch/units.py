"""Unit conversion to boltzmatch's internal units (ASE's): energy in eV, length in Å.

Every factor is taken from :mod:`ase.units`, so conversions agree with ASE to machine
precision. Names are matched case-insensitively; the same spellings SchNetPack writes into
``_property_unit_dict`` (``eV``, ``Ha``, ``kcal/mol``, ``Ang``, ``Bohr``) are understood.
"""

from __future__ import annotations

from ase import units

from .errors import BoltzmatchError

#: GPa per eV/Å³ (ASE's ``units.GPa`` is one GPa in eV/Å³): stresses are eV/Å³ inside, GPa in tables
GPA_PER_EV_A3: float = 1.0 / units.GPa

#: Energy units: value in eV of one unit.
ENERGY_UNITS: dict[str, float] = {
    "ev": 1.0,
    "mev": 1e-3,
    "hartree": units.Hartree,
    "ha": units.Hartree,
    "kcal/mol": units.kcal / units.mol,
    "kj/mol": units.kJ / units.mol,
    "ry": units.Rydberg,
    "rydberg": units.Rydberg,
}

#: Length units: value in Å of one unit.
LENGTH_UNITS: dict[str, float] = {
    "angstrom": 1.0,
    "ang": 1.0,
    "a": 1.0,
    "å": 1.0,
    "bohr": units.Bohr,
    "nm": 10.0,
}


def _lookup(table: dict[str, float], name: str, kind: str) -> float:
    key = name.strip().lower().replace(" ", "")
    if key not in table:
        allowed = ", ".join(sorted(table))
        raise BoltzmatchError(f"unknown {kind} unit {name!r}; expected one of: {allowed}")
    return table[key]


def energy_factor(name: str | None) -> float:
    """Factor that converts an energy in unit ``name`` to eV (``None`` means eV)."""
    return 1.0 if name is None else _lookup(ENERGY_UNITS, name, "energy")


def length_factor(name: str | None) -> float:
    """Factor that converts a length in unit ``name`` to Å (``None`` means Å)."""
    return 1.0 if name is None else _lookup(LENGTH_UNITS, name, "length")


def boltzmann_beta(temperature: float) -> float:
    """β = 1/(k_B T) in 1/eV for a temperature in K."""
    if not temperature > 0:
        raise BoltzmatchError(f"temperature must be positive (K), got {temperature}")
    return 1.0 / (units.kB * temperature)
