"""``BoltzmatchCalculator``: a trained model as an ASE calculator (MD, relaxation, NEB, ...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes


class BoltzmatchCalculator(Calculator):
    """Energy (eV), forces (eV/Å) and, for periodic structures, stress (eV/Å³, ASE's Voigt order xx, yy, zz, yz,
    xz, xy) from a boltzmatch model: cell relaxations (``FrechetCellFilter``) and NPT MD take it.

    ``BoltzmatchCalculator(run_dir)`` loads ``run_dir/model.pt``; ``model=`` takes an
    ``EnergyModel`` directly. Computation happens in the model's dtype on ``device``.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, run_dir: str | Path | None = None, *, model: torch.nn.Module | None = None,
                 device: str = "cpu", **kwargs):
        super().__init__(**kwargs)
        if (run_dir is None) == (model is None):
            raise ValueError("give either run_dir or model")
        if model is None:
            from ..runs.run_dir import load

            model = load(run_dir, map_location=device)
        self.model = model.to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        from ..models.base import model_dtype

        self.dtype = model_dtype(self.model)
        self.device = torch.device(device)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        from ase.calculators.calculator import PropertyNotImplementedError

        from ..data.atoms_batch import AtomsBatch
        from ..data.labels import voigt_stress
        from ..models.base import energy_and_forces, energy_forces_and_stress

        batch = AtomsBatch.from_atoms([self.atoms], dtype=self.dtype, device=self.device)
        batch = batch.with_positions(batch.positions)
        if hasattr(self.model, "check_elements"):
            self.model.check_elements(batch.numbers, batch.elements)
        stress = None
        with torch.enable_grad():
            if "stress" in properties:
                if not (self.atoms.pbc.any() and self.atoms.cell.rank == 3):
                    raise PropertyNotImplementedError("stress needs a periodic structure with a cell of volume > 0")
                energy, forces, stress = energy_forces_and_stress(self.model, batch)
            else:
                energy, forces = energy_and_forces(self.model, batch)
        e = float(energy.detach()[0])
        self.results = {"energy": e, "free_energy": e,
                        "forces": forces.detach().cpu().double().numpy().astype(np.float64)}
        if stress is not None:
            self.results["stress"] = voigt_stress(stress[0].detach().cpu().double().numpy())
