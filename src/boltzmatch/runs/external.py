"""External model files in run directories: ``boltzmatch import`` (:func:`import_model`: copies a MACE,
SchNetPack or NequIP file beside ``config.yaml`` as ``external.<suffix>``), the copy a trained run keeps
(:func:`copy_external`) and ``boltzmatch export`` (:func:`export_run`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import BoltzmatchError
from ..models.external import EXTERNAL, FORMATS, external_suffix
from ..utils.atomic import atomic_path, atomic_write_text, save_torch
from ..utils.table import format_table
from . import run_dir as rd


def copy_external(model_config: dict, source_dir: str | Path | None, out: str | Path) -> dict:
    """Copy the external model file of ``model_config`` into the run directory ``out``; returns the
    config with ``file`` naming the copy (relative, so the run directory can move)."""

    file = Path(model_config["file"])
    if not file.is_absolute() and source_dir is not None:
        file = Path(source_dir) / file
    Path(out).mkdir(parents=True, exist_ok=True)
    target = Path(out) / (EXTERNAL + external_suffix(file))
    if file.resolve() != target.resolve():
        with atomic_path(target) as tmp:
            shutil.copyfile(file, tmp)
    return {**model_config, "file": target.name}


def import_model(path: str | Path, out: str | Path) -> dict:
    """Import the model file ``path`` into the run directory ``out`` (config.yaml, the copied file,
    model.pt); returns a summary (format, elements, cutoff in Å, parameters, dtype)."""

    out = Path(out)
    if (out / rd.CONFIG).exists():
        raise BoltzmatchError(f"{out}: already a run directory; choose another --out")
    config = rd.file_config(path)
    model = rd.build_from_config(config)
    out.mkdir(parents=True, exist_ok=True)
    config["model"] = copy_external(config["model"], None, out)
    config["model"]["elements"] = list(model.elements)
    save_torch(model.state_dict(), out / rd.MODEL)
    rd.write_config(out, config)
    summary = {
        "run_dir": str(out), "source": str(path), "format": config["model"]["name"],
        "elements": list(model.elements), "cutoff_A": model.cutoff,
        "parameters": sum(p.numel() for p in model.parameters()), "dtype": config["model"]["dtype"],
        "unavailable_objectives": dict(model.unavailable_objectives),
    }
    atomic_write_text(out / rd.SUMMARY, format_import_summary(summary) + "\n")
    return summary


def format_import_summary(summary: dict) -> str:
    rows = [["format", summary["format"]], ["source", summary["source"]], ["run directory", summary["run_dir"]],
            ["elements", " ".join(str(z) for z in summary["elements"])], ["cutoff (Å)", f"{summary['cutoff_A']:g}"],
            ["parameters", f"{summary['parameters']:,}"], ["dtype", summary["dtype"]]]
    for objective, why in summary["unavailable_objectives"].items():
        rows.append([f"no {objective}", why])
    return format_table(rows, title="Imported model")


def export_run(run_dir: str | Path, out: str | Path) -> dict:
    """Write the model of ``run_dir`` in its own format to ``out``; returns a summary."""
    from ..models.external.base import ExternalModel

    model = rd.load(run_dir)
    if not isinstance(model, ExternalModel):
        raise BoltzmatchError(
            f"{run_dir}: a boltzmatch {model.name} model has no foreign format to export; "
            f"export works for {', '.join(FORMATS)} runs"
        )
    path = model.export(out)
    return {"run": str(run_dir), "format": model.name, "file": str(path),
            "folded offsets (eV)": ", ".join(f"Z={z}: {v:+.4f}" for z, v in model.offsets().items()) or "none"}
