"""SchNetPack 2 models as an `EnergyModel`: the ``best_model`` file ``spktrain`` writes.

The file holds a pickled ``schnetpack.model.NeuralNetworkPotential``: input modules (pairwise
distances), a representation (SchNet, PaiNN, SO3net, ...), output modules (``Atomwise`` energy,
``Forces``) and postprocessors (``CastTo64``, ``AddOffsets`` with the training data's mean and
atom references). boltzmatch feeds it SchNetPack's input dict from its own neighbour list
(``idx_i``, ``idx_j``, ``offsets`` in the model's length unit, ``idx_m``), runs every module but
the derivative ones (``Forces``, whose autograd boltzmatch's helper does once, twice
differentiable) and always applies the postprocessors, as SchNetPack's calculator does.

SchNetPack 2.1.1 needs torch < 2.5 (it imports ``torch.utils.data.dataloader.T_co``) and pins
sympy ≤ 1.12, so it cannot share an environment with torch 2.13: the adapter is exercised in
SchNetPack's own environment (``benchmarks/external_models.py --part schnetpack``).
"""

from __future__ import annotations

import torch
from torch import nn

from ...data.atoms_batch import AtomsBatch
from ...errors import BoltzmatchError
from ..neighbors import neighbor_list
from .base import ExternalModel, load_pickled_module, require


def _unit(name: str | float, kind: str) -> float:
    """Size of unit ``name`` in eV (energy) or Å (length), by ASE's table."""
    from ase import units

    if isinstance(name, (int, float)):
        return float(name)
    aliases = {"angstrom": "Ang", "ang": "Ang", "a": "Ang", "bohr": "Bohr", "nm": "nm", "ev": "eV",
               "hartree": "Hartree", "ha": "Hartree", "kcal/mol": "kcal/mol", "kj/mol": "kJ/mol", "mev": "meV"}
    key = aliases.get(str(name).lower())
    table = {"Ang": 1.0, "Bohr": units.Bohr, "nm": 10.0, "eV": 1.0, "meV": 1e-3, "Hartree": units.Hartree,
             "kcal/mol": units.kcal / units.mol, "kJ/mol": units.kJ / units.mol}
    if key not in table:
        raise BoltzmatchError(f"model config: unknown {kind} unit {name!r}; expected one of "
                              + ", ".join(k for k, v in aliases.items()))
    return table[key]


class SchNetPackModel(ExternalModel):
    """A SchNetPack 2 model file as a potential in eV and Å.

    Parameters
    ----------
    file : ``best_model`` from ``spktrain`` (or any ``torch.save`` of a ``NeuralNetworkPotential``)
    energy_key : the model output that is the energy (SchNetPack's ``energy``)
    energy_unit : the unit the model predicts energies in (eV, kcal/mol, Hartree, ...)
    length_unit : the unit of its positions (Angstrom, Bohr, nm)
    elements : atomic numbers it knows (default: every element, as SchNetPack's embedding does)
    """

    name = "schnetpack"
    format = "SchNetPack 2 model file (best_model from spktrain)"

    def __init__(self, file: str | None = None, energy_key: str = "energy", energy_unit: str = "eV",
                 length_unit: str = "Angstrom", elements: tuple[int, ...] = ()):
        if not file:
            raise BoltzmatchError("model config: schnetpack needs 'file' (a SchNetPack model file)")
        require("schnetpack", "schnetpack", "model 'schnetpack'")
        module = load_pickled_module(file, "SchNetPack")
        if not all(hasattr(module, key) for key in ("representation", "output_modules", "postprocessors")):
            raise BoltzmatchError(f"{file}: not a SchNetPack NeuralNetworkPotential")
        energy_factor, length_factor = _unit(energy_unit, "energy"), _unit(length_unit, "length")
        cutoff = _cutoff_of(module.representation, file) * length_factor
        super().__init__(module, cutoff=cutoff, elements=list(elements))
        self.energy_factor, self.length_factor = energy_factor, length_factor
        self.energy_key = energy_key
        outputs = set(module.model_outputs or [])
        if outputs and energy_key not in outputs:
            raise BoltzmatchError(f"model config: key 'energy_key' must be one of {', '.join(sorted(outputs))}, "
                                  f"got {energy_key!r}")

    def foreign_energy(self, batch: AtomsBatch) -> torch.Tensor:
        from schnetpack import properties

        edges = neighbor_list(batch, self.cutoff)
        positions = batch.positions if batch.positions.requires_grad else batch.positions.detach()
        scale = 1.0 / self.length_factor
        inputs = {
            properties.Z: batch.numbers, properties.R: positions * scale,
            properties.cell: batch.cell.to(positions.dtype) * scale, properties.pbc: batch.pbc,
            properties.n_atoms: batch.atoms_per_structure, properties.idx_m: batch.structure_index,
            properties.idx: torch.arange(batch.n_structures, device=positions.device),
            properties.idx_i: edges.i, properties.idx_j: edges.j, properties.offsets: edges.shifts * scale,
        }
        module = self.module
        for m in module.input_modules:
            inputs = m(inputs)
        inputs = module.representation(inputs)
        for m in module.output_modules:
            if getattr(m, "required_derivatives", None):
                continue  # Forces/Strain: the autograd is boltzmatch's, once
            inputs = m(inputs)
        for pp in module.postprocessors:
            inputs = pp(inputs)
        return inputs[self.energy_key] * self.energy_factor

    def export_module(self) -> nn.Module:
        module = self.copy_module()
        offsets = self.offsets()
        if not offsets:
            return module
        add = [pp for pp in module.postprocessors if type(pp).__name__ == "AddOffsets"
               and getattr(pp, "_property", self.energy_key) == self.energy_key]
        if not add:
            raise BoltzmatchError("this SchNetPack model has no AddOffsets postprocessor to take boltzmatch's "
                                  "per-element energy offsets; export needs one")
        with torch.no_grad():
            for z, value in offsets.items():
                add[0].atomref[z] += value / self.energy_factor
        add[0].add_atomrefs = True
        return module


def _cutoff_of(representation: nn.Module, file) -> float:
    for owner in (representation, getattr(representation, "cutoff_fn", None)):
        value = getattr(owner, "cutoff", None)
        if value is not None:
            return float(value)
    raise BoltzmatchError(f"{file}: cannot find the representation's cutoff (expected .cutoff or .cutoff_fn.cutoff)")
