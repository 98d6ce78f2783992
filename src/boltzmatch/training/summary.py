"""The training summary table that ``train`` and ``finetune`` print and write to ``summary.txt``."""

from __future__ import annotations

from ..utils.table import format_table

_ERRORS = [("energy_mae_meV", "energy MAE (meV)"), ("energy_rmse_meV", "energy RMSE (meV)"),
           ("energy_mae_meV_atom", "energy MAE (meV/atom)"), ("force_mae_meV_A", "force MAE (meV/Å)"),
           ("force_rmse_meV_A", "force RMSE (meV/Å)"), ("stress_mae_GPa", "stress MAE (GPa)"),
           ("stress_rmse_GPa", "stress RMSE (GPa)")]
_RANDOM_SPLIT_NOTE = (
    "\nNote: a random split of one MD trajectory puts {which} frames femtoseconds from training frames, so {these} "
    "errors flatter (SchNet on xTB malonaldehyde: 86 meV/Å here, 311 on a separately seeded trajectory). Measure "
    "generalisation with `boltzmatch evaluate RUN_DIR OTHER_TRAJECTORY`, validate on such a trajectory with "
    "--val-data, or train with --split-method contiguous.")


def end_text(summary: dict) -> str:
    """Why training ended, e.g. "early stopping at epoch 27 of 60" (runs before the reason was kept: "")."""
    reason = summary.get("end_reason")
    if reason is None:
        return ""
    if reason == "all epochs":
        return f"all {summary['epochs']} epochs" if summary["epochs"] != 1 else "its one epoch"
    if reason == "closed-form fit":
        return "the closed-form fit (one pass)"
    return f"{reason} at epoch {summary['epochs']} of {summary.get('epochs_asked', '?')}"


def format_train_summary(summary: dict) -> str:
    rows = [["run directory", summary["run_dir"]], ["epochs (best)", f"{summary['epochs']} ({summary['best_epoch']})"],
            ["ended by", end_text(summary)],
            ["structures train / val / test", f"{summary['n_train']} / {summary['n_val']} / {summary['n_test']}"]]
    if "objective" in summary:
        rows.append(["objective", summary["objective"], ""])
    if summary.get("stress_weight"):  # the stress term is on: its weight, and the structures it reads
        rows.append(["stress weight (structures with a stress)",
                     f"{summary['stress_weight']:g} ({summary['n_stress']} of {summary['n_structures']})", ""])
    if "device" in summary:
        rows.append(["device, precision", f"{summary['device']}, {summary.get('precision', 'float32')}"])
    for key, label in _ERRORS:
        values = [summary.get(f"{split}_{key}") for split in ("val", "test")]
        if any(v is not None for v in values):
            rows.append([label] + ["–" if v is None else f"{v:.2f}" for v in values])
    if "dsm_sigma" in summary:
        rows.append(["dsm σ (Å), antithetic", ", ".join(f"{v:.3g}" for v in summary["dsm_sigma"])
                     + (", yes" if summary["antithetic"] else ", no"), ""])
    if "prior" in summary:
        prior = summary["prior"]
        terms = ("bonds", "angles", "impropers", "torsions", "walls")
        rows.append([f"bonded prior (fitted at {prior['temperature']:g} K)",
                     ", ".join(f"{prior.get(key, 0)} {key}" for key in terms), ""])
    if "ridge" in summary:
        rows.append(["closed form: ridge (rank / parameters)",
                     f"{summary['ridge']:.0e} ({summary['rank']} / {summary['n_parameters']})", ""])
    if "energy_zero_fixed_for" in summary:  # the training compositions left the per-element split open
        rows.append(["energy zero fixed only for", ", ".join(summary["energy_zero_fixed_for"]), ""])
    if "open_energy_zero_from" in summary:  # --element-energies: what the compositions leave open
        rows.append(["energy zero beyond the data's compositions", summary["open_energy_zero_from"], ""])
    if "energy_offset_shift_meV" in summary:
        rows.append(["energy zero refitted (RMS shift, meV)", f"{summary['energy_offset_shift_meV']:.1f}", ""])
    if "cuda_graph_steps" in summary:
        padded = f", batches padded to {summary['padded_atoms']} atoms" if "padded_atoms" in summary else ""
        rows.append(["CUDA graphs (this session)",
                     f"{summary['cuda_graph_steps']} of {summary['steps']} steps replayed{padded}", ""])
    rows.append(["wall time (s)", f"{summary['wall_seconds']:.1f}"])
    split = summary.get("split", "random")
    rows.insert(3, ["split", split, ""])
    table = format_table(rows, header=["", "validation", "test"], title="Training summary")
    if split == "random" and summary.get("one_molecule", True):
        table += _RANDOM_SPLIT_NOTE.format(which="validation and test", these="these")
    elif split.startswith("random, validation ") and summary.get("one_molecule", True) and summary.get("n_test"):
        table += _RANDOM_SPLIT_NOTE.format(which="test", these="the test")
    return table
