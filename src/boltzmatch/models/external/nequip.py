"""NequIP (0.19) models as an `EnergyModel`: a ``.nequip.zip`` package or a training ``.ckpt``.

nequip loads both as an eager ``GraphModel`` (``load_saved_model``): ``GraphModel.model`` is a
``ForceStressOutput`` whose ``func`` is the energy network. boltzmatch calls that energy network
with NequIP's input dict built from its own neighbour list (``edge_index`` = (centre, neighbour),
``edge_cell_shift`` in integer cell units, ``atom_types`` = indices into the model's ``type_names``)
and takes forces by its own autograd, so every objective differentiates twice.

Compiled files (``nequip-compile``: TorchScript ``.nequip.pth`` or AOTInductor ``.nequip.pt2``) are
inference artefacts with frozen weights and the force autograd baked in: none of the training
objectives (energy, forces, fisher, ism, ssm, dsm, cd) can use them, and boltzmatch refuses them
with that reason; import the ``.nequip.zip`` package (or the ``.ckpt``) instead.

nequip 0.19 needs e3nn ≥ 0.6 and mace-torch 0.3.16 pins e3nn 0.4.4, so the ``nequip`` extra
cannot share an environment with ``mace`` (and is not in ``all``); its tests run in NequIP's own
environment from ``benchmarks/external_models.py --part nequip``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ...data.atoms_batch import AtomsBatch
from ...errors import BoltzmatchError
from ..neighbors import neighbor_list
from .base import ExternalModel, quiet_foreign, require

COMPILED_SUFFIXES = (".pth", ".pt2")


def load_graph_model(path: str | Path) -> nn.Module:
    """An eager NequIP ``GraphModel`` from a ``.nequip.zip`` package or a ``.ckpt`` checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise BoltzmatchError(f"{path}: no such model file")
    if path.suffix in COMPILED_SUFFIXES:
        raise BoltzmatchError(
            f"{path}: a compiled NequIP model (nequip-compile) is inference-only, with frozen weights and its force "
            "autograd built in, so no objective can train it; import the .nequip.zip package or the .ckpt instead"
        )
    require("nequip", "nequip", "model 'nequip'")
    with quiet_foreign():
        from nequip.model.saved_models.load_utils import load_saved_model
        from nequip.utils.global_state import global_state_initialized, set_global_state

        if not global_state_initialized():
            set_global_state()
        try:
            model = load_saved_model(str(path), compile_mode="eager")
        except Exception as exc:  # noqa: BLE001 - nequip's loaders raise many kinds
            raise BoltzmatchError(f"{path}: cannot be read as a NequIP package or checkpoint "
                                  f"({type(exc).__name__}: {exc})") from None
    return model


class NequIPModel(ExternalModel):
    """A NequIP potential (eV, Å) from a ``.nequip.zip`` package or ``.ckpt`` checkpoint.

    Parameters
    ----------
    file : the package or checkpoint; the model's ``type_names`` must be element symbols (NequIP's
        default), which is how boltzmatch maps atoms to NequIP types
    elements : filled in from the file
    """

    name = "nequip"
    format = "NequIP package (.nequip.zip) or checkpoint (.ckpt), loaded eagerly by nequip"

    def __init__(self, file: str | None = None, elements: tuple[int, ...] = ()):
        if not file:
            raise BoltzmatchError("model config: nequip needs 'file' (a .nequip.zip package or .ckpt checkpoint)")
        module = load_graph_model(file)
        super().__init__(module, cutoff=0.0, elements=[])
        self._configure(str(file))

    @classmethod
    def from_graph_model(cls, module: nn.Module) -> NequIPModel:
        """The adapter around an in-memory NequIP ``GraphModel`` (as built by ``NequIPGNNModel``)."""
        model = cls.__new__(cls)
        ExternalModel.__init__(model, module, cutoff=0.0, elements=[])
        model._configure("GraphModel")
        return model

    def _configure(self, source: str) -> None:
        from ase.data import atomic_numbers

        metadata = self.module.metadata
        names = str(metadata["type_names"]).split(" ")
        unknown = [n for n in names if n not in atomic_numbers]
        if unknown:
            raise BoltzmatchError(f"{source}: NequIP type names {', '.join(unknown)} are not element symbols; "
                                  "boltzmatch maps atoms to types by element")
        self.cutoff = float(metadata["r_max"])
        self.elements = [atomic_numbers[n] for n in names]
        index = torch.full((self.max_z + 1,), -1, dtype=torch.long)
        index[torch.tensor(self.elements)] = torch.arange(len(self.elements))
        self.register_buffer("z_index", index, persistent=False)
        forces = self.module.model
        self.energy_network = getattr(forces, "func", forces)  # ForceStressOutput(func=energy network)

    def foreign_energy(self, batch: AtomsBatch) -> torch.Tensor:
        edges = neighbor_list(batch, self.cutoff)
        positions = batch.positions if batch.positions.requires_grad else batch.positions.detach()
        data = {
            "pos": positions, "edge_index": torch.stack([edges.i, edges.j]),
            "edge_cell_shift": edges.unit_shifts.to(positions.dtype), "cell": batch.cell.to(positions.dtype),
            "pbc": batch.pbc, "batch": batch.structure_index, "num_atoms": batch.atoms_per_structure,
            "atom_types": self.z_index[batch.numbers],
        }
        return self.energy_network(data)["total_energy"].reshape(-1)

    def export_module(self) -> nn.Module:
        raise BoltzmatchError("writing NequIP files needs nequip's own packaging (nequip-package from a "
                              "checkpoint); boltzmatch exports MACE and SchNetPack models")

    @classmethod
    def describe(cls, path: str | Path) -> dict:
        module = load_graph_model(path)
        return {"dtype": str(module.metadata.get("model_dtype", "float32"))}
