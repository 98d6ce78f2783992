"""A training run made ready for its first epoch: the objective and the structures it reads, the split,
the model with its normalisation (fitted, stored, or the parent's), its prior, and frozen parameters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data import Split, read_structures, split_indices
from ..data.labels import energy_of, forces_of, has_stress
from ..data.packed import PackedStructures
from ..errors import BoltzmatchError
from ..models.packed_pairs import PackedPairs
from ..models.painn import default_radial_basis
from ..models.prior import BondedPrior, attach_prior
from ..models.registry import build_model, validate_config
from ..objectives.registry import STRESS_OBJECTIVES, make_objective
from ..objectives.score import dsm_sigma_from_data
from ..runs import run_dir as rd
from ..runs.external import copy_external
from ..utils.device import resolve_device
from .distributed import Distributed
from .graphed_step import graphs_refused
from .laplacian_memory import check_laplacian_memory
from .normalization import fit_normalization, training_compositions
from .settings import DEFAULT_STRESS_WEIGHT, TrainSettings


@dataclass
class PreparedRun:
    """A run ready for its first epoch: data, split, objectives, the model and its normalisation."""

    settings: TrainSettings
    dist: Distributed
    objective: object
    validation_objective: object
    packed: PackedStructures
    split: Split
    net: nn.Module
    model_config: dict
    normalization: dict
    prior_config: dict | None
    one_molecule: bool


def _make_objective(settings: TrainSettings):
    # before σ is derived from the data a placeholder stands in: only ``needs`` is read then
    return make_objective(
        settings.objective_name, temperature=settings.temperature, energy_weight=settings.energy_weight,
        force_weight=settings.force_weight, sigma=settings.sigma or [1.0], n_probes=settings.n_probes,
        probe=settings.probe, antithetic=bool(settings.antithetic), cd_options=settings.cd_options,
        seed=settings.seed, huber_delta=settings.huber_delta, stress_weight=settings.stress_weight or 0.0,
    )


def _objectives(settings: TrainSettings) -> tuple[object, list, object]:
    """The training objective, the structures it reads, and the objective validation reports."""
    if settings.objective_name == "dsm" and settings.antithetic is None:
        settings.antithetic = True  # measured: the variance at small σ otherwise needs ~10⁶ samples
    objective = _make_objective(settings)
    structures = read_structures(settings.data, require=objective.needs, **settings.data_options)
    if settings.stress_weight is None:  # crystals with stress labels train on them unless told otherwise
        weighs = settings.objective_name in STRESS_OBJECTIVES and settings.solver != "closed-form"
        settings.stress_weight = DEFAULT_STRESS_WEIGHT if weighs and has_stress(structures) else 0.0
        if settings.stress_weight:
            objective = _make_objective(settings)
    if settings.objective_name == "dsm" and not settings.sigma:
        settings.sigma = [round(dsm_sigma_from_data(structures), 6)]
        objective = _make_objective(settings)
    if settings.objective_name == "fisher-cd":  # validation: the Fisher term alone (the CD term hovers about 0)
        return objective, structures, objective.fisher
    if settings.objective_name != "cd":
        return objective, structures, objective
    # the CD loss is a difference of energies that hovers about 0 at any optimum; validation reports
    # antithetic dsm at the data's σ, a Fisher divergence from positions (it drives the learning-rate
    # schedule; the model kept is the last epoch's, see EnergyStep.improved)
    validation = make_objective("dsm", temperature=settings.temperature, energy_weight=0.0, force_weight=0.0,
                                sigma=[dsm_sigma_from_data(structures)], antithetic=True)
    return objective, structures, validation


def prepare(settings: TrainSettings, model_config: dict | None, out: Path, resume: bool,
             model_name: str | None) -> PreparedRun:
    dist = Distributed(resolve_device(settings.device))
    objective, structures, validation_objective = _objectives(settings)
    elements = sorted({int(z) for a in structures for z in a.numbers})
    one_molecule = len({tuple(a.numbers) for a in structures}) == 1  # frames of one trajectory, typically
    validation = _validation_frames(settings, objective, structures)
    if model_config is None:
        model_config = validate_config({"name": model_name or "schnet", "elements": elements})
    model_config.setdefault("dtype", "float32")
    model_config.setdefault("elements", elements)
    _resolve_element_energies(settings, model_config, structures)
    if model_config["name"] == "painn" and not model_config.get("radial_basis"):  # recorded: config.yaml says it
        model_config["radial_basis"] = default_radial_basis(objective.needs)
    dtype = torch.float64 if model_config["dtype"] == "float64" else torch.float32
    packed = PackedStructures(structures + validation, dtype=dtype)
    split = _split(settings, len(structures), len(validation))

    torch.manual_seed(settings.seed)
    parent_dir = settings.parent if settings.parent and Path(settings.parent).is_dir() else None
    net = build_model(model_config, base_dir=out if resume else parent_dir)
    if model_config.get("file") and not resume:
        model_config = copy_external(model_config, parent_dir, out)  # the run directory holds its model file
    normalization = _normalization(settings, model_config, out, resume, packed, split, elements, net)
    prior_config = _prior_config(settings, out, resume, [structures[i] for i in split.train])
    attach_prior(net, prior_config, f"--prior {settings.prior}" if settings.prior else "parent run's prior")
    if settings.parent and not resume:
        net.load_state_dict(rd.load(settings.parent).state_dict())
    elif hasattr(net, "fit_pair_basis") and not resume:
        net.fit_pair_basis(packed.batch(split.train))  # the linear potential's basis spans the data
    _freeze(net, settings.freeze)
    if settings.objective_name == "ism":  # 3N second-derivative passes per structure: refuse what cannot fit
        check_laplacian_memory(net, [structures[i] for i in split.train], settings.batch_size, dtype=dtype,
                               device=dist.device)
    # everything above ran on the CPU as on any machine; the model and the whole data set then move to the
    # device, where every batch is a gather (torch.nn.Module.to keeps the parameters' dtype)
    # every batch then brings its pairs (models/packed_pairs.py); CUDA graphs of the step need one pair count per
    # batch size: every pair of each molecule where the model allows it
    graphs = settings.cuda_graphs and graphs_refused(settings, dist.device, dist.active, objective) is None
    packed.pairs = PackedPairs.for_model(packed, net, complete=graphs)
    if settings.solver != "closed-form":  # the closed form accumulates its float64 normal equations on the CPU
        net.to(dist.device)
        packed.to(dist.device)
    return PreparedRun(settings, dist, objective, validation_objective, packed, split, net, model_config,
                       normalization, prior_config, one_molecule)


def _validation_frames(settings: TrainSettings, objective, structures: list) -> list:
    """The frames of ``val_data``, read as the training data is. They must carry every label the training frames
    carry (energy, forces, temperature: a batch keeps a label only where every frame has it) and hold no element
    the training frames lack (its energy would come from nowhere); stress is optional, as in training."""
    if not settings.val_data:
        return []
    require = tuple(name for name in objective.needs if name != "stress")
    frames = read_structures(settings.val_data, require=require, **settings.data_options)
    known = {int(z) for a in structures for z in a.numbers}
    labels = {"energy": lambda a: energy_of(a) is not None, "forces": lambda a: forces_of(a) is not None,
              "temperature": lambda a: "temperature" in a.info}
    carried = [name for name, has in labels.items() if all(has(a) for a in structures)]
    for index, atoms in enumerate(frames):
        unknown = sorted({int(z) for z in atoms.numbers} - known)
        if unknown:
            from ase.data import chemical_symbols

            raise BoltzmatchError(f"{settings.val_data}: structure {index} ({atoms.get_chemical_formula()}) holds "
                                  f"{', '.join(chemical_symbols[z] for z in unknown)}, which no training structure "
                                  "holds; expected validation frames of the trained elements")
        for name in carried:
            if not labels[name](atoms):
                raise BoltzmatchError(f"{settings.val_data}: structure {index} has no {name}; the training "
                                      f"structures carry one, so the validation structures must too")
    return frames


def _split(settings: TrainSettings, n_data: int, n_validation: int) -> Split:
    """Indices into the training frames followed by the ``val_data`` frames: with ``val_data`` every frame of it
    validates and the training data gives only its test share; else a split file's or the seeded split's. Without
    any validation frame the training frames validate."""
    if settings.split_file:
        split = Split.load(settings.split_file, n_structures=n_data)
    else:
        split = split_indices(n_data, val_fraction=0.0 if n_validation else settings.val_fraction,
                              test_fraction=settings.test_fraction, seed=settings.seed, method=settings.split_method)
    if n_validation:
        split = Split(train=split.train, val=np.arange(n_data, n_data + n_validation), test=split.test)
    if len(split.val) == 0:
        split = Split(train=split.train, val=split.train, test=split.test)
    return split


def _normalization(settings: TrainSettings, model_config: dict, out: Path, resume: bool, packed: PackedStructures,
                   split: Split, elements: list[int], net: nn.Module) -> dict:
    """Per-element energies (eV) and the energy scale: stored, the parent's, or fitted; set on ``net``."""
    if resume:
        normalization = rd.read_config(out)["normalization"]
    elif settings.parent:
        parent = rd.read_config(settings.parent)
        normalization = dict(parent["normalization"])
        earlier = normalization.get("compositions") if parent.get("energy_zero", True) else []
        if earlier is not None and packed.full.energy is not None:  # fine-tuning refits the zero: its frames fix
            normalization["compositions"] = training_compositions(packed.batch(split.train), elements, earlier)
            if normalization["compositions"] is None:  # what its parent's did, and more
                del normalization["compositions"]
        if settings.element_energies != _parent_element_energies(parent):  # another reference
            for key in ("reference_energies", "reference_source"):
                normalization.pop(key, None)
            _add_reference(normalization, settings, packed, elements)
    elif model_config.get("file"):
        normalization = {"element_energy": {}, "energy_scale": 1.0}  # a model file keeps its own reference
    else:
        train = packed.batch(split.train)
        element_energy, scale = fit_normalization(train, elements)
        normalization = {"element_energy": element_energy, "energy_scale": scale}
        _add_reference(normalization, settings, packed, elements)
        if train.energy is not None and (compositions := training_compositions(train, elements)):
            normalization["compositions"] = compositions  # what the data fix; with a reference, what it must keep
    if model_config["name"] == "linear":
        if not resume and not settings.parent and settings.solver == "iterative":
            _start_linear_offsets(net, normalization["element_energy"])
        kept = {key: normalization[key] for key in ("compositions", "reference_energies", "reference_source")
                if key in normalization}
        return {"element_energy": dict.fromkeys(elements, 0.0), "energy_scale": 1.0, **kept}
    if hasattr(net, "set_normalization"):
        net.set_normalization(normalization["element_energy"], normalization["energy_scale"])
    return normalization


def _resolve_element_energies(settings: TrainSettings, model_config: dict, structures: list) -> None:
    """``--element-energies`` as recorded (config.yaml says what fixed the energy zero): ``auto`` becomes a
    fine-tune's parent's choice, or :func:`auto_element_energies`; a model file (MACE, SchNetPack, NequIP) keeps
    its own per-element energies, so it takes none (its E0s would be counted twice)."""
    if model_config.get("file"):
        if settings.element_energies not in ("auto", None):
            raise BoltzmatchError(f"--element-energies: {model_config['file']} keeps its own per-element energies "
                                  "(its E0s); leave the option at auto or least-squares")
        settings.element_energies = None
    elif settings.element_energies == "auto":
        settings.element_energies = _parent_element_energies(rd.read_config(settings.parent)) if settings.parent \
            else auto_element_energies(structures)


def _parent_element_energies(config: dict) -> str | dict | None:
    return (config.get("training") or {}).get("element_energies")


def auto_element_energies(structures: list) -> str | None:
    """``--element-energies auto``: the reference method every frame names (``info["reference_method"]``, written
    by ``generate`` and refine's labelling) where its isolated atoms have energies (xtb, emt), else None (least
    squares). Measured: SchNet on xTB ethanol, held-out methanol and propanol energies 21 eV off with least squares,
    0.8–0.9 eV with xTB's isolated atoms (docs/architecture.md)."""
    from ..data.reference_md import ISOLATED_ATOM_CALCULATORS

    methods = {a.info.get("reference_method") for a in structures}
    method = methods.pop() if len(methods) == 1 else None
    return method if method in ISOLATED_ATOM_CALCULATORS and energy_of(structures[0]) is not None else None


def _add_reference(normalization: dict, settings: TrainSettings, packed: PackedStructures, elements: list[int]) -> None:
    """With ``--element-energies`` other than least squares, its values ({Z: eV}, settled into the model at the end:
    :func:`~.normalization.settle_open_offsets`) and where they come from, for the summary of this run and its
    fine-tunes."""
    if (reference := _reference_energies(settings, packed, elements)) is not None:
        spec = settings.element_energies
        normalization.update(reference_energies=reference,
                             reference_source=f"{spec} isolated atoms" if isinstance(spec, str) else "given values")


def _reference_energies(settings: TrainSettings, packed: PackedStructures, elements: list[int]) -> dict | None:
    """{Z: eV} that fix the energy zero's part the training compositions leave open (``--element-energies``:
    isolated atoms by ``xtb``/``emt``, or given values); None for least squares."""
    spec = settings.element_energies
    if spec is None:
        return None
    if packed.full.energy is None:
        raise BoltzmatchError(f"--element-energies: {settings.data} has no energies, so the model has no energy zero "
                              "to fix")
    if isinstance(spec, str):
        from ..data.reference_md import isolated_atom_energies

        return isolated_atom_energies(spec, elements)
    from ase.data import chemical_symbols

    missing = [chemical_symbols[z] for z in elements if chemical_symbols[z] not in spec]
    if missing:
        raise BoltzmatchError(f"--element-energies: no value for {', '.join(missing)} (in {settings.data})")
    return {z: spec[chemical_symbols[z]] for z in elements}


def _start_linear_offsets(net: nn.Module, element_energy: dict) -> None:
    """The linear potential's per-element energies (eV, inside θ) start at their least-squares values: from 0,
    Adam moved them ~lr per step, and −1,000 eV per carbon was out of reach (energy MAE 273 eV after
    training)."""
    with torch.no_grad():
        elements = net.descriptors.element_index.elements
        offsets = torch.tensor([element_energy[z] for z in elements], dtype=net.theta.dtype)
        net.theta[net.element_offset_slice()] = offsets


def _prior_config(settings: TrainSettings, out: Path, resume: bool, train_frames: list) -> dict | None:
    """The run's prior: as stored (resume), the parent's (fine-tuning), or fitted on the training split."""
    if resume:
        return rd.read_config(out).get("prior")
    if settings.parent:
        return rd.read_config(settings.parent).get("prior")
    if settings.prior is None:
        return None
    if settings.temperature is None:
        raise BoltzmatchError("--prior bonded fits its constants at the data's temperature: pass --temperature (K)")
    return BondedPrior.fit(train_frames, settings.temperature).to_config()


def _freeze(net: nn.Module, pattern: str | None) -> None:
    """Stop gradients of parameters whose name matches the glob ``pattern`` (e.g. ``embedding.*``)."""
    if not pattern:
        return
    from fnmatch import fnmatch

    names = [name for name, _ in net.named_parameters()]
    matched = [name for name in names if fnmatch(name, pattern)]
    if not matched:
        raise BoltzmatchError(f"--freeze {pattern!r} matches no parameter; names look like {', '.join(names[:4])}")
    for name, parameter in net.named_parameters():
        if name in matched:
            parameter.requires_grad_(False)
