"""boltzmatch's NequIP adapter on real NequIP files (peer for external_models.py --part nequip).

Runs in NequIP 0.19's virtual environment with boltzmatch installed. Trains a small NequIP on EMT
copper with ``nequip-train`` (nequip's own minimal EMT config shipped in its package, 3 epochs,
radial MLP width 16), packages it with ``nequip-package``, then: energies and forces of the
adapter against ``NequIPCalculator`` for the package and the checkpoint on 8 rattled 2×2×2 cells;
a Fisher fine-tune in boltzmatch from the package on EMT frames at 300 K, force MAE before and
after on a separately seeded EMT trajectory. Prints one JSON line.
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk

import boltzmatch
from boltzmatch.data import AtomsBatch, generate
from boltzmatch.models import build_model, energy_and_forces


def nequip_files(work: Path) -> tuple[Path, Path]:
    import nequip

    bin_dir = Path(sys.executable).parent
    config = (Path(nequip.__file__).parent / "utils" / "unittests" / "minimal_toy_emt.yaml").read_text()
    config = config.replace("${int_div:${num_features},${oc.env:TEST_VAL_TWO}}", "16")
    config = config.replace("max_epochs: 5", "max_epochs: 3")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "emt.yaml").write_text(config)
    subprocess.run([str(bin_dir / "nequip-train"), "-cp", str(work), "-cn", "emt", f"hydra.run.dir={work / 'out'}"],
                   check=True, capture_output=True, cwd=work)  # Lightning writes lightning_logs/ in the cwd
    package = work / "cu.nequip.zip"
    subprocess.run([str(bin_dir / "nequip-package"), "build", str(work / "out" / "best.ckpt"), str(package)],
                   check=True, capture_output=True)
    return package, work / "out" / "best.ckpt"


def main():
    from nequip.integrations.ase import NequIPCalculator

    parser = argparse.ArgumentParser()
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    work = Path(args.work)
    package, checkpoint = nequip_files(work / "nequip")
    worst = {}
    for name, path in (("package", package), ("checkpoint", checkpoint)):
        model = build_model({"name": "nequip", "file": str(path), "dtype": "float64"})
        calculator = NequIPCalculator._from_saved_model(str(path), device="cpu")
        de = df = 0.0
        for seed in range(8):
            atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
            atoms.rattle(0.05, seed=seed)
            energy, forces = energy_and_forces(model, AtomsBatch.from_atoms([atoms], dtype=torch.float64))
            atoms.calc = calculator
            de = max(de, abs(float(energy.detach()) - atoms.get_potential_energy()))
            df = max(df, float(np.abs(forces.numpy() - atoms.get_forces()).max()))
        worst[name] = {"max_energy_difference_eV": de, "max_force_difference_eV_A": df}

    data = {}
    for name, seed in (("train", 1), ("test", 2)):
        data[name] = work / f"cu_emt_{name}.xyz"
        if not data[name].exists():
            generate("Cu-fcc-2x2x2", out=data[name], calculator="emt", temperature=300, time=4.0, interval=10,
                     timestep=2.0, equilibration=200, seed=seed, progress=False)
    before = boltzmatch.evaluate(package, data["test"])
    boltzmatch.finetune(package, data=data["train"], out=work / "nequip-fisher", objective="fisher",
                        temperature=300.0, epochs=20, lr=1e-3, batch_size=8, progress=False)
    after = boltzmatch.evaluate(work / "nequip-fisher", data["test"])
    print(json.dumps({"calculator": worst, "force_mae_before_meV_A": 1000 * before["force_mae"],
                      "force_mae_after_fisher_meV_A": 1000 * after["force_mae"], "nequip_epochs": 3,
                      "finetune_epochs": 20}))


if __name__ == "__main__":
    main()
