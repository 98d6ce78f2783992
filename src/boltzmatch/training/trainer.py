"""Training energy models: Adam, plateau or cosine schedule, early stopping, EMA, clipping, the closed
form of the linear potential, and DistributedDataParallel under torchrun; epochs, checkpoints and
resume are the run loop's (:mod:`.loop`).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, fields
from pathlib import Path

import torch
from torch import nn

from ..data.atoms_batch import AtomsBatch
from ..errors import BoltzmatchError
from ..models.registry import MODELS, load_config, validate_config
from ..runs import run_dir as rd
from ..utils.device import adam, autocast, device_name, grad_scaler, set_matmul_precision
from .ema import WeightAverage
from .graphed_step import BatchGradients, Predictions, cuda_graphs_apply
from .loop import Step, run_loop, write_summary
from .normalization import batch_formulas, refit_energy_offsets, settle_open_offsets
from .padding import fit_padding, pad_batch
from .prepare import PreparedRun, prepare
from .run_files import write_metrics
from .settings import SCHEDULES, SOLVERS, TrainSettings
from .summary import format_train_summary
from .validation import split_errors, validate

__all__ = ["SCHEDULES", "SOLVERS", "EnergyStep", "TrainSettings", "format_train_summary", "run_training", "train"]


def train(
    data: str | Path,
    *,
    out: str | Path,
    model: str = "schnet",
    config: dict | str | Path | None = None,
    objective: str = "energy-forces",
    energy_weight: float | None = None,
    force_weight: float | None = None,
    stress_weight: float | None = None,
    epochs: int = 100,
    batch_size: int = 32,
    lr: float = 1e-3,
    schedule: str = "plateau",
    patience: int = 20,
    ema_decay: float | str | None = "auto",
    clip: float | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split_method: str = "random",
    split_file: str | None = None,
    val_data: str | Path | None = None,
    seed: int = 0,
    max_minutes: float | None = None,
    temperature: float | None = None,
    sigma: list[float] | tuple[float, ...] | None = None,
    n_probes: int = 1,
    probe: str = "rademacher",
    antithetic: bool | None = None,
    solver: str = "iterative",
    ridge: float | str = "auto",
    resume: bool = False,
    progress: bool = True,
    data_options: dict | None = None,
    cd_options: dict | None = None,
    prior: str | None = None,
    huber_delta: float | None = None,
    parent: str | Path | None = None,
    freeze: str | None = None,
    loss: str | None = None,
    device: str | None = None,
    precision: str = "float32",
    cuda_graphs: bool = False,
    element_energies: str | dict | None = "auto",
) -> dict:
    """Train an energy model on ``data`` and write a run directory ``out``; returns the summary.

    ``objective``: the supervised losses ``energy`` (per-atom energy MSE), ``forces`` (force-component MSE,
    eV²/Å²), ``energy-forces`` (weighted sum; the default), a score objective or ``cd`` (below).
    ``stress_weight`` weighs the stress of crystals (the virial-per-atom MSE, eV²/atom²,
    :mod:`~boltzmatch.objectives.supervised`); ``None``: :data:`~.settings.DEFAULT_STRESS_WEIGHT` where some
    crystal carries a stress label (the term reads the structures that carry one).
    Validation (the best model, the learning-rate schedule, the closed form's ridge): a ``val_fraction`` share of
    ``data`` split by ``split_method`` (random with ``seed``, or contiguous blocks), the indices of ``split_file``,
    or every frame of ``val_data`` (a structure file; ``data`` then gives only its ``test_fraction`` share), such
    as a separately seeded trajectory, whose frames are not femtoseconds from training ones.
    ``element_energies`` fixes what the training compositions leave open of the energy zero (one molecule's frames
    fix only its own): ``"xtb"``/``"emt"`` isolated atoms, or {symbol: eV}, as MACE's E0s; None: least squares;
    ``"auto"``: the isolated atoms of the method the frames name (``generate`` records it), else least squares.
    ``lr`` is Adam's learning rate; ``clip`` the gradient-norm limit, off by default (a limit of 10 slowed SchNet
    on ethanol: force MAE 421 vs 289 meV/Å after 30 epochs);
    ``ema_decay`` the per-step decay of the weights' moving average that validation and the saved model use
    (``"auto"``: :func:`~.settings.auto_ema_decay`; ``None``: off).
    ``resume=True`` continues the run in ``out`` from its last checkpoint and reaches the same result as an
    uninterrupted run. ``max_minutes`` stops after the epoch that crosses this wall-time budget.

    Score objectives: ``fisher``, ``ism``, ``ssm``, ``dsm`` at ``temperature`` (K), with noise levels
    ``sigma`` (Å) for dsm (default: derived from the data by :func:`~boltzmatch.objectives.score.dsm_sigma_from_data`;
    ``antithetic`` pairs x ± σε, on by default for dsm: twice the cost, far less variance at small σ), ``n_probes``
    for ssm, ``huber_delta`` (eV/Å) for a Fisher divergence robust to outlying force residuals, or ``cd``
    (contrastive divergence, model samples by Langevin MD from a replay buffer; ``cd_options`` steps, timestep fs,
    friction 1/fs, buffer, reinit, alpha); the energy/force weights then mix in supervised terms. ``prior='bonded'``
    adds bonds, angles, impropers and torsions fitted to the training frames by Boltzmann inversion at
    ``temperature``, and walls beyond the pair distances they filled (:mod:`boltzmatch.models.prior`; one
    molecule), and trains the network on the rest. ``solver='closed-form'`` fits the linear potential exactly in
    one pass (objectives energy, fisher, ism; ``ridge`` relative to the unit diagonal of the scaled system, or
    ``"auto"``: chosen on the validation split, see :func:`~boltzmatch.training.fit_closed_form`).
    ``parent`` (a run directory or model file) starts from that model, its normalisation and prior
    (what :func:`~boltzmatch.training.finetune` does); parameters matching the glob ``freeze`` stay fixed.
    ``loss`` is the old name of ``objective`` (deprecated; it goes in the next release).
    ``device``: auto (CUDA when present), cpu, cuda or cuda:N (a resumed run: its own unless given); ``precision``:
    float32, tf32 (CUDA matmuls), bf16 or fp16 autocast (force errors: docs/gpu.md); ``cuda_graphs``: replay each
    batch shape's step as a CUDA graph (:mod:`.graphed_step`).
    """
    if loss is not None:
        warnings.warn("train(loss=...) is deprecated and goes in the next release; use objective=...",
                      DeprecationWarning, stacklevel=2)
        objective = loss
    arguments = dict(locals())
    out = Path(out)
    if resume:
        return _resume(out, device, cuda_graphs, progress)
    names = {f.name for f in fields(TrainSettings)}
    settings = TrainSettings(**{k: v for k, v in arguments.items() if k in names})
    settings.device = device or "auto"
    settings.check()
    return run_training(settings, _model_config(model, config, parent), out, resume=False, progress=progress,
                        model_name=model)


def _model_config(model: str, config: dict | str | Path | None, parent: str | Path | None) -> dict | None:
    """The model config of a new run: the parent's, a YAML file's, a dict's (checked), or None: ``model``'s defaults
    with the data's elements (filled in by :func:`~.prepare.prepare`)."""
    if parent is not None:
        return dict(rd.read_config(parent)["model"])
    if isinstance(config, (str, Path)):
        return load_config(config)
    if isinstance(config, dict):
        return validate_config({"name": model, **config})
    if model not in MODELS:
        raise BoltzmatchError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    return None


def _resume(out: Path, device: str | None, cuda_graphs: bool, progress: bool) -> dict:
    """Continue the run in ``out`` with its stored settings, on ``device`` where given."""
    stored = rd.read_run_config(out, None)
    settings = TrainSettings.from_config(stored["training"])
    settings.device = device or settings.device
    settings.cuda_graphs = settings.cuda_graphs or cuda_graphs  # replays the same kernels: safe to turn on
    return run_training(settings, stored["model"], out, resume=True, progress=progress)


def run_training(settings: TrainSettings, model_config: dict | None, out: Path, *, resume: bool, progress: bool,
                 model_name: str | None = None) -> dict:
    """Train with checked ``settings`` (fresh, or ``resume`` the run in ``out``); returns the summary."""
    run = prepare(settings, model_config, out, resume, model_name)
    if settings.solver == "closed-form":
        return _closed_form(run, out)
    step = EnergyStep(run)
    if not resume and run.dist.main:
        _start_run_dir(out, run)
    run.dist.barrier()
    state = run_loop(step, out, epochs=settings.epochs, resume=resume, progress=progress,
                     max_minutes=settings.max_minutes, main=run.dist.main, barrier=run.dist.barrier, tensorboard=True)
    return _finish(run, state, out, step.graph_summary())


class EnergyStep(Step):
    """An epoch of an energy model: shuffled minibatches of the objective, Adam, clipping, EMA; then the
    validation errors and objective, which drive the schedule, ``model.pt`` and early stopping."""

    desc, unit = "train", "epoch"

    def __init__(self, run: PreparedRun):
        self.run_ = run
        settings, net = run.settings, run.net
        self.device = run.dist.device
        set_matmul_precision(settings.precision)
        self.scaler = grad_scaler(self.device, settings.precision)  # fp16's loss scaling; a no-op otherwise
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self.train_model = (nn.parallel.DistributedDataParallel(net, device_ids=device_ids) if run.dist.active
                            else net)
        self.trainable = [p for p in net.parameters() if p.requires_grad]
        if not self.trainable:
            raise BoltzmatchError(f"--freeze {settings.freeze!r} froze every parameter; nothing to train")
        self.optimizer = adam(self.trainable, settings.lr)
        self.scheduler = None
        if settings.schedule == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, factor=0.5, patience=max(1, settings.patience // 4))
        elif settings.schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=settings.epochs)
        self.ema = None
        if settings.ema_decay:
            self.ema = WeightAverage(net, settings.ema_decay)
        self.eval_model = self.ema.module if self.ema is not None else net
        graphs = cuda_graphs_apply(run, self.device)
        self.gradients = BatchGradients(self._compute, lambda loss: self.scaler.scale(loss).backward(),
                                        self.trainable, graphs=graphs)
        full = run.packed.full
        self.predictions = Predictions(self.eval_model, forces=full.forces is not None, stress=full.stress is not None,
                                       graphs=graphs)
        # molecules of different sizes: training batches padded to one shape, so that their graph replays
        pairs = run.packed.pairs
        pad = graphs and getattr(pairs, "complete", False) and getattr(net, "prior", None) is None
        self.padding = fit_padding(run.packed, run.split.train, settings.batch_size, net.cutoff) if pad else None
        #: validation's batches (twice the size) padded the same way, for its replays
        self.validation_padding = (fit_padding(run.packed, run.split.val, 2 * settings.batch_size, net.cutoff)
                                   if pad else None)
        self.steps = 0  # optimizer steps of this session

    def graph_summary(self) -> dict:
        """How many of this session's steps replayed a CUDA graph (``cuda_graph_steps``, of ``steps``), and the
        padded batch's atoms where batches were padded; empty without graphs."""
        if not self.gradients.graphs:
            return {}
        summary = {"cuda_graph_steps": self.gradients.static_steps, "steps": self.steps}
        if self.padding is not None:
            summary["padded_atoms"] = self.padding.n_atoms
        return summary

    def _compute(self, batch: AtomsBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with autocast(self.device, self.run_.settings.precision):
            return self.run_.objective(self.train_model, batch)

    def _train_epoch(self, index: int) -> dict[str, float]:
        run, settings = self.run_, self.run_.settings
        run.net.train()
        generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + index)
        order = run.split.train[torch.randperm(len(run.split.train), generator=generator).numpy()]
        # per step the loss and metrics in one tensor (one op; summing them one by one was six), on the device:
        # the epoch sums and reads them back once, at its end
        steps: list[torch.Tensor] = []
        names: list[str] = []
        for start in range(0, len(order), settings.batch_size):
            batch = run.packed.batch(run.dist.mine(order[start:start + settings.batch_size]))
            self.steps += 1
            if self.padding is not None:  # a batch beyond the padded shape runs as it is
                batch = pad_batch(batch, self.padding) or batch
            loss, metrics = self.gradients(batch)  # zero_grad, the objective, backward: eager or a CUDA graph
            if settings.clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.trainable, settings.clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema is not None:
                self.ema.update(run.net)
            names = ["loss", *metrics]
            steps.append(torch.stack([loss.detach(), *(v.detach().to(loss.dtype) for v in metrics.values())]))
        if not steps:
            return {}
        means = torch.stack(steps).double().mean(0)
        if run.dist.active:
            means = run.dist.all_sum(means) / run.dist.world_size
        return {f"train_{k}": v for k, v in zip(names, means.tolist(), strict=True)}

    def run(self, index: int, state: dict) -> dict[str, float]:
        run, settings = self.run_, self.run_.settings
        train_row = self._train_epoch(index)
        self.eval_model.eval()
        shape = self.validation_padding
        val, val_loss = validate(run.validation_objective, self.eval_model, run.packed, run.split.val,
                                 settings.batch_size * 2, settings.seed, run.dist, self.predictions,
                                 None if shape is None else lambda batch: pad_batch(batch, shape))
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(val_loss)
        elif self.scheduler is not None:
            self.scheduler.step()
        return {"lr": self.optimizer.param_groups[0]["lr"], **train_row, "val_loss": val_loss,
                **{f"val_{k}": v for k, v in val.items()}}

    def improved(self, row: dict, state: dict) -> bool:
        # CD keeps its last epoch: the dsm validation loss is blind to how the model shares probability
        # between basins (score matching's blind spot, which is what CD corrects), so selecting by it undid
        # the CD fine-tune (alanine dipeptide: best epoch 1 of 21, φ/ψ JSD 9.8× the floor; last epoch 2.8×)
        better = (self.run_.settings.objective_name in ("cd", "fisher-cd")  # the last epoch: CD hovers about 0
                  or row["val_loss"] < state.get("best_val", math.inf))
        if better:
            state.update(best_val=row["val_loss"], best_epoch=state["epoch"], bad_epochs=0)
        else:
            state["bad_epochs"] = state.get("bad_epochs", 0) + 1
        return better

    def stop(self, row: dict, state: dict) -> bool:
        return state.get("bad_epochs", 0) >= self.run_.settings.patience

    def postfix(self, row: dict) -> dict[str, str]:
        shown = {"val_F_MAE": row.get("val_force_mae_meV_A"), "val_E_MAE": row.get("val_energy_mae_meV")}
        return {"loss": f"{row.get('train_loss', 0):.4g}", **{k: f"{v:.1f}" for k, v in shown.items() if v is not None}}

    def model_state(self) -> dict:
        return self.eval_model.state_dict()

    def checkpoint(self) -> dict:
        objective = self.run_.objective
        return {"model": self.run_.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "ema": None if self.ema is None else self.ema.state_dict(), "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                "scaler": self.scaler.state_dict(),
                "objective": objective.state_dict() if hasattr(objective, "state_dict") else None}

    def restore(self, checkpoint: dict) -> None:
        self.run_.net.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(checkpoint["ema"])
        torch.set_rng_state(checkpoint["rng"])
        if checkpoint.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(checkpoint["cuda_rng"], self.device)
        if checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        if checkpoint.get("objective") is not None:
            self.run_.objective.load_state_dict(checkpoint["objective"])


def _base_summary(run: PreparedRun, out: Path) -> dict:
    summary = {"run_dir": str(out), "n_train": len(run.split.train), "device": device_name(run.packed.device),
               "precision": run.settings.precision, "objective": run.settings.objective_name,
               "split": _split_name(run.settings), "one_molecule": run.one_molecule,
               "n_val": len(run.split.val), "n_test": len(run.split.test)}
    labelled = run.packed.full.stress_labelled
    if run.settings.stress_weight and labelled is not None:  # the stress term, and how many structures of the
        n_data = run.packed.n_structures - (len(run.split.val) if run.settings.val_data else 0)  # data it reads
        summary.update(stress_weight=run.settings.stress_weight, n_stress=int(labelled[:n_data].sum()),
                       n_structures=n_data)
    if run.normalization.get("reference_energies"):  # the reference fixes what the compositions leave open
        summary["open_energy_zero_from"] = run.normalization.get("reference_source", "given values")
    elif run.normalization.get("compositions"):
        summary["energy_zero_fixed_for"] = run.normalization["compositions"]
    return summary


def _split_name(settings: TrainSettings) -> str:
    """The split as the summary names it: the split file, or the method with the validation file if one."""
    if settings.val_data:
        return f"{settings.split_method}, validation {settings.val_data}"
    return settings.split_file or settings.split_method


def _add_errors(summary: dict, model: nn.Module, run: PreparedRun, batch_size: int) -> None:
    for name, idx in (("val", run.split.val), ("test", run.split.test)):
        if len(idx):
            summary.update({f"{name}_{k}": v for k, v in split_errors(model, run.packed, idx, batch_size).items()})


def _finish(run: PreparedRun, state: dict, out: Path, graphs: dict | None = None) -> dict:
    """The summary of a finished loop: the best model's errors, σ, prior, refitted energy zero, and ``graphs``
    (:meth:`EnergyStep.graph_summary`)."""
    settings = run.settings
    best = rd.load(out, map_location=run.packed.device)
    summary = {**_base_summary(run, out), "epochs": state["epoch"], "best_epoch": state.get("best_epoch", 0),
               "epochs_asked": settings.epochs, "end_reason": state.get("end_reason", "all epochs"),
               "wall_seconds": state["session_seconds"], **(graphs or {})}
    if settings.objective_name == "dsm":
        summary.update(dsm_sigma=settings.sigma, antithetic=bool(settings.antithetic))
    if run.prior_config is not None:
        terms = ("bonds", "angles", "impropers", "torsions", "walls")
        summary["prior"] = {**{key: len(run.prior_config.get(key, ())) for key in terms},
                            "temperature": run.prior_config["temperature"]}
    if run.packed.full.energy is not None:
        # score objectives cannot see a constant energy shift, and an energy loss weighed beside forces barely
        # holds it (SchNet on xTB N-methylacetamide drifted 0.15 eV from its training energies): refit it
        summary["energy_offset_shift_meV"] = 1000 * refit_energy_offsets(best, run.packed, run.split.train,
                                                                         settings.batch_size * 2)
        _settle_open_offsets(best, run)
        if run.dist.main:
            rd.save_torch(best.state_dict(), out / rd.MODEL)
    _add_errors(summary, best, run, settings.batch_size * 2)
    if run.dist.main:
        write_summary(out, format_train_summary(summary))
    return summary


def _start_run_dir(out: Path, run: PreparedRun) -> None:
    out.mkdir(parents=True, exist_ok=True)
    run.split.save(out / rd.SPLIT)
    config = {"model": run.model_config, "normalization": run.normalization, "training": asdict(run.settings),
              "parent": run.settings.parent, "energy_zero": run.packed.full.energy is not None}
    if run.prior_config is not None:
        config["prior"] = run.prior_config
    rd.write_config(out, config)


def _settle_open_offsets(model: nn.Module, run: PreparedRun) -> None:
    """With ``--element-energies``, the part of the energy zero the training compositions leave open takes the
    reference's value (:func:`~.normalization.settle_open_offsets`), after every fit that moves the offsets."""
    reference = run.normalization.get("reference_energies")
    if reference:  # every element of the data: one the training frames lack is wholly open
        reference = {int(z): float(v) for z, v in reference.items()}
        fixed = run.normalization.get("compositions")  # a fine-tune's: its parent's and its own frames'
        if fixed is None and run.settings.parent:
            return  # the parent's and this run's compositions fix every element's energy
        if fixed is None:
            fixed = batch_formulas(run.packed.batch(run.split.train), sorted(reference))
        settle_open_offsets(model, fixed, sorted(reference), reference)


def _closed_form(run: PreparedRun, out: Path) -> dict:
    """The linear potential's exact fit (:func:`~boltzmatch.training.fit_closed_form`), written as a
    one-epoch run."""
    from .closed_form import fit_closed_form

    settings = run.settings
    start_time = time.perf_counter()
    info = fit_closed_form(run.net, run.packed, run.split.train, objective=settings.objective_name,
                           temperature=settings.temperature, ridge=settings.ridge, val_indices=run.split.val)
    summary = {**_base_summary(run, out), "epochs": 1, "best_epoch": 1, "end_reason": "closed-form fit",
               "wall_seconds": time.perf_counter() - start_time, "condition_number": info["condition_number"],
               "ridge": info["ridge"], "rank": info["rank"], "n_parameters": info["n_parameters"]}
    _settle_open_offsets(run.net, run)
    if run.dist.main:
        _start_run_dir(out, run)
        rd.save_torch(run.net.state_dict(), out / rd.MODEL)
    _add_errors(summary, run.net, run, 256)
    if run.dist.main:
        row = {"epoch": 1, **{k: v for k, v in summary.items() if k.startswith(("val_", "test_"))},
               "time_s": summary["wall_seconds"]}
        write_metrics(out, [row])
        write_summary(out, format_train_summary(summary))
    return summary

