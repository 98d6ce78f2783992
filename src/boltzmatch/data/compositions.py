"""Which compositions a set of training compositions fixes the energy zero of.

A model's per-element energies E_Z (eV) are fitted to the training energies, E_s ≈ Σ_Z n_{s,Z} E_Z + …. The
training compositions (rows n_s) determine the E_Z only in their span: frames of one molecule fix one
combination (ethanol: 2 E_C + 6 E_H + E_O) and leave the split among the elements arbitrary. Energy differences
between structures of a composition in that span are unaffected; another molecule's absolute energies carry an
offset that no training frame fixed. Compositions are chemical formulas (``ase.formula.Formula`` strings).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from ase.formula import Formula


def _counts(formulas: Iterable[str], symbols: list[str]) -> np.ndarray:
    rows = [Formula(f).count() for f in formulas]
    return np.array([[row.get(s, 0) for s in symbols] for row in rows], dtype=float).reshape(len(rows), len(symbols))


def _symbols(formulas: Iterable[str]) -> list[str]:
    return sorted({s for f in formulas for s in Formula(f).count()})


def spanning_compositions(formulas: Iterable[str]) -> list[str] | None:
    """A smallest set of ``formulas`` spanning all of them, in order of first appearance, where they leave some
    element's energy undetermined (fewer independent compositions than elements); None where they fix every
    element's energy (then every composition of these elements is fixed)."""
    unique = list(dict.fromkeys(formulas))
    if not unique:
        return None
    symbols = _symbols(unique)
    counts = _counts(unique, symbols)
    rank = np.linalg.matrix_rank(counts)
    if rank == len(symbols):
        return None
    chosen: list[int] = []
    for k in range(len(unique)):
        if np.linalg.matrix_rank(counts[chosen + [k]]) > len(chosen):
            chosen.append(k)
            if len(chosen) == rank:
                break
    return [unique[k] for k in chosen]


def outside_span(spanning: list[str], formulas: Iterable[str], tolerance: float = 1e-8) -> list[str]:
    """The distinct ``formulas`` whose energy zero the ``spanning`` compositions (:func:`spanning_compositions`)
    leave undetermined: not a linear combination of them, such as another molecule, or one holding an element
    they lack."""
    unique = list(dict.fromkeys(formulas))
    if not unique:
        return []
    symbols = sorted(set(_symbols(spanning)) | set(_symbols(unique)))
    basis, rows = _counts(spanning, symbols), _counts(unique, symbols)
    coefficients = np.linalg.lstsq(basis.T, rows.T, rcond=None)[0]
    residual = np.abs(basis.T @ coefficients - rows.T).max(axis=0)
    return [f for f, r in zip(unique, residual, strict=True) if r > tolerance * max(1.0, float(rows.max()))]


def composition_matrix(formulas: Iterable[str], elements: list[int]) -> np.ndarray:
    """(formulas, elements): how many atoms of each element (atomic numbers ``elements``) every formula holds."""
    from ase.data import chemical_symbols

    return _counts(formulas, [chemical_symbols[z] for z in elements])


def formula_of(numbers: Iterable[int]) -> str:
    """The chemical formula (Hill order) of the atomic numbers ``numbers``."""
    from ase.data import chemical_symbols

    return Formula.from_list([chemical_symbols[int(z)] for z in numbers]).format("hill")
