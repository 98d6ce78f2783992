"""Adapters that make MACE, SchNetPack and NequIP models boltzmatch `EnergyModel` s.

A model file is recognised by what it holds (:func:`detect_format`), described by an in-memory
run configuration (:func:`file_config`) so that every command that takes a run directory also
takes the file, and imported into a run directory by :func:`import_model`
(``boltzmatch import``), which copies the file beside ``config.yaml`` as ``external.<suffix>``.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import BoltzmatchError

#: adapter name → one line on what it reads
FORMATS = {
    "mace": "MACE model file from mace_run_train (*.model)",
    "schnetpack": "SchNetPack 2 model file from spktrain (best_model)",
    "nequip": "NequIP package (*.nequip.zip from nequip-package) or checkpoint (*.ckpt from nequip-train)",
}
#: the file name a run directory keeps an external model under (plus the original suffix)
EXTERNAL = "external"


def detect_format(path: str | Path) -> str:
    """``mace``, ``schnetpack`` or ``nequip`` for a model file; a one-line error otherwise."""
    return _read(path)[0]


def _read(path: str | Path):
    """The format of a model file and, for pickled modules (MACE, SchNetPack), the module itself
    (None for NequIP files, which nequip's own loader reads)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise BoltzmatchError(f"{path}: no such model file")
    if path.name.endswith((".nequip.zip", ".nequip.pth", ".nequip.pt2")) or path.suffix == ".ckpt":
        return "nequip", None  # the adapter reads packages and checkpoints, and says why compiled files cannot train
    from .base import quiet_foreign

    try:
        with quiet_foreign():
            obj = torch.load(path, map_location="cpu", weights_only=False)
    except ModuleNotFoundError as exc:
        package = (exc.name or "").split(".")[0]
        hint = {"mace": "mace", "schnetpack": "schnetpack", "nequip": "nequip"}.get(package)
        if hint:
            raise BoltzmatchError(f"{path}: a {package} model; install pip install 'boltzmatch[{hint}]'") from None
        raise BoltzmatchError(f"{path}: needs the Python package {exc.name!r} to be read") from None
    except Exception as exc:  # noqa: BLE001
        raise BoltzmatchError(
            f"{path}: not a model file boltzmatch can import ({type(exc).__name__}); expected one of: "
            + "; ".join(FORMATS.values())
        ) from None
    package = type(obj).__module__.split(".")[0]
    if package in ("mace", "schnetpack"):
        return package, obj
    raise BoltzmatchError(
        f"{path}: holds a {type(obj).__module__}.{type(obj).__name__}, not a model boltzmatch can import; expected "
        "one of: " + "; ".join(FORMATS.values())
    )


def adapter_class(name: str):
    from ..registry import MODELS

    return MODELS[name]


def file_config(path: str | Path) -> dict:
    """The run configuration of a model file, as ``config.yaml`` of an imported run would hold it."""
    import torch

    path = Path(path).resolve()
    name, module = _read(path)
    if module is not None:  # read once: its dtype is the one fact the config needs
        dtype = next(module.parameters()).dtype
        described = {"dtype": "float64" if dtype == torch.float64 else "float32"}
    else:
        described = adapter_class(name).describe(path)
    model = {"name": name, "file": str(path), **described}
    return {
        "kind": "model", "model": model, "normalization": {"element_energy": {}, "energy_scale": 1.0},
        "training": None, "parent": None, "energy_zero": True, "source": str(path),
    }


def external_suffix(file: Path) -> str:
    """The suffix a copy must keep for its format to be recognised: ``.nequip.zip`` whole (nequip's
    loader and :func:`detect_format` need it), else the last suffix (``.model``; none for ``best_model``)."""
    compound = "".join(file.suffixes[-2:])
    return compound if compound in (".nequip.zip", ".nequip.pth", ".nequip.pt2") else "".join(file.suffixes[-1:])


def copy_external(model_config: dict, source_dir: str | Path | None, out: str | Path) -> dict:
    """Copy the external model file of ``model_config`` into the run directory ``out``; returns the
    config with ``file`` naming the copy (relative, so the run directory can move)."""
    import shutil

    file = Path(model_config["file"])
    if not file.is_absolute() and source_dir is not None:
        file = Path(source_dir) / file
    Path(out).mkdir(parents=True, exist_ok=True)
    target = Path(out) / (EXTERNAL + external_suffix(file))
    if file.resolve() != target.resolve():
        from ...utils.atomic import atomic_path

        with atomic_path(target) as tmp:
            shutil.copyfile(file, tmp)
    return {**model_config, "file": target.name}


def import_model(path: str | Path, out: str | Path) -> dict:
    """Import the model file ``path`` into the run directory ``out`` (config.yaml, the copied file,
    model.pt); returns a summary (format, elements, cutoff in Å, parameters, dtype)."""
    from ...training import run_dir as rd
    from ...utils.atomic import atomic_write_text

    out = Path(out)
    if (out / rd.CONFIG).exists():
        raise BoltzmatchError(f"{out}: already a run directory; choose another --out")
    config = file_config(path)
    model = rd.build_from_config(config)
    out.mkdir(parents=True, exist_ok=True)
    config["model"] = copy_external(config["model"], None, out)
    config["model"]["elements"] = list(model.elements)
    rd.save_torch(model.state_dict(), out / rd.MODEL)
    rd.write_config(out, config)
    summary = {
        "run_dir": str(out), "source": str(path), "format": config["model"]["name"],
        "elements": list(model.elements), "cutoff_A": model.cutoff,
        "parameters": sum(p.numel() for p in model.parameters()), "dtype": config["model"]["dtype"],
        "unavailable_objectives": dict(model.unavailable_objectives),
    }
    atomic_write_text(out / "summary.txt", format_import_summary(summary) + "\n")
    return summary


def format_import_summary(summary: dict) -> str:
    from ...utils.table import format_table

    rows = [["format", summary["format"]], ["source", summary["source"]], ["run directory", summary["run_dir"]],
            ["elements", " ".join(str(z) for z in summary["elements"])], ["cutoff (Å)", f"{summary['cutoff_A']:g}"],
            ["parameters", f"{summary['parameters']:,}"], ["dtype", summary["dtype"]]]
    for objective, why in summary["unavailable_objectives"].items():
        rows.append([f"no {objective}", why])
    return format_table(rows, title="Imported model")


def export_run(run_dir: str | Path, out: str | Path) -> dict:
    """Write the model of ``run_dir`` in its own format to ``out``; returns a summary."""
    from ...training import run_dir as rd
    from .base import ExternalModel

    model = rd.load(run_dir)
    if not isinstance(model, ExternalModel):
        raise BoltzmatchError(
            f"{run_dir}: a boltzmatch {model.name} model has no foreign format to export; "
            f"export works for {', '.join(FORMATS)} runs"
        )
    path = model.export(out)
    return {"run": str(run_dir), "format": model.name, "file": str(path),
            "folded offsets (eV)": ", ".join(f"Z={z}: {v:+.4f}" for z, v in model.offsets().items()) or "none"}
