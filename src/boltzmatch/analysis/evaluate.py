"""``evaluate``: error tables (energy and force MAE/RMSE, per-element force errors, crystals' stress) and parity
plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols

from ..data import read_structures
from ..data.atoms_batch import AtomsBatch
from ..data.compositions import formula_of, outside_span
from ..data.labels import stress_of, voigt_stress
from ..data.packed import PackedStructures
from ..models.base import energy_and_forces, energy_forces_and_stress, model_dtype
from ..runs.run_dir import energy_zero_known, load, read_config
from ..units import GPA_PER_EV_A3
from ..utils.atomic import atomic_write_text
from ..utils.device import resolve_device
from ..utils.table import format_table
from .metrics import without_element_offsets
from .plots import parity_plot


def predict(model: torch.nn.Module, packed: PackedStructures, batch_size: int = 64):
    """Predicted energies (n_structures,) in eV and forces (n_atoms, 3) in eV/Å, as NumPy arrays."""
    energies, forces = [], []
    for start in range(0, len(packed), batch_size):
        batch = packed.batch(np.arange(start, min(start + batch_size, len(packed))))
        e, f = energy_and_forces(model, batch)
        energies.append(e.detach().double().cpu().numpy())
        forces.append(f.detach().double().cpu().numpy())
    return np.concatenate(energies), np.concatenate(forces)


def predict_frames(run_dir: str | Path, frames: list[Atoms]) -> tuple[np.ndarray, np.ndarray]:
    """The energies (n_frames,) in eV and forces (n_atoms, 3) in eV/Å of the model of ``run_dir`` on
    ``frames``, computed in the model's dtype."""
    if not frames:
        return np.zeros(0), np.zeros((0, 3))
    model = load(run_dir)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return predict(model, PackedStructures(frames, dtype=model_dtype(model)), batch_size=64)


def evaluate(run_dir: str | Path, data: str | Path, *, out: str | Path | None = None, batch_size: int = 64,
             data_options: dict | None = None, predictions: bool = False, device: str = "auto") -> dict:
    """Errors of the model in ``run_dir`` on ``data``: energies in eV, forces in eV/Å.

    Returns ``n_structures``, ``energy_mae``, ``energy_rmse``, ``energy_mae_per_atom``,
    ``per_composition`` (:func:`per_composition_errors`, for a file of a few molecules),
    ``energy_mae_centered`` (per-element offsets removed,
    :func:`~.metrics.without_element_offsets`: for one molecule, the mean error), ``force_mae``, ``force_rmse``,
    ``force_mae_per_element``, ``force_pearson`` (r over all components) and ``force_scale`` (the
    uniform factor s minimising ‖s·F − F_ref‖; 1 for a model right about the force magnitudes),
    and for crystals with stress labels ``stress_mae`` / ``stress_rmse`` (eV/Å³, over the Voigt components),
    where labels exist; ``energy_zero_unfixed``: the compositions of ``data`` whose energy zero the training
    compositions left open (one molecule's frames fix only its own), whose energy errors include an arbitrary
    offset (a warning says so). A model trained without energies (``energy_zero: false`` in its config)
    has an arbitrary energy zero: its ``energy_mae``/``energy_rmse`` are left out. With ``out``,
    also writes ``metrics.json`` and parity plots (PNG). Judge on frames the model never saw,
    ideally a separately seeded trajectory: a random split of one trajectory puts test frames
    femtoseconds from training frames. ``predictions``: also the per-structure ``energy_predicted``
    and ``energy_reference`` (eV, lists in file order; a model without an energy zero is shifted by
    the per-element offsets), e.g. for a parity plot whose points open their frame. ``device``: where the model runs
    (``auto``: CUDA when present).
    """
    dev = resolve_device(device)
    model = load(run_dir, map_location=dev)
    config = read_config(run_dir)
    dtype = torch.float64 if config["model"].get("dtype") == "float64" else torch.float32
    structures = read_structures(data, **(data_options or {}))
    packed = PackedStructures(structures, dtype=dtype)
    on_device = packed if dev.type == "cpu" else PackedStructures(structures, dtype=dtype).to(dev)
    energy, forces = predict(model, on_device, batch_size)
    full = packed.full
    result: dict = {"n_structures": len(packed), "n_atoms": full.n_atoms}
    known_zero = energy_zero_known(run_dir)
    energy_diff = force_diff = None
    if full.energy is not None:
        diff = energy_diff = energy - full.energy.double().numpy()
        shape = without_element_offsets(diff, packed.host_element_counts)
        if not known_zero:
            energy = energy - (diff - shape)
        result["energy_mae_centered"] = float(np.abs(shape).mean())
        if predictions:
            result["energy_predicted"] = [float(e) for e in energy]
            result["energy_reference"] = [float(e) for e in full.energy.double().numpy()]
        if known_zero:
            if unfixed := unfixed_energy_zero(run_dir, structures, data):
                result["energy_zero_unfixed"] = unfixed
            per_atom = diff / full.atoms_per_structure.numpy()
            result.update(energy_mae=float(np.abs(diff).mean()), energy_rmse=float(np.sqrt((diff**2).mean())),
                          energy_mae_per_atom=float(np.abs(per_atom).mean()))
    if full.forces is not None:
        reference = full.forces.double().numpy()
        diff = force_diff = forces - reference
        result.update(force_mae=float(np.abs(diff).mean()), force_rmse=float(np.sqrt((diff**2).mean())),
                      force_pearson=float(np.corrcoef(forces.ravel(), reference.ravel())[0, 1]),
                      force_scale=float((forces * reference).sum() / max((forces**2).sum(), 1e-300)))
        numbers = full.numbers.numpy()
        result["force_mae_per_element"] = {
            chemical_symbols[z]: float(np.abs(diff[numbers == z]).mean()) for z in sorted(set(numbers.tolist()))
        }
    if composition := per_composition_errors(structures, energy_diff, force_diff, full.structure_index.numpy(),
                                             energy_zero=known_zero):
        result["per_composition"] = composition
    stress = stress_errors(model, structures, dtype, dev, batch_size)
    if stress is not None:
        result.update(stress_mae=stress[0], stress_rmse=stress[1])
    if out is not None:
        import json

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "metrics.json", json.dumps(result, indent=2))
        if full.energy is not None:
            parity_plot(full.energy.double().numpy(), energy, out / "parity_energy.png",
                        label="energy (eV)" if known_zero else "energy, per-element offsets removed (eV)",
                        title=f"{Path(run_dir).name}: energy")
        if full.forces is not None:
            parity_plot(full.forces.double().numpy().ravel(), forces.ravel(), out / "parity_forces.png",
                        label="force component (eV/Å)", title=f"{Path(run_dir).name}: forces")
    return result


#: the most compositions whose errors ``evaluate`` lists one by one (a file of a few molecules; not QM9's thousands)
MAX_COMPOSITIONS_LISTED = 12


def per_composition_errors(structures: list[Atoms], energy_diff: np.ndarray | None, force_diff: np.ndarray | None,
                           structure_index: np.ndarray, energy_zero: bool = True) -> dict[str, dict]:
    """Errors per composition (Hill formula) of a file holding 2 to :data:`MAX_COMPOSITIONS_LISTED` of them, in
    order of first appearance: ``n_structures``, ``energy_mae`` (eV; ``energy_diff`` is the model's energy minus
    the reference's; left out where the model has no ``energy_zero``), ``energy_mae_centered`` (eV; the errors
    less their mean within the composition: its conformations' relative energies, blind to any energy zero) and
    ``force_mae`` (eV/Å; ``force_diff`` (atoms, 3), ``structure_index`` the structure of each atom). Empty for one
    composition or more than the limit, and without labels."""
    formulas = np.array([formula_of(a.numbers) for a in structures])
    distinct = list(dict.fromkeys(formulas.tolist()))
    if not 2 <= len(distinct) <= MAX_COMPOSITIONS_LISTED or energy_diff is None and force_diff is None:
        return {}
    rows: dict[str, dict] = {}
    for formula in distinct:
        mask = formulas == formula
        row: dict = {"n_structures": int(mask.sum())}
        if energy_diff is not None:
            if energy_zero:
                row["energy_mae"] = float(np.abs(energy_diff[mask]).mean())
            row["energy_mae_centered"] = float(np.abs(energy_diff[mask] - energy_diff[mask].mean()).mean())
        if force_diff is not None:
            row["force_mae"] = float(np.abs(force_diff[mask[structure_index]]).mean())
        rows[formula] = row
    return rows


def unfixed_energy_zero(run_dir: str | Path, structures: list[Atoms], data: str | Path) -> list[str]:
    """The compositions of ``structures`` (the file ``data``) whose energy zero the training of ``run_dir`` left
    open: where its compositions left the split of the per-element energies arbitrary (``normalization.compositions``
    in ``config.yaml``), those outside their span. Their absolute energies carry an offset no training frame fixed
    (the MAE with per-element offsets removed compares the rest); a warning says so."""
    normalization = read_config(run_dir)["normalization"]
    spanning = normalization.get("compositions")
    if not spanning or normalization.get("reference_energies"):  # --element-energies fixed the rest
        return []
    unfixed = outside_span(spanning, (formula_of(a.numbers) for a in structures))
    if unfixed:
        import warnings

        warnings.warn(f"{data}: the energy zero of {', '.join(unfixed[:3])}{' …' if len(unfixed) > 3 else ''} is not "
                      f"fixed by the training compositions of {Path(run_dir).name} ({', '.join(spanning)}), so their "
                      "energy errors include an arbitrary offset; the MAE with per-element offsets removed "
                      "compares the rest", UserWarning, stacklevel=3)
    return unfixed


def stress_errors(model, structures: list[Atoms], dtype: torch.dtype, dev: torch.device,
                  batch_size: int = 64) -> tuple[float, float] | None:
    """MAE and RMSE (eV/Å³) of the model's stress against the stress labels, over the 6 Voigt components of the
    crystals (3-D periodic) that carry one; None where none does."""
    structures = [a for a in structures if a.pbc.all() and stress_of(a) is not None]
    if not structures:
        return None
    labels = [stress_of(a) for a in structures]
    predicted = []
    for start in range(0, len(structures), batch_size):
        batch = AtomsBatch.from_atoms(structures[start:start + batch_size], dtype=dtype, device=dev)
        with torch.enable_grad():
            _, _, sigma = energy_forces_and_stress(model, batch)
        sigma = sigma.detach().double().cpu().numpy()
        predicted += [voigt_stress(m) for m in sigma]
    diff = np.asarray(predicted) - np.asarray(labels)
    return float(np.abs(diff).mean()), float(np.sqrt((diff**2).mean()))


def format_evaluation(result: dict, title: str = "Evaluation") -> str:
    rows = [["structures", result["n_structures"]]]
    if "energy_mae" in result:
        rows += [["energy MAE (meV)", 1000 * result["energy_mae"]], ["energy RMSE (meV)", 1000 * result["energy_rmse"]],
                 ["energy MAE (meV/atom)", 1000 * result["energy_mae_per_atom"]]]
    if "energy_zero_unfixed" in result:  # their absolute energies carry an offset no training frame fixed
        rows.append(["energy zero not fixed by training for", ", ".join(result["energy_zero_unfixed"])])
    if "energy_mae_centered" in result:
        label = "energy MAE, per-element offsets removed (meV)"
        if "energy_mae" not in result:
            label += " [no energy zero: trained without energies]"
        rows.append([label, 1000 * result["energy_mae_centered"]])
    if "force_mae" in result:
        rows += [["force MAE (meV/Å)", 1000 * result["force_mae"]], ["force RMSE (meV/Å)", 1000 * result["force_rmse"]],
                 ["force Pearson r", result["force_pearson"]], ["best uniform force rescale", result["force_scale"]]]
        rows += [[f"force MAE {el} (meV/Å)", 1000 * v] for el, v in result["force_mae_per_element"].items()]
    for formula, row in result.get("per_composition", {}).items():
        errors = [f"{1000 * row[key]:.1f}" for key in ("energy_mae", "energy_mae_centered", "force_mae") if key in row]
        what = [name for key, name in (("energy_mae", "energy"), ("energy_mae_centered", "relative energy"),
                                       ("force_mae", "force")) if key in row]
        rows.append([f"{formula} ({row['n_structures']} frames): {' / '.join(what)} MAE", " / ".join(errors)])
    if "stress_mae" in result:
        rows += [["stress MAE (GPa)", GPA_PER_EV_A3 * result["stress_mae"]],
                 ["stress RMSE (GPa)", GPA_PER_EV_A3 * result["stress_rmse"]]]
    return format_table(rows, title=title)
