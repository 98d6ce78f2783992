"""Statistics of a structure set: what `boltzmatch info` prints."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from ase import Atoms

from ..utils.table import format_table
from .labels import energy_of, forces_of, stress_of


def summarize(structures: Sequence[Atoms]) -> dict:
    """Counts, formulas, labels and energy (eV) / force (eV/Å) statistics of ``structures``."""
    formulas = Counter(a.get_chemical_formula() for a in structures)
    counts = np.array([len(a) for a in structures])
    elements = sorted({s for a in structures for s in a.get_chemical_symbols()})
    summary: dict = {
        "n_structures": len(structures),
        "formulas": dict(formulas.most_common()),
        "elements": elements,
        "atoms_min": int(counts.min()),
        "atoms_max": int(counts.max()),
        "periodic": int(sum(bool(a.pbc.any()) for a in structures)),
        "labels": [],
        "units": {"length": "Å", "energy": "eV", "forces": "eV/Å"},
    }
    energies = [energy_of(a) for a in structures]
    if all(e is not None for e in energies):
        e = np.array(energies)
        per_atom = e / counts
        summary["labels"].append("energy")
        summary["energy"] = {
            "mean": float(e.mean()), "std": float(e.std()), "min": float(e.min()), "max": float(e.max()),
            "per_atom_mean": float(per_atom.mean()),
        }
    forces = [forces_of(a) for a in structures]
    if all(f is not None for f in forces):
        f = np.concatenate(forces)
        norms = np.linalg.norm(f, axis=1)
        summary["labels"].append("forces")
        summary["forces"] = {
            "component_rms": float(np.sqrt(np.mean(f**2))),
            "norm_mean": float(norms.mean()),
            "norm_max": float(norms.max()),
        }
    n_stress = sum(stress_of(a) is not None for a in structures)
    if n_stress:
        share = "" if n_stress == len(structures) else f" ({n_stress} of {len(structures)})"
        summary["labels"].append(f"stress{share}")
    return summary


def format_summary(summary: dict, source: str | None = None) -> str:
    """The summary as a text table."""
    formulas = ", ".join(f"{k} ×{v}" for k, v in list(summary["formulas"].items())[:5])
    if len(summary["formulas"]) > 5:
        formulas += f", … ({len(summary['formulas'])} formulas)"
    rows = [
        ["structures", summary["n_structures"]],
        ["formulas", formulas],
        ["elements", " ".join(summary["elements"])],
        ["atoms per structure", f"{summary['atoms_min']}–{summary['atoms_max']}"],
        ["periodic structures", summary["periodic"]],
        ["labels", ", ".join(summary["labels"]) or "none"],
    ]
    if "energy" in summary:
        e = summary["energy"]
        rows += [
            ["energy mean ± std (eV)", f"{e['mean']:.4f} ± {e['std']:.4f}"],
            ["energy range (eV)", f"{e['min']:.4f} … {e['max']:.4f}"],
            ["energy per atom mean (eV)", e["per_atom_mean"]],
        ]
    if "forces" in summary:
        f = summary["forces"]
        rows += [
            ["force component RMS (eV/Å)", f["component_rms"]],
            ["force norm mean / max (eV/Å)", f"{f['norm_mean']:.4f} / {f['norm_max']:.4f}"],
        ]
    rows.append(["units", "positions Å, energy eV, forces eV/Å"])
    return format_table(rows, title=None if source is None else f"Summary of {source}")
