"""`AtomsBatch`: a batch of structures as flat tensors (the contract of DESIGN.md).

Example
-------
>>> from ase.build import molecule
>>> batch = AtomsBatch.from_atoms([molecule("H2O"), molecule("CH4")])
>>> batch.positions.shape, batch.n_structures
(torch.Size([8, 3]), 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from ase import Atoms

from .labels import energy_of, forces_of, make_structure, stress_of


@dataclass
class AtomsBatch:
    """A batch of ``n_structures`` structures with ``n_atoms`` atoms in total.

    Attributes
    ----------
    positions : (n_atoms, 3) float, Å
    numbers : (n_atoms,) long, atomic numbers
    structure_index : (n_atoms,) long, which structure each atom belongs to
    cell : (n_structures, 3, 3) float, Å (zeros for molecules)
    pbc : (n_structures, 3) bool
    energy : (n_structures,) float, eV, optional
    forces : (n_atoms, 3) float, eV/Å, optional
    stress : (n_structures, 6) float, eV/Å³, optional: the stress of crystals in ASE's Voigt order (xx, yy, zz,
        yz, xz, xy) and sign; kept where some structure has one, with NaN rows for those that have none
        (:attr:`stress_labelled`)
    temperature : (n_structures,) float, K, optional: the thermostat temperature a frame was
        sampled at (score objectives weigh each frame by its own β)
    noise_level : (n_structures,) float, Å, optional: the noise σ a frame carries, read by
        noise-conditional models (diffusion); absent for clean frames
    pairs : optional :class:`~boltzmatch.models.neighbors.PairList`, candidate pairs found at
        earlier positions with a cutoff plus a skin (MD reuses them between steps);
        :func:`~boltzmatch.models.neighbors.neighbor_list` uses them only while they still cover
        every pair within its cutoff, and searches afresh otherwise
    elements : optional tuple of atomic numbers, known on the host, that holds every number in
        ``numbers`` (a superset is fine): a model checks its elements against it instead of
        reading ``numbers`` back from a GPU
    element_counts : optional tuple of (atomic number, atoms) for every element in ``numbers``, exact, counted
        on the host (by :meth:`from_atoms` and the packed data set): a model that groups atoms by element
        (MACE) takes the group sizes from it instead of reading them back from a GPU
    weight : (n_structures,) float, optional: 1 for the structures a loss averages over, 0 for the structure that
        pads a batch to a fixed shape (:mod:`boltzmatch.training.padding`); absent: every structure counts
    """

    positions: torch.Tensor
    numbers: torch.Tensor
    structure_index: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor
    energy: torch.Tensor | None = None
    forces: torch.Tensor | None = None
    stress: torch.Tensor | None = None
    temperature: torch.Tensor | None = None
    noise_level: torch.Tensor | None = None
    pairs: object | None = None
    elements: tuple[int, ...] | None = None
    element_counts: tuple[tuple[int, int], ...] | None = None
    weight: torch.Tensor | None = None

    @property
    def n_structures(self) -> int:
        return int(self.cell.shape[0])

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[0])

    @property
    def atoms_per_structure(self) -> torch.Tensor:
        """(n_structures,) long: the atom count of each structure (a scatter-add: ``bincount`` on a GPU reads the
        largest index back first)."""
        index = self.structure_index
        return torch.zeros(self.n_structures, dtype=index.dtype, device=index.device).index_add_(
            0, index, torch.ones_like(index))

    @property
    def stress_labelled(self) -> torch.Tensor | None:
        """(n_structures,) bool: the structures whose stress is a label (finite), or ``None`` without stress."""
        return None if self.stress is None else torch.isfinite(self.stress).all(1)

    @classmethod
    def from_atoms(
        cls,
        structures: Sequence[Atoms],
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> AtomsBatch:
        """Collate ``ase.Atoms`` (Å, eV, eV/Å, eV/Å³); energy and forces are kept only if every structure has them,
        a stress where some structure has one (NaN rows for the rest)."""
        if len(structures) == 0:
            raise ValueError("AtomsBatch needs at least one structure")
        counts = [len(a) for a in structures]
        positions = np.concatenate([a.positions for a in structures])
        numbers = np.concatenate([a.numbers for a in structures])
        cell = np.stack([np.asarray(a.cell) for a in structures])
        pbc = np.stack([a.pbc for a in structures])
        energies = [energy_of(a) for a in structures]
        forces = [forces_of(a) for a in structures]
        stresses = [stress_of(a) for a in structures]
        temperatures = [a.info.get("temperature") for a in structures]
        as_float = dict(dtype=dtype, device=device)
        return cls(
            positions=torch.as_tensor(positions, **as_float),
            numbers=torch.as_tensor(numbers, dtype=torch.long, device=device),
            structure_index=torch.repeat_interleave(
                torch.arange(len(structures), device=device), torch.as_tensor(counts, device=device)
            ),
            cell=torch.as_tensor(cell, **as_float),
            pbc=torch.as_tensor(pbc, dtype=torch.bool, device=device),
            energy=None if any(e is None for e in energies) else torch.as_tensor(energies, **as_float),
            forces=None if any(f is None for f in forces) else torch.as_tensor(np.concatenate(forces), **as_float),
            stress=None if all(v is None for v in stresses) else torch.as_tensor(
                np.stack([np.full(6, np.nan) if v is None else v for v in stresses]), **as_float),
            temperature=None if any(t is None for t in temperatures) else torch.as_tensor(temperatures, **as_float),
            elements=tuple(int(z) for z in np.unique(numbers)),
            element_counts=tuple((int(z), int(c)) for z, c in zip(*np.unique(numbers, return_counts=True),
                                                                   strict=True)),
        )

    def to_atoms(self) -> list[Atoms]:
        """Split back into ``ase.Atoms`` with labels attached where present."""
        counts = self.atoms_per_structure.tolist()
        offsets = np.concatenate([[0], np.cumsum(counts)])
        pos = self.positions.detach().cpu().double().numpy()
        num = self.numbers.cpu().numpy()
        forces = None if self.forces is None else self.forces.detach().cpu().double().numpy()
        stress = None if self.stress is None else self.stress.detach().cpu().double().numpy()
        out = []
        for i in range(self.n_structures):
            s = slice(offsets[i], offsets[i + 1])
            out.append(
                make_structure(
                    num[s], pos[s], cell=self.cell[i].detach().cpu().double().numpy(),
                    pbc=self.pbc[i].cpu().numpy(),
                    energy=None if self.energy is None else float(self.energy[i]),
                    forces=None if forces is None else forces[s],
                    stress=None if stress is None or not np.isfinite(stress[i]).all() else stress[i],
                )
            )
            if self.temperature is not None:
                out[-1].info["temperature"] = float(self.temperature[i])
        return out

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> AtomsBatch:
        """Move to ``device``; floating tensors also to ``dtype`` if given."""
        changes = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or f.name in ("pairs", "elements", "element_counts"):
                continue
            if value.is_floating_point() and dtype is not None:
                changes[f.name] = value.to(device=device, dtype=dtype)
            else:
                changes[f.name] = value.to(device=device)
        return replace(self, **changes, pairs=None)

    def tile(self, copies: int) -> AtomsBatch:
        """``copies`` copies of the batch one after another, as one batch of ``copies · n_structures``
        structures (labels and per-structure values repeated; candidate pairs dropped)."""
        n = self.n_structures
        offsets = torch.repeat_interleave(torch.arange(copies, device=self.structure_index.device) * n,
                                          self.n_atoms)
        changes: dict = {"structure_index": self.structure_index.repeat(copies) + offsets, "pairs": None,
                         "element_counts": None if self.element_counts is None
                         else tuple((z, c * copies) for z, c in self.element_counts)}
        for name in ("positions", "numbers", "cell", "pbc", "energy", "forces", "stress", "temperature", "noise_level",
                     "weight"):
            value = getattr(self, name)
            if value is not None:
                changes[name] = value.repeat(copies, *([1] * (value.dim() - 1)))
        return replace(self, **changes)

    def with_positions(self, positions: torch.Tensor) -> AtomsBatch:
        """The same batch at new positions (Å); labels dropped, since they belong to the old ones."""
        return replace(self, positions=positions, energy=None, forces=None, stress=None)
