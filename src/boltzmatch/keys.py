"""Field names used everywhere (one word per concept, as in DESIGN.md).

Readers look for labels under these candidate keys, first match wins; the user can name
others (``--energy-key``/``--forces-key``).
"""

from __future__ import annotations

ENERGY = "energy"
FORCES = "forces"
POSITIONS = "positions"
NUMBERS = "numbers"
CELL = "cell"
PBC = "pbc"
STRUCTURE_INDEX = "structure_index"

#: Keys tried, in order, for the energy of a structure (extxyz info, ASE db row or row.data).
ENERGY_CANDIDATES: tuple[str, ...] = ("energy", "REF_energy", "energy_U0", "U0", "free_energy")
#: Keys tried, in order, for the per-atom forces.
FORCES_CANDIDATES: tuple[str, ...] = ("forces", "REF_forces")
