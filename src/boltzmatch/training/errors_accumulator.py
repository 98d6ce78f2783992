"""Energy and force error statistics accumulated over batches (sums, so they all-reduce)."""

from __future__ import annotations

import math

import torch

from ..data.atoms_batch import AtomsBatch


class ErrorAccumulator:
    """Sums of absolute and squared errors; :meth:`result` gives MAE/RMSE.

    Energies in eV (also per atom), forces in eV/Å; the results are reported in meV,
    meV/atom and meV/Å.
    """

    FIELDS = ("n_structures", "e_abs", "e_sq", "e_abs_atom", "e_sq_atom", "n_components", "f_abs", "f_sq")

    def __init__(self):
        self.sums = dict.fromkeys(self.FIELDS, 0.0)

    def add(self, batch: AtomsBatch, energy: torch.Tensor, forces: torch.Tensor | None) -> None:
        s = self.sums
        if batch.energy is not None:
            diff = (energy.detach() - batch.energy).double()
            per_atom = diff / batch.atoms_per_structure.double()
            s["n_structures"] += diff.numel()
            s["e_abs"] += float(diff.abs().sum())
            s["e_sq"] += float((diff**2).sum())
            s["e_abs_atom"] += float(per_atom.abs().sum())
            s["e_sq_atom"] += float((per_atom**2).sum())
        if forces is not None and batch.forces is not None:
            diff = (forces.detach() - batch.forces).double()
            s["n_components"] += diff.numel()
            s["f_abs"] += float(diff.abs().sum())
            s["f_sq"] += float((diff**2).sum())

    def as_tensor(self) -> torch.Tensor:
        return torch.tensor([self.sums[k] for k in self.FIELDS], dtype=torch.float64)

    def load_tensor(self, values: torch.Tensor) -> None:
        self.sums = {k: float(v) for k, v in zip(self.FIELDS, values)}

    def result(self) -> dict[str, float]:
        s = self.sums
        out: dict[str, float] = {}
        if s["n_structures"]:
            n = s["n_structures"]
            out["energy_mae_meV"] = 1000 * s["e_abs"] / n
            out["energy_rmse_meV"] = 1000 * math.sqrt(s["e_sq"] / n)
            out["energy_mae_meV_atom"] = 1000 * s["e_abs_atom"] / n
            out["energy_rmse_meV_atom"] = 1000 * math.sqrt(s["e_sq_atom"] / n)
        if s["n_components"]:
            n = s["n_components"]
            out["force_mae_meV_A"] = 1000 * s["f_abs"] / n
            out["force_rmse_meV_A"] = 1000 * math.sqrt(s["f_sq"] / n)
        return out
