"""Starting structures for reference MD: named molecules, files, SMILES, EMT bulk specs.

* The MD17 molecules (``ethanol``, ``malonaldehyde``, ``aspirin``, ``benzene``, ``uracil``,
  ``toluene``, ``naphthalene``, ``salicylic-acid``) ship as GFN2-xTB minima built from SMILES
  with RDKit (``scripts/build_molecules.py``).
* ``smiles:CCO`` embeds any molecule with RDKit (the ``rdkit`` extra).
* ``Cu-fcc-3x3x3``: an ASE bulk crystal (cubic cell) repeated 3×3×3, for EMT.
* ``alanine-dipeptide``: openmmtools' bundled Amber system (the ``openmm`` extra).
* Any ASE g2 molecule name (``H2O``, ``CH4``), a common name of one (``methanol``, ``acetic acid``:
  :data:`COMMON_NAMES`), or a structure file (its first structure).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from ase import Atoms

from ..errors import BoltzmatchError

MD17_MOLECULES = (
    "ethanol", "malonaldehyde", "aspirin", "benzene", "uracil", "toluene", "naphthalene", "salicylic-acid",
)
OPENMM_SYSTEMS = ("alanine-dipeptide",)
#: common names of ASE g2 molecules (their g2 keys are formulas: a chemist typing ``methanol`` was refused)
COMMON_NAMES = {
    "water": "H2O", "methane": "CH4", "ammonia": "NH3", "methanol": "CH3OH", "ethane": "C2H6", "ethylene": "C2H4",
    "ethene": "C2H4", "acetylene": "C2H2", "ethyne": "C2H2", "propane": "C3H8", "formaldehyde": "H2CO",
    "acetaldehyde": "CH3CHO", "acetone": "CH3COCH3", "formic-acid": "HCOOH", "acetic-acid": "CH3COOH",
    "methyl-formate": "HCOOCH3", "acetamide": "CH3CONH2", "dimethyl-ether": "CH3OCH3", "isopropanol": "C2H6CHOH",
    "methylamine": "H3CNH2", "ethylamine": "CH3CH2NH2", "trimethylamine": "C3H9N", "acetonitrile": "CH3CN",
    "hydrogen-cyanide": "HCN", "nitromethane": "CH3NO2", "hydrazine": "N2H4", "hydrogen-peroxide": "H2O2",
    "carbon-monoxide": "CO", "carbon-dioxide": "CO2", "glyoxal": "OCHCHO", "ketene": "H2CCO",
    "acrylonitrile": "H2CCHCN", "oxirane": "CH2OCH2", "ethylene-oxide": "CH2OCH2", "furan": "C4H4O",
    "pyrrole": "C4H4NH", "thiophene": "C4H4S", "pyridine": "C5H5N", "methanethiol": "CH3SH",
    "ethanethiol": "CH3CH2SH", "dimethyl-sulfide": "CH3SCH3", "dimethyl-sulfoxide": "C2H6SO", "dmso": "C2H6SO",
    "chloroform": "HCCl3", "dichloromethane": "H2CCl2", "carbon-tetrachloride": "CCl4",
}
BULK_PATTERN = re.compile(r"^([A-Z][a-z]?)-(fcc|bcc|hcp|diamond|sc)-(\d+)x(\d+)x(\d+)$")


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def build_system(spec: str) -> Atoms:
    """The starting structure named by ``spec`` (positions in Å)."""
    import ase.io

    name = _canonical(spec)
    if name in MD17_MOLECULES:
        source = resources.files("boltzmatch.data") / "molecules" / f"{name}.xyz"
        with resources.as_file(source) as path:
            return ase.io.read(path, format="xyz")
    if name in OPENMM_SYSTEMS:
        from .openmm_reference import alanine_dipeptide_atoms

        return alanine_dipeptide_atoms()
    if spec.startswith("smiles:"):
        return _from_smiles(spec[len("smiles:"):])
    match = BULK_PATTERN.match(spec.strip())
    if match:
        from ase.build import bulk

        symbol, lattice, *repeat = match.groups()
        try:
            crystal = bulk(symbol, lattice, cubic=lattice in ("fcc", "bcc", "diamond", "sc"))
        except Exception as exc:
            raise BoltzmatchError(f"bulk spec {spec!r}: {exc}") from None
        return crystal.repeat(tuple(int(r) for r in repeat))
    if Path(spec).exists():
        from .readers import read_structures

        return read_structures(spec)[0]
    from ase.collections import g2

    if spec in g2.names:
        return g2[spec]
    if name in COMMON_NAMES:
        return g2[COMMON_NAMES[name]]
    raise BoltzmatchError(
        f"unknown system {spec!r}; expected a molecule name ({', '.join(MD17_MOLECULES + OPENMM_SYSTEMS)}), "
        "an ASE g2 name or a common one (methanol, water, acetone, …), smiles:SMILES, a bulk spec like "
        "Cu-fcc-3x3x3, or a structure file"
    )


def _from_smiles(smiles: str, seed: int = 42) -> Atoms:
    try:
        from rdkit import Chem
        from rdkit.Chem import AllChem
    except ImportError:
        raise BoltzmatchError("smiles: systems need RDKit; install boltzmatch[rdkit]") from None
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise BoltzmatchError(f"could not parse SMILES {smiles!r}")
    mol = Chem.AddHs(mol)
    if AllChem.EmbedMolecule(mol, randomSeed=seed) != 0:
        raise BoltzmatchError(f"RDKit could not embed SMILES {smiles!r} in 3D")
    AllChem.MMFFOptimizeMolecule(mol)
    return Atoms([a.GetSymbol() for a in mol.GetAtoms()], positions=mol.GetConformer().GetPositions())
