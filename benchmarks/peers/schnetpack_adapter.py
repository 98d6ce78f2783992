"""boltzmatch's SchNetPack adapter against SchNetPack 2.1.1's own calculator (peer for external_models.py).

Runs in SchNetPack's virtual environment with boltzmatch on PYTHONPATH (src and tests). Writes a
SchNetPack model file as spktrain saves it (SchNet, 64 features, 3 interactions, cutoff 5 Å, random
weights: equality and speed do not depend on training), compares energies and forces of the adapter
with SpkCalculator on 64 frames (float64), then times boltzmatch's batched MD with 64 replicas
against ASE's Langevin driving SpkCalculator (one Atoms at a time, 4 replicas). Prints one JSON line.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from ase.io import read
from common import ase_langevin_rate
from schnetpack.interfaces import SpkCalculator
from schnetpack.transform import ASENeighborList

import boltzmatch
from boltzmatch.data import AtomsBatch
from boltzmatch.models import build_model, energy_and_forces
from helpers import schnetpack_model_file


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    path = schnetpack_model_file(work / "best_model", "schnet", cutoff=5.0, n_features=64, n_interactions=3)
    frames = read(args.frames, ":64")

    def calculator(dtype):
        return SpkCalculator(model_file=str(path), neighbor_list=ASENeighborList(cutoff=5.0), energy_key="energy",
                             force_key="forces", energy_unit="eV", position_unit="Ang", dtype=dtype)

    model = build_model({"name": "schnetpack", "file": str(path), "dtype": "float64"})
    reference = calculator(torch.float64)
    de = df = 0.0
    for atoms in frames:
        energy, forces = energy_and_forces(model, AtomsBatch.from_atoms([atoms], dtype=torch.float64))
        atoms = atoms.copy()
        atoms.calc = reference
        de = max(de, abs(float(energy.detach()) - atoms.get_potential_energy()))
        df = max(df, float(np.abs(forces.numpy() - atoms.get_forces()).max()))

    summary = boltzmatch.simulate(str(path), frames, out=work / "md64", replicas=64, time=args.steps * 0.5 / 1000,
                                  timestep=0.5, temperature=500.0, write_trajectories=False, progress=False,
                                  max_deviation=1e9, max_temperature=1e9, interval=args.steps)
    ours = summary["replica_steps_per_second"]
    theirs = ase_langevin_rate(frames, calculator(torch.float32), replicas=4, steps=max(20, args.steps // 4))
    print(json.dumps({"max_energy_difference_eV": de, "max_force_difference_eV_A": df,
                      "boltzmatch_replica_steps_per_s": ours, "ase_replica_steps_per_s": theirs,
                      "torch": torch.__version__, "model_dtype_md": "float32 (as saved)"}))


if __name__ == "__main__":
    main()
