"""`ExternalModel`: the one adapter contract between a foreign potential and `EnergyModel`.

An adapter owns the foreign ``torch.nn.Module`` (``self.module``: a MACE, SchNetPack or NequIP
model, weights and all) and implements :meth:`foreign_energy`: the foreign model's energy per
structure (eV) for an :class:`~boltzmatch.data.AtomsBatch`, computed from positions that stay in
the autograd graph, so forces come from :func:`~boltzmatch.models.energy_and_forces` and score
objectives can differentiate twice, exactly as for boltzmatch's own networks.

On top of the foreign energy sit boltzmatch's per-element offsets (eV, ``element_energy``): zero on
import, moved only by :func:`~boltzmatch.training.normalization.refit_energy_offsets` after a
score objective (which cannot see a constant shift). :meth:`export` folds them back into the
foreign model so the user's own tooling (MACE's or SchNetPack's ASE calculator) reads the
fine-tuned model as it reads any other.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from ...data.atoms_batch import AtomsBatch
from ...errors import BoltzmatchError
from ..base import EnergyModel


@contextlib.contextmanager
def quiet_foreign():
    """Silence the warnings, log lines and prints foreign packages emit while importing and
    building (e3nn's and TorchScript's deprecation notes, MACE's printed note on cuequivariance):
    they say nothing about the user's model."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def require(module: str, extra: str, what: str):
    """Import ``module`` or raise a one-line error naming the extra that installs it."""
    try:
        with quiet_foreign():
            return importlib.import_module(module)
    except ImportError as exc:
        raise BoltzmatchError(f"{what} needs the Python package '{module}' ({exc}); {install_hint(extra)}") from None


def install_hint(extra: str) -> str:
    """How to get an extra: NequIP's e3nn ≥ 0.6 conflicts with MACE's e3nn 0.4.4, so ``nequip`` goes into an
    environment of its own (``boltzmatch[all]`` installs MACE)."""
    if extra == "nequip":
        return ("install it in an environment without MACE: pip install 'boltzmatch[nequip]' (nequip needs e3nn ≥ 0.6, "
                "mace-torch pins e3nn 0.4.4)")
    return f"install it with pip install 'boltzmatch[{extra}]'"


def load_pickled_module(path: str | Path, what: str) -> nn.Module:
    """``torch.load`` of a whole pickled module (the format of MACE's and SchNetPack's model files)."""
    path = Path(path)
    if not path.is_file():
        raise BoltzmatchError(f"{path}: no such model file")
    try:
        with quiet_foreign():
            module = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - a foreign pickle can fail in many ways
        raise BoltzmatchError(f"{path}: cannot be read as a {what} model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(module, nn.Module):
        raise BoltzmatchError(
            f"{path}: expected a pickled {what} model (torch.nn.Module), found {type(module).__name__}"
        )
    return module


class ExternalModel(EnergyModel):
    """Base of the adapters: ``U(x) = U_foreign(x) + Σ_i element_energy[Z_i]`` in eV.

    Subclasses set ``name`` and ``format`` (what the foreign file is), build ``self.module`` in
    ``__init__``, and implement :meth:`foreign_energy` and :meth:`export_module`.
    """

    #: the file format the adapter reads and :meth:`export` writes
    format: str = ""
    #: objectives the foreign model cannot serve, with the reason (empty: all of them)
    unavailable_objectives: dict[str, str] = {}

    def __init__(self, module: nn.Module, *, cutoff: float, elements: list[int], max_z: int = 100):
        super().__init__(max_z=max_z)
        self.module = module
        self.cutoff = float(cutoff)
        self.elements = [int(z) for z in elements]

    def foreign_energy(self, batch: AtomsBatch) -> torch.Tensor:
        """(n_structures,) energies of the foreign model in eV."""
        raise NotImplementedError

    def forward(self, batch: AtomsBatch) -> torch.Tensor:
        self.check_elements(batch.numbers, batch.elements)
        energy = self.foreign_energy(batch)
        offsets = self.element_energy.to(energy.dtype)[batch.numbers]
        return energy.index_add(0, batch.structure_index, offsets)

    def set_normalization(self, element_energy: dict[int, float], energy_scale: float) -> None:
        """Imported models keep their own reference energies and scale: only the identity
        (no offsets, scale 1) is accepted here; architectures built by boltzmatch override this."""
        if any(float(v) != 0.0 for v in element_energy.values()) or float(energy_scale) != 1.0:
            raise BoltzmatchError(
                f"a {self.name} model imported from a file keeps its own energy reference; "
                "its run directory must record no normalisation"
            )

    def export_module(self) -> nn.Module:
        """A deep copy of the foreign module with boltzmatch's offsets folded in."""
        raise NotImplementedError

    def export(self, path: str | Path) -> Path:
        """Write the model in its own format to ``path`` (atomically); returns the path."""
        from ...utils.atomic import atomic_path

        path = Path(path)
        module = self.export_module()
        with atomic_path(path) as tmp:
            torch.save(module, tmp)
        return path

    def offsets(self) -> dict[int, float]:
        """boltzmatch's per-element offsets (eV) that :meth:`export_module` must fold in."""
        nonzero = torch.nonzero(self.element_energy).flatten().tolist()
        return {int(z): float(self.element_energy[z]) for z in nonzero}

    def copy_module(self) -> nn.Module:
        module = copy.deepcopy(self.module)
        return module.cpu()
