"""Per-element reference energies and an energy scale fitted from training data.

Reference energies e_Z (eV) solve the least-squares problem E_s ≈ Σ_Z n_{s,Z} e_Z over the
training structures (a tiny ridge keeps it solvable when elements always appear in the same
ratio). The scale (eV) is the RMS of the force components if forces exist, else the standard
deviation of the residual energy per atom; networks then learn numbers of order one.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.atoms_batch import AtomsBatch
from ..data.compositions import composition_matrix, spanning_compositions
from ..errors import BoltzmatchError


def element_counts(batch: AtomsBatch, elements: list[int]) -> np.ndarray:
    """(n_structures, n_elements): how many atoms of each element every structure holds."""
    counts = np.zeros((batch.n_structures, len(elements)))
    numbers = batch.numbers.cpu().numpy()
    structure = batch.structure_index.cpu().numpy()
    for k, z in enumerate(elements):
        np.add.at(counts[:, k], structure[numbers == z], 1.0)
    return counts


def batch_formulas(batch: AtomsBatch, elements: list[int]) -> list[str]:
    """The distinct compositions (Hill formulas) of the structures in ``batch``."""
    from ase.data import chemical_symbols
    from ase.formula import Formula

    counts = element_counts(batch, elements)
    return [Formula.from_dict({chemical_symbols[z]: int(n) for z, n in zip(elements, row, strict=True) if n})
            .format("hill") for row in np.unique(counts, axis=0)]


def training_compositions(batch: AtomsBatch, elements: list[int], earlier: list[str] | None = None) -> list[str] | None:
    """The training compositions (formulas) that fix the per-element energies, where they leave some undetermined
    (:func:`~boltzmatch.data.compositions.spanning_compositions`: one molecule's frames fix one combination);
    None where they fix every element's. ``earlier``: a parent run's, which fine-tuning's energies add to.
    Stored in ``config.yaml`` (``normalization.compositions``), so that ``evaluate`` can say which data's absolute
    energies carry an offset no training frame fixed."""
    return spanning_compositions([*(earlier or []), *batch_formulas(batch, elements)])


def fit_normalization(batch: AtomsBatch, elements: list[int]) -> tuple[dict[int, float], float]:
    """(element energies {Z: eV}, energy scale in eV) from a batch holding the training data."""
    counts = element_counts(batch, elements)
    index = {z: k for k, z in enumerate(elements)}
    element_energy = dict.fromkeys(elements, 0.0)
    residual_per_atom = None
    if batch.energy is not None:
        energy = batch.energy.double().cpu().numpy()
        ridge = 1e-8 * np.eye(len(elements)) * max(1.0, float((counts**2).sum()))
        coef = np.linalg.solve(counts.T @ counts + ridge, counts.T @ energy)
        element_energy = {z: float(coef[k]) for z, k in index.items()}
        residual_per_atom = (energy - counts @ coef) / counts.sum(1)
    if batch.forces is not None:
        scale = float(torch.sqrt((batch.forces.double() ** 2).mean()))
    elif residual_per_atom is not None and residual_per_atom.size > 1:
        scale = float(residual_per_atom.std())
    else:
        scale = 1.0
    return element_energy, scale if scale > 1e-12 else 1.0


def refit_energy_offsets(model: torch.nn.Module, packed, indices: np.ndarray, batch_size: int = 64) -> float:
    """Shift the per-element energies (eV) of ``model`` so its energies fit ``packed[indices]`` best.

    Score objectives (fisher, ism, ssm, dsm) see only ∇U: a constant shift of the energy is
    invisible to them, and fine-tuning can drift it by an electronvolt; an energy loss weighed beside
    forces holds it only loosely. When the data has energies, the least-absolute-deviations correction
    δ of Σ_Z n_{s,Z} δ_Z ≈ E_s − Ê_s (:func:`least_absolute_offsets`; for one molecule the median
    residual) restores the zero without touching a force. Not least squares: ``refine`` adds frames
    eV above anything thermal where the model is eV wrong, and their mean pulled the zero of every
    other frame (glycine after three uniform rounds: held-out energy MAE 213 meV with the least-squares
    zero, 83 with the median; 2,080 against 121 after ``--selection failures``); on clean data the two
    agree (N-methylacetamide 31.9 and 32.3 meV). Returns the RMS energy shift per structure (eV). The
    linear potential keeps its offsets in θ; networks in ``element_energy``.
    """
    elements = sorted({int(z) for z in packed.full.numbers.tolist()})
    rows, residuals = [], []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            batch = packed.batch(indices[start:start + batch_size])
            predicted = model(batch).double()
            residuals.append((batch.energy.double() - predicted).cpu().numpy())
            rows.append(element_counts(batch, elements))
    counts, residual = np.concatenate(rows), np.concatenate(residuals)
    delta = least_absolute_offsets(counts, residual)
    shift_offsets(model, elements, delta)
    return float(np.sqrt(((counts @ delta) ** 2).mean()))


def element_offsets(model: torch.nn.Module, elements: list[int]) -> torch.Tensor:
    """The per-element energies (eV) of ``model`` for ``elements``: the linear potential's θ slice, or the
    networks' ``element_energy``."""
    from ..models.linear import LinearPotential

    if isinstance(model, LinearPotential):
        offsets = model.theta[model.element_offset_slice()]
        return offsets[model.descriptors.element_index(torch.tensor(elements, device=offsets.device))]
    return model.element_energy[torch.tensor(elements, device=model.element_energy.device)]


def shift_offsets(model: torch.nn.Module, elements: list[int], delta: np.ndarray) -> None:
    """Add ``delta`` (eV, one per element of ``elements``) to the per-element energies of ``model``."""
    from ..models.linear import LinearPotential

    with torch.no_grad():
        if isinstance(model, LinearPotential):
            offsets = model.theta[model.element_offset_slice()]
            index = model.descriptors.element_index(torch.tensor(elements, device=offsets.device))
            offsets[index] += torch.as_tensor(delta, dtype=offsets.dtype, device=offsets.device)
        else:
            for z, d in zip(elements, delta, strict=True):
                model.element_energy[z] += float(d)


def settle_open_offsets(model: torch.nn.Module, compositions: list[str], elements: list[int],
                        reference: dict[int, float]) -> float:
    """Set the part of the per-element energies (eV) that the training ``compositions`` (formulas; a fine-tune's
    with its parent's) leave open to that of ``reference`` ({Z: eV}, e.g. isolated atoms, as MACE's E0s); the part
    they fix stays.

    With P the projector onto the span of the training compositions n_s, the energies become P E + (1 − P) E_ref:
    no training structure's energy changes (n_s · (1 − P) = 0), and a composition outside the span gets the
    reference's zero instead of an arbitrary one. Returns the largest change of one element's energy (eV)."""
    missing = [z for z in elements if z not in reference]
    if missing:
        from ase.data import chemical_symbols

        raise BoltzmatchError("--element-energies: no value for "
                              f"{', '.join(chemical_symbols[z] for z in missing)} (the training data hold them)")
    counts = composition_matrix(compositions, elements)
    projector = np.linalg.pinv(counts) @ counts
    current = element_offsets(model, elements).detach().double().cpu().numpy()
    wanted = np.array([reference[z] for z in elements], dtype=float)
    delta = (np.eye(len(elements)) - projector) @ (wanted - current)
    shift_offsets(model, elements, delta)
    return float(np.abs(delta).max())


def least_absolute_offsets(counts: np.ndarray, residual: np.ndarray, iterations: int = 200,
                           floor: float = 1e-7) -> np.ndarray:
    """δ (eV) minimising the sum over structures s of abs(residual_s − Σ_Z counts_{s,Z} δ_Z), by iteratively
    reweighted least squares (weights 1/max(abs(r), ``floor``)), from the least-squares δ (minimum norm where
    the compositions leave elements undetermined). For one composition it is the median residual over the atom
    count."""
    delta = np.linalg.lstsq(counts, residual, rcond=None)[0]
    for _ in range(iterations):
        root = 1.0 / np.sqrt(np.maximum(np.abs(residual - counts @ delta), floor))
        updated = np.linalg.lstsq(counts * root[:, None], residual * root, rcond=None)[0]
        if np.max(np.abs(updated - delta)) < 1e-10:
            return updated
        delta = updated
    return delta
