"""Energy, force and stress error statistics accumulated over batches (sums, so they all-reduce)."""

from __future__ import annotations

import math

import torch

from ..data.atoms_batch import AtomsBatch
from ..models.base import voigt
from ..units import GPA_PER_EV_A3


class ErrorAccumulator:
    """Sums of absolute and squared errors; :meth:`result` gives MAE/RMSE.

    Energies in eV (also per atom), forces in eV/Å, crystals' stress in eV/Å³ (over the 6 Voigt components, as
    ``evaluate``); the results are reported in meV, meV/atom, meV/Å and GPa. A batch may also bring an
    objective's mean over its structures (``loss``), summed with the structures as weights: :meth:`mean_loss`.
    A padded batch (``batch.weight``, training/padding.py) counts its own structures and atoms alone; those
    counts are summed on the device with the errors (the host does not know them), and an unpadded batch's on
    the host, as before, but for its count of stress labels (which structures carry one is on the device).
    """

    FIELDS = ("n_structures", "e_abs", "e_sq", "e_abs_atom", "e_sq_atom", "n_components", "f_abs", "f_sq",
              "n_loss", "loss", "n_stress", "s_abs", "s_sq")
    #: the sums each batch adds on the device, in this order (:meth:`_read`)
    SUMS = ("e_abs", "e_sq", "e_abs_atom", "e_sq_atom", "f_abs", "f_sq", "loss", "s_abs", "s_sq")

    def __init__(self):
        self.sums = dict.fromkeys(self.FIELDS, 0.0)
        #: the error sums of batches added since the last read, on their device: read back once, not per batch
        self._pending: torch.Tensor | None = None
        #: padded batches' counts (n_structures, n_components, n_loss), on their device like the sums
        self._counted: torch.Tensor | None = None

    def add(self, batch: AtomsBatch, energy: torch.Tensor, forces: torch.Tensor | None,
            loss: torch.Tensor | None = None, stress: torch.Tensor | None = None) -> None:
        """Add a batch's errors: ``energy`` (n_structures,) eV, ``forces`` (n_atoms, 3) eV/Å, ``stress``
        (n_structures, 3, 3) eV/Å³ against its labels, and the objective's mean ``loss`` over its structures."""
        if batch.weight is not None:
            return self._add_padded(batch, energy, forces, loss, stress)
        terms = []
        if batch.energy is not None:
            diff = (energy.detach() - batch.energy).double()
            per_atom = diff / batch.atoms_per_structure.double()
            self.sums["n_structures"] += diff.numel()
            terms += [diff.abs().sum(), (diff**2).sum(), per_atom.abs().sum(), (per_atom**2).sum()]
        else:
            terms += [torch.zeros((), dtype=torch.float64, device=batch.positions.device)] * 4
        if forces is not None and batch.forces is not None:
            diff = (forces.detach() - batch.forces).double()
            self.sums["n_components"] += diff.numel()
            terms += [diff.abs().sum(), (diff**2).sum()]
        else:
            terms += [torch.zeros((), dtype=torch.float64, device=batch.positions.device)] * 2
        if loss is not None:
            self.sums["n_loss"] += batch.n_structures
            terms.append(loss.detach().double() * batch.n_structures)
        else:
            terms.append(torch.zeros((), dtype=torch.float64, device=batch.positions.device))
        terms += self._stress_terms(batch, stress, None)
        added = torch.stack(terms)
        self._pending = added if self._pending is None else self._pending + added
        if stress is not None and batch.stress is not None:  # which structures carry a stress is on the device
            zero = torch.zeros((), dtype=torch.float64, device=batch.positions.device)
            counted = torch.stack([zero, zero, zero, self._stress_count(batch, None)])
            self._counted = counted if self._counted is None else self._counted + counted

    @staticmethod
    def _stress_terms(batch: AtomsBatch, stress: torch.Tensor | None, weight: torch.Tensor | None) -> list:
        """The sums of absolute and squared stress errors (eV/Å³, Voigt components), weighted where given."""
        if stress is None or batch.stress is None:
            return [torch.zeros((), dtype=torch.float64, device=batch.positions.device)] * 2
        labelled = batch.stress_labelled
        diff = torch.where(labelled[:, None], voigt(stress.detach()) - batch.stress, 0.0).double()
        if weight is not None:
            diff = diff * weight[:, None]
        return [diff.abs().sum(), (diff**2).sum()]

    @staticmethod
    def _stress_count(batch: AtomsBatch, weight: torch.Tensor | None) -> torch.Tensor:
        """The number of stress components with a label (weighted where given): 6 per labelled structure."""
        labelled = batch.stress_labelled.double()
        return 6 * (labelled if weight is None else labelled * weight).sum()

    def _add_padded(self, batch: AtomsBatch, energy: torch.Tensor, forces: torch.Tensor | None,
                    loss: torch.Tensor | None, stress: torch.Tensor | None) -> None:
        """:meth:`add` for a padded batch: each error weighted by its structure's weight (0 for the padding)."""
        weight = batch.weight.double()
        atom_weight = weight[batch.structure_index]
        zero = torch.zeros((), dtype=torch.float64, device=batch.positions.device)
        terms, counts = [], [zero, zero, zero, zero]
        if batch.energy is not None:
            diff = (energy.detach() - batch.energy).double() * weight
            per_atom = diff / batch.atoms_per_structure.double()
            terms += [diff.abs().sum(), (diff**2).sum(), per_atom.abs().sum(), (per_atom**2).sum()]
            counts[0] = weight.sum()
        else:
            terms += [zero] * 4
        if forces is not None and batch.forces is not None:
            diff = (forces.detach() - batch.forces).double() * atom_weight[:, None]
            terms += [diff.abs().sum(), (diff**2).sum()]
            counts[1] = atom_weight.sum() * diff.shape[1]
        else:
            terms += [zero] * 2
        if loss is not None:  # the objective's mean over the batch's own structures
            terms.append(loss.detach().double() * weight.sum())
            counts[2] = weight.sum()
        else:
            terms.append(zero)
        terms += self._stress_terms(batch, stress, weight)
        if stress is not None and batch.stress is not None:
            counts[3] = self._stress_count(batch, weight)
        added, counted = torch.stack(terms), torch.stack(counts)
        self._pending = added if self._pending is None else self._pending + added
        self._counted = counted if self._counted is None else self._counted + counted

    def _read(self) -> None:
        if self._pending is not None:
            for name, value in zip(self.SUMS, self._pending.tolist(), strict=True):
                self.sums[name] += value
            self._pending = None
        if self._counted is not None:
            counts = ("n_structures", "n_components", "n_loss", "n_stress")
            for name, value in zip(counts, self._counted.tolist(), strict=True):
                self.sums[name] += value
            self._counted = None

    def as_tensor(self) -> torch.Tensor:
        self._read()
        return torch.tensor([self.sums[k] for k in self.FIELDS], dtype=torch.float64)

    def load_tensor(self, values: torch.Tensor) -> None:
        self._pending = self._counted = None
        self.sums = {k: float(v) for k, v in zip(self.FIELDS, values)}

    def mean_loss(self) -> float | None:
        """The mean over structures of the objective the batches brought; ``None`` if none did."""
        self._read()
        return self.sums["loss"] / self.sums["n_loss"] if self.sums["n_loss"] else None

    def result(self) -> dict[str, float]:
        self._read()
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
        if s["n_stress"]:
            n = s["n_stress"]
            out["stress_mae_GPa"] = GPA_PER_EV_A3 * s["s_abs"] / n
            out["stress_rmse_GPa"] = GPA_PER_EV_A3 * math.sqrt(s["s_sq"] / n)
        return out
