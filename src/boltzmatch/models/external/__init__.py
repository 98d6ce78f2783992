"""Adapters that make MACE, SchNetPack and NequIP models boltzmatch `EnergyModel` s.

A model file is recognised by what it holds (:func:`detect_format`). Turning one into a run
configuration, importing it into a run directory and exporting a run back are run-directory work:
:mod:`boltzmatch.runs.external`.
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
    return read_model_file(path)[0]


def read_model_file(path: str | Path):
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
            from .base import install_hint

            raise BoltzmatchError(f"{path}: a {package} model; {install_hint(hint)}") from None
        raise BoltzmatchError(f"{path}: needs the Python package {exc.name!r} to be read") from None
    except Exception as exc:  # noqa: BLE001
        if _looks_like_torch(path):
            raise BoltzmatchError(f"{path}: a PyTorch file that cannot be read: truncated or corrupt "
                                  f"({type(exc).__name__}); copy it again from where it was written") from None
        raise BoltzmatchError(
            f"{path}: not a model file boltzmatch can import ({type(exc).__name__}); expected one of: "
            + "; ".join(FORMATS.values())
        ) from None
    package = type(obj).__module__.split(".")[0]
    if package in ("mace", "schnetpack"):
        return package, obj
    _name_what_it_is(path, obj)
    raise BoltzmatchError(
        f"{path}: holds a {type(obj).__module__}.{type(obj).__name__}, not a model boltzmatch can import; expected "
        "one of: " + "; ".join(FORMATS.values())
    )


def _looks_like_torch(path: Path) -> bool:
    """A torch.save file starts as a zip archive (``PK``) or, in the legacy format, as a pickle (``0x80``)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _name_what_it_is(path: Path, obj) -> None:
    """One line for the files that sit beside a MACE model and are not one (raises), else nothing."""
    kind = type(obj).__name__
    if kind in ("RecursiveScriptModule", "ScriptModule"):
        raise BoltzmatchError(f"{path}: a TorchScript-compiled model (such as MACE's *_compiled.model): it can run but "
                              f"not be trained or imported; import the *.model file mace_run_train wrote beside it")
    if isinstance(obj, dict):
        keys = ", ".join(sorted(map(str, obj))[:4])
        if {"model", "optimizer", "state_dict", "epoch", "lr_scheduler"} & set(map(str, obj)):
            raise BoltzmatchError(f"{path}: a training checkpoint (a dict of {keys}, …), not a model; import the "
                                  f"*.model file mace_run_train writes when training ends (e.g. MACE_model.model)")
        raise BoltzmatchError(f"{path}: holds a dict (keys {keys}), weights without their architecture, not a model "
                              "boltzmatch can import; expected one of: " + "; ".join(FORMATS.values()))


def adapter_class(name: str):
    from ..registry import MODELS

    return MODELS[name]


def external_suffix(file: Path) -> str:
    """The suffix a copy must keep for its format to be recognised: ``.nequip.zip`` whole (nequip's
    loader and :func:`detect_format` need it), else the last suffix (``.model``; none for ``best_model``)."""
    compound = "".join(file.suffixes[-2:])
    return compound if compound in (".nequip.zip", ".nequip.pth", ".nequip.pt2") else "".join(file.suffixes[-1:])
