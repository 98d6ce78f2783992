"""Build the shipped starting geometries of the MD17 molecules (developer tool, run once).

Each molecule is embedded from SMILES with RDKit (ETKDG, fixed seed), relaxed with MMFF94,
then relaxed with GFN2-xTB (tblite) to a force below 0.01 eV/Å, and written as xyz in Å to
``src/boltzmatch/data/molecules/NAME.xyz``. The package reads these files, so RDKit is only
needed to run this script or to start from an arbitrary ``smiles:...`` system.

Usage: python scripts/build_molecules.py
"""

from pathlib import Path

import ase.io
from ase import Atoms
from ase.optimize import BFGS
from rdkit import Chem
from rdkit.Chem import AllChem
from tblite.ase import TBLite

SMILES = {
    "ethanol": "CCO",
    "malonaldehyde": "OC=CC=O",
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "benzene": "c1ccccc1",
    "uracil": "O=C1C=CNC(=O)N1",
    "toluene": "Cc1ccccc1",
    "naphthalene": "c1ccc2ccccc2c1",
    "salicylic-acid": "O=C(O)c1ccccc1O",
}

OUT = Path(__file__).resolve().parents[1] / "src" / "boltzmatch" / "data" / "molecules"


def embed(smiles: str) -> Atoms:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=42)
    AllChem.MMFFOptimizeMolecule(mol)
    pos = mol.GetConformer().GetPositions()
    return Atoms([a.GetSymbol() for a in mol.GetAtoms()], positions=pos)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, smiles in SMILES.items():
        atoms = embed(smiles)
        atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
        BFGS(atoms, logfile=None).run(fmax=0.01, steps=500)
        atoms.calc = None
        ase.io.write(OUT / f"{name}.xyz", atoms, format="xyz", comment=f"{name} {smiles} GFN2-xTB minimum")
        print(name, atoms.get_chemical_formula())


if __name__ == "__main__":
    main()
