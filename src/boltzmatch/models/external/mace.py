"""MACE (``mace-torch``) as an `EnergyModel`: a model file from ``mace_run_train`` or a new one.

``MACEModel(file=...)`` reads a model saved by MACE's own training (``*.model``: the pickled
``MACE``/``ScaleShiftMACE`` module); ``MACEModel(r_max=..., hidden_irreps=...)`` builds a
``ScaleShiftMACE`` from MACE's own constructor with the arguments ``mace_run_train`` uses
(residual interaction blocks, SiLU gate, Bessel radial basis), for boltzmatch's trainer.

boltzmatch builds the graph itself (its neighbour list, MACE's input dict: one-hot
``node_attrs`` over the model's ``atomic_numbers``, ``edge_index`` = (sender, receiver),
``shifts`` in Å) and asks MACE for its energy without forces; forces come from the one autograd
helper, so every objective (fisher, ism, ssm, dsm, cd) differentiates through MACE twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ...data.atoms_batch import AtomsBatch
from ...errors import BoltzmatchError
from ..neighbors import neighbor_list
from . import mace_contraction, mace_edge_product
from .base import ExternalModel, load_pickled_module, quiet_foreign, require


def _build_mace(*, elements: Sequence[int], r_max: float, num_bessel: int, num_polynomial_cutoff: int, max_ell: int,
                num_interactions: int, hidden_irreps: str, mlp_irreps: str, correlation: int,
                radial_mlp: Sequence[int], avg_num_neighbors: float) -> nn.Module:
    require("mace", "mace", "model 'mace'")
    import numpy as np

    try:
        with quiet_foreign():
            from e3nn import o3
            from mace import modules

            return modules.ScaleShiftMACE(
                r_max=float(r_max), num_bessel=int(num_bessel), num_polynomial_cutoff=int(num_polynomial_cutoff),
                max_ell=int(max_ell),
                interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
                interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
                num_interactions=int(num_interactions), num_elements=len(elements),
                hidden_irreps=o3.Irreps(hidden_irreps), MLP_irreps=o3.Irreps(mlp_irreps),
                atomic_energies=np.zeros(len(elements)), avg_num_neighbors=float(avg_num_neighbors),
                atomic_numbers=list(elements), correlation=int(correlation), gate=torch.nn.functional.silu,
                radial_MLP=[int(n) for n in radial_mlp], radial_type="bessel",
                atomic_inter_scale=1.0, atomic_inter_shift=0.0,
            )
    except (ValueError, AssertionError) as exc:
        raise BoltzmatchError(f"model config: invalid MACE architecture: {exc}") from None


class MACEModel(ExternalModel):
    """A MACE potential (eV, Å), from a model file or built from MACE's constructor arguments.

    Parameters
    ----------
    file : a model file written by ``mace_run_train`` (or by :meth:`export`); when given, the
        architecture keys below are not used
    r_max : cutoff radius, Å
    num_bessel, num_polynomial_cutoff : radial basis size and polynomial envelope order
    max_ell : highest ℓ of the edge spherical harmonics
    num_interactions : message-passing layers
    hidden_irreps : node features, e.g. ``"32x0e + 32x1o"`` (MACE's ``--hidden_irreps``)
    mlp_irreps : readout MLP of the last layer
    correlation : body order of the symmetric contraction
    radial_mlp : hidden widths of the radial MLP
    avg_num_neighbors : the message normalisation (MACE takes it from the training data)
    elements : atomic numbers the model knows (filled in from the data)
    head : for multi-head models, the head to use (default: the first)
    """

    name = "mace"
    format = "MACE model file (torch.save of the module, as mace_run_train writes)"
    #: pairs beyond r_max contribute exactly nothing (MACE's polynomial envelope is masked there, with its slope):
    #: the model takes lists that hold them (``neighbor_list(..., masked=True)``), such as every pair of each molecule
    masks_beyond_cutoff = True

    def __init__(
        self,
        file: str | None = None,
        r_max: float = 5.0,
        num_bessel: int = 8,
        num_polynomial_cutoff: int = 5,
        max_ell: int = 3,
        num_interactions: int = 2,
        hidden_irreps: str = "32x0e + 32x1o",
        mlp_irreps: str = "16x0e",
        correlation: int = 3,
        radial_mlp: tuple[int, ...] = (64, 64, 64),
        avg_num_neighbors: float = 8.0,
        elements: tuple[int, ...] = (),
        head: str | None = None,
    ):
        if file:
            module = load_pickled_module(file, "MACE")
            if not hasattr(module, "atomic_numbers") or not hasattr(module, "r_max"):
                raise BoltzmatchError(f"{file}: not a MACE model (no atomic_numbers / r_max)")
            known = [int(z) for z in module.atomic_numbers.tolist()]
            cutoff = float(module.r_max)
        else:
            if not elements:
                raise BoltzmatchError("model config: mace needs 'elements' (atomic numbers) or a 'file'")
            known = sorted(int(z) for z in elements)
            module = _build_mace(
                elements=known, r_max=r_max, num_bessel=num_bessel, num_polynomial_cutoff=num_polynomial_cutoff,
                max_ell=max_ell, num_interactions=num_interactions, hidden_irreps=hidden_irreps,
                mlp_irreps=mlp_irreps, correlation=correlation, radial_mlp=radial_mlp,
                avg_num_neighbors=avg_num_neighbors,
            )
            cutoff = float(r_max)
        # same function, cheaper order of sums (see those modules)
        mace_contraction.accelerate(module)
        mace_edge_product.accelerate(module)
        super().__init__(module, cutoff=cutoff, elements=known)
        self.built_here = not file
        heads = list(getattr(module, "heads", None) or ["Default"])
        if head is not None and head not in heads:
            raise BoltzmatchError(f"model config: key 'head' must be one of {', '.join(heads)}, got {head!r}")
        self.head_index = heads.index(head) if head is not None else 0
        index = torch.full((self.max_z + 1,), -1, dtype=torch.long)
        index[torch.tensor(known)] = torch.arange(len(known))
        self.register_buffer("z_index", index, persistent=False)

    def foreign_energy(self, batch: AtomsBatch) -> torch.Tensor:
        edges = neighbor_list(batch, self.cutoff, masked=self.masks_beyond_cutoff)  # MACE's envelope: 0 beyond r_max
        positions = batch.positions if batch.positions.requires_grad else batch.positions.detach()
        dtype = positions.dtype
        node_attrs = self._node_attrs(batch.numbers, dtype, batch.element_counts)
        counts = batch.atoms_per_structure
        ptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
        data = {
            "positions": positions, "node_attrs": node_attrs,
            "edge_index": torch.stack([edges.i, edges.j]), "shifts": edges.shifts.to(dtype),
            "unit_shifts": edges.unit_shifts.to(dtype), "cell": batch.cell.reshape(-1, 3).to(dtype),
            "batch": batch.structure_index, "ptr": ptr,
            "head": torch.full((batch.n_structures,), self.head_index, dtype=torch.long, device=positions.device),
        }
        return self.module(data, training=self.training, compute_force=False)["energy"]

    def _node_attrs(self, numbers: torch.Tensor, dtype: torch.dtype,
                    element_counts: tuple[tuple[int, int], ...] | None = None) -> torch.Tensor:
        """One-hot element attributes (n_atoms, n_elements), the same tensor again for the same ``numbers``
        tensor (MD passes one every step): the contraction groups the nodes by element once per attributes
        tensor. With the batch's ``element_counts`` (host) it is told the group sizes; without, grouping reads
        them back from a GPU."""
        cached = self.__dict__.get("_attrs")
        if cached is not None and cached[0] is numbers and cached[1] == numbers._version and cached[2].dtype == dtype:
            return cached[2]
        columns = self.z_index[numbers]
        attrs = torch.nn.functional.one_hot(columns, len(self.elements)).to(dtype)
        if element_counts is not None and all(z in self.elements for z, _ in element_counts):
            mace_contraction.group_by_counts(self.module, attrs, columns,
                                             {self.elements.index(z): c for z, c in element_counts})
        self.__dict__["_attrs"] = (numbers, numbers._version, attrs)
        return attrs

    def set_normalization(self, element_energy: dict[int, float], energy_scale: float) -> None:
        """A MACE built here takes the fitted reference energies (eV) as MACE's E0s and the energy
        scale (eV) as its ``scale_shift.scale``, so the exported file carries them."""
        if not self.built_here:
            return super().set_normalization(element_energy, energy_scale)
        with torch.no_grad():
            energies = self.module.atomic_energies_fn.atomic_energies
            for z, value in element_energy.items():
                if int(z) in self.elements:
                    energies[..., self.elements.index(int(z))] = float(value)
            self.module.scale_shift.scale.fill_(float(energy_scale))

    def export_module(self) -> nn.Module:
        module = self.copy_module()
        mace_contraction.restore(module)  # the file holds MACE's own classes only
        mace_edge_product.restore(module)
        with torch.no_grad():
            energies = module.atomic_energies_fn.atomic_energies
            for z, value in self.offsets().items():
                energies[..., self.elements.index(z)] += value
        return module
