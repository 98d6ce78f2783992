"""The training loop: Adam, plateau or cosine schedule, early stopping, EMA, clipping,
atomic checkpoints every epoch, exact resume, and DistributedDataParallel under torchrun.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data import Split, read_structures, split_indices
from ..data.packed import PackedStructures
from ..errors import BoltzmatchError
from ..models.base import energy_and_forces
from ..models.external import copy_external
from ..models.prior import PRIORS, BondedPrior, attach_prior
from ..models.registry import MODELS, build_model, load_config, validate_config
from ..objectives.score import SHIFT_BLIND_OBJECTIVES, dsm_sigma_from_data, make_objective
from ..utils.atomic import atomic_write_text
from ..utils.table import format_table
from . import run_dir as rd
from .errors_accumulator import ErrorAccumulator
from .normalization import fit_normalization, refit_energy_offsets

SCHEDULES = ("plateau", "cosine", "none")
SOLVERS = ("iterative", "closed-form")


@dataclass
class TrainSettings:
    """Everything a run needs besides the model config; stored in ``config.yaml`` under ``training``."""

    data: str
    loss: str = "energy-forces"
    energy_weight: float = 1.0
    force_weight: float = 100.0
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    schedule: str = "plateau"
    patience: int = 20
    ema_decay: float | None = 0.99
    clip: float | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_method: str = "random"
    split_file: str | None = None
    seed: int = 0
    max_minutes: float | None = None
    data_options: dict = field(default_factory=dict)
    objective: str | None = None
    temperature: float | None = None
    sigma: list | None = None
    n_probes: int = 1
    probe: str = "rademacher"
    antithetic: bool | None = None
    solver: str = "iterative"
    ridge: float | str = "auto"
    parent: str | None = None
    freeze: str | None = None
    cd_options: dict = field(default_factory=dict)
    prior: str | None = None
    huber_delta: float | None = None

    @property
    def objective_name(self) -> str:
        return self.objective or self.loss


class _Distributed:
    """torchrun's environment: rank, world size, and gloo on CPU."""

    def __init__(self):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.active = self.world_size > 1
        if self.active and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        if self.active:
            torch.distributed.all_reduce(values)
        return values

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()


def _default_config(name: str, elements: list[int]) -> dict:
    return {"name": name, "elements": elements}


def _evaluate(model: nn.Module, data: PackedStructures, indices: np.ndarray, batch_size: int,
              dist: _Distributed | None = None) -> dict[str, float]:
    acc = ErrorAccumulator()
    mine = indices if dist is None else indices[dist.rank::dist.world_size]
    has_forces = data.full.forces is not None
    if data.full.energy is None and not has_forces:
        return {}
    for start in range(0, len(mine), batch_size):
        batch = data.batch(mine[start:start + batch_size])
        energy, forces = energy_and_forces(model, batch, compute_forces=has_forces)
        acc.add(batch, energy, forces)
    if dist is not None and dist.active:
        acc.load_tensor(dist.all_sum(acc.as_tensor()))
    return acc.result()


def train(
    data: str | Path,
    *,
    out: str | Path,
    model: str = "schnet",
    config: dict | str | Path | None = None,
    loss: str = "energy-forces",
    energy_weight: float | None = None,
    force_weight: float | None = None,
    epochs: int = 100,
    batch_size: int = 32,
    lr: float = 1e-3,
    schedule: str = "plateau",
    patience: int = 20,
    ema_decay: float | None = 0.99,
    clip: float | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split_method: str = "random",
    split_file: str | None = None,
    seed: int = 0,
    max_minutes: float | None = None,
    objective: str | None = None,
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
) -> dict:
    """Train an energy model on ``data`` and write a run directory ``out``; returns the summary.

    Losses: ``energy`` (per-atom energy MSE), ``forces`` (force-component MSE, eV²/Å²),
    ``energy-forces`` (weighted sum). ``lr`` is Adam's learning rate; ``clip`` the gradient-norm
    limit, off by default (a limit of 10 slowed SchNet on ethanol: force MAE 421 vs 289 meV/Å after
    30 epochs); ``ema_decay`` the decay of the exponential moving average of weights used for
    validation and the saved model (``None`` turns it off). ``resume=True`` continues the run in
    ``out`` from its last checkpoint and reaches the same result as an uninterrupted run.
    ``max_minutes`` stops after the epoch that crosses this wall-time budget.

    ``objective`` (overrides ``loss``): ``energy``, ``forces``, ``energy-forces``, or a score
    objective ``fisher``, ``ism``, ``ssm``, ``dsm`` at ``temperature`` (K), with noise levels
    ``sigma`` (Å) for dsm (default: derived from the data by
    :func:`~boltzmatch.objectives.score.dsm_sigma_from_data`; ``antithetic`` pairs x ± σε, on by
    default for dsm: twice the cost, far less variance at small σ), ``n_probes`` for ssm,
    ``huber_delta`` (eV/Å) for a Fisher divergence robust to outlying force residuals, or
    ``cd`` (contrastive divergence, model samples by Langevin MD from a replay buffer; ``cd_options``
    steps, timestep fs, friction 1/fs, buffer, reinit, alpha); the
    energy/force weights then mix in
    supervised terms. ``prior='bonded'`` adds bonds, angles, impropers and torsions fitted to the
    training frames by Boltzmann inversion at ``temperature``, and walls beyond the pair distances they
    filled (:mod:`boltzmatch.models.prior`; one molecule), and trains the network on the rest.
    ``solver='closed-form'`` fits the linear potential exactly in one pass
    (objectives energy, fisher, ism; ``ridge`` relative to the unit diagonal of the scaled system, or
    ``"auto"``: chosen on the validation split, see :func:`~boltzmatch.training.fit_closed_form`).
    """
    out = Path(out)
    if resume:
        stored = rd.read_config(out)
        settings = TrainSettings(**stored["training"])
        model_config = stored["model"]
    else:
        if schedule not in SCHEDULES:
            raise BoltzmatchError(f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if value < 1:
                raise BoltzmatchError(f"{name} must be a positive integer, got {value}")
        if not lr > 0:
            raise BoltzmatchError(f"lr must be positive, got {lr}")
        if solver not in SOLVERS:
            raise BoltzmatchError(f"unknown solver {solver!r}; expected one of {', '.join(SOLVERS)}")
        if prior is not None and prior not in PRIORS:
            raise BoltzmatchError(f"unknown prior {prior!r}; expected one of {', '.join(PRIORS)}")
        # supervised losses weigh energy 1 and forces 100 by default; score objectives add
        # supervised terms only when asked, so that they train on positions alone
        score = objective is not None and objective not in ("energy", "forces", "energy-forces")
        if energy_weight is None:
            energy_weight = 0.0 if score else 1.0
        if force_weight is None:
            force_weight = 0.0 if score else 100.0
        settings = TrainSettings(
            data=str(data), loss=loss, energy_weight=energy_weight, force_weight=force_weight, epochs=epochs,
            batch_size=batch_size, lr=lr, schedule=schedule, patience=patience, ema_decay=ema_decay, clip=clip,
            val_fraction=val_fraction, test_fraction=test_fraction, split_method=split_method,
            split_file=None if split_file is None else str(split_file), seed=seed, max_minutes=max_minutes,
            data_options=data_options or {}, objective=objective, temperature=temperature,
            sigma=None if sigma is None else list(sigma),
            n_probes=n_probes, probe=probe, antithetic=antithetic, solver=solver, ridge=ridge,
            cd_options=dict(cd_options or {}), prior=prior, huber_delta=huber_delta,
        )
        if isinstance(config, (str, Path)):
            model_config = load_config(config)
        elif isinstance(config, dict):
            model_config = validate_config({"name": model, **config})
        else:
            if model not in MODELS:
                raise BoltzmatchError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
            model_config = None
    return _run(settings, model_config, out, resume=resume, progress=progress, model_name=model)


def _run(settings: TrainSettings, model_config: dict | None, out: Path, *, resume: bool, progress: bool,
         model_name: str | None = None) -> dict:
    from ..utils.progress import progress_bar

    dist = _Distributed()

    def objective_from(settings: TrainSettings):
        # before σ is derived from the data a placeholder stands in: only ``needs`` is read then
        return make_objective(
            settings.objective_name, temperature=settings.temperature, energy_weight=settings.energy_weight,
            force_weight=settings.force_weight, sigma=settings.sigma or [1.0], n_probes=settings.n_probes,
            probe=settings.probe, antithetic=bool(settings.antithetic), cd_options=settings.cd_options,
            seed=settings.seed, huber_delta=settings.huber_delta,
        )

    if settings.objective_name == "dsm" and settings.antithetic is None:
        settings.antithetic = True  # measured: the variance at small σ otherwise needs ~10⁶ samples
    objective = objective_from(settings)
    structures = read_structures(settings.data, require=objective.needs, **settings.data_options)
    if settings.objective_name == "dsm" and not settings.sigma:
        settings.sigma = [round(dsm_sigma_from_data(structures), 6)]
        objective = objective_from(settings)
    validation_objective = objective
    if settings.objective_name == "cd":
        # the CD loss is a difference of energies that hovers about 0 at any optimum; validation reports
        # antithetic dsm at the data's σ, a Fisher divergence from positions (it drives the learning-rate
        # schedule; the model kept is the last epoch's, see below)
        validation_objective = make_objective("dsm", temperature=settings.temperature, energy_weight=0.0,
                                              force_weight=0.0, sigma=[dsm_sigma_from_data(structures)],
                                              antithetic=True)
    elements = sorted({int(z) for a in structures for z in a.numbers})
    one_molecule = len({tuple(a.numbers) for a in structures}) == 1  # frames of one trajectory, typically
    if model_config is None:
        model_config = validate_config(_default_config(model_name or "schnet", elements))
    model_config.setdefault("dtype", "float32")
    model_config.setdefault("elements", elements)
    dtype = torch.float64 if model_config["dtype"] == "float64" else torch.float32
    packed = PackedStructures(structures, dtype=dtype)

    if settings.split_file:
        split = Split.load(settings.split_file, n_structures=len(packed))
    else:
        split = split_indices(len(packed), val_fraction=settings.val_fraction, test_fraction=settings.test_fraction,
                              seed=settings.seed, method=settings.split_method)
    if len(split.val) == 0:
        split = Split(train=split.train, val=split.train, test=split.test)

    torch.manual_seed(settings.seed)
    model_dir = out if resume else (settings.parent if settings.parent and Path(settings.parent).is_dir() else None)
    net = build_model(model_config, base_dir=model_dir)
    if model_config.get("file") and not resume:
        model_config = copy_external(model_config, model_dir, out)  # the run directory holds its model file
    if resume:
        normalization = rd.read_config(out)["normalization"]
    elif settings.parent:
        normalization = rd.read_config(settings.parent)["normalization"]
    elif model_config.get("file"):
        normalization = {"element_energy": {}, "energy_scale": 1.0}  # a model file keeps its own reference
    else:
        element_energy, scale = fit_normalization(packed.batch(split.train), elements)
        normalization = {"element_energy": element_energy, "energy_scale": scale}
    if hasattr(net, "set_normalization") and model_config["name"] != "linear":
        net.set_normalization(normalization["element_energy"], normalization["energy_scale"])
    if model_config["name"] == "linear":
        normalization = {"element_energy": dict.fromkeys(elements, 0.0), "energy_scale": 1.0}
    prior_config = _prior_config(settings, out, resume, [structures[i] for i in split.train])
    attach_prior(net, prior_config, f"--prior {settings.prior}" if settings.prior else "parent run's prior")
    if settings.parent and not resume:
        net.load_state_dict(rd.load(settings.parent).state_dict())
    elif hasattr(net, "fit_pair_basis") and not resume:
        net.fit_pair_basis(packed.batch(split.train))  # the linear potential's basis spans the data
    _freeze(net, settings.freeze)

    if settings.solver == "closed-form":
        return _closed_form(settings, net, model_config, normalization, packed, split, out, dist, one_molecule)

    train_model: nn.Module = net
    if dist.active:
        train_model = nn.parallel.DistributedDataParallel(net)
    trainable = [p for p in net.parameters() if p.requires_grad]
    if not trainable:
        raise BoltzmatchError(f"--freeze {settings.freeze!r} froze every parameter; nothing to train")
    optimizer = torch.optim.Adam(trainable, lr=settings.lr)
    if settings.schedule == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=max(1, settings.patience // 4)
        )
    elif settings.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    else:
        scheduler = None
    ema = None
    if settings.ema_decay:
        ema = torch.optim.swa_utils.AveragedModel(
            net, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(settings.ema_decay)
        )

    state = {"epoch": 0, "best_val": math.inf, "best_epoch": 0, "bad_epochs": 0, "rows": []}
    if resume:
        checkpoint_path = out / rd.CHECKPOINT
        if not checkpoint_path.exists():
            raise BoltzmatchError(f"{out}: no {rd.CHECKPOINT} to resume from")
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        net.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        if ema is not None:
            ema.load_state_dict(checkpoint["ema"])
        state = checkpoint["state"]
        torch.set_rng_state(checkpoint["rng"])
        if checkpoint.get("objective") is not None:
            objective.load_state_dict(checkpoint["objective"])
    elif dist.main:
        _start_run_dir(out, settings, model_config, normalization, split, packed.full.energy is not None, prior_config)
    dist.barrier()

    writer = _tensorboard(out) if dist.main else None
    eval_model = ema.module if ema is not None else net
    start_time = time.perf_counter()
    epochs_bar = progress_bar(range(state["epoch"], settings.epochs), initial=state["epoch"], total=settings.epochs,
                      desc="train", unit="epoch", disable=(None if progress else True) if dist.main else True,
                      mininterval=1.0)
    for epoch in epochs_bar:
        net.train()
        generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + epoch)
        order = split.train[torch.randperm(len(split.train), generator=generator).numpy()]
        totals, n_batches = {}, 0
        for start in range(0, len(order), settings.batch_size):
            chunk = order[start:start + settings.batch_size]
            mine = chunk[dist.rank::dist.world_size] if dist.active else chunk
            batch = packed.batch(mine)
            loss, metrics = objective(train_model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.clip:
                nn.utils.clip_grad_norm_(trainable, settings.clip)
            optimizer.step()
            if ema is not None:
                ema.update_parameters(net)
            totals["loss"] = totals.get("loss", 0.0) + float(loss.detach())
            for k, v in metrics.items():
                totals[k] = totals.get(k, 0.0) + v
            n_batches += 1
        train_row = {f"train_{k}": v / max(n_batches, 1) for k, v in totals.items()}
        if dist.active:
            values = dist.all_sum(torch.tensor(list(train_row.values()), dtype=torch.float64)) / dist.world_size
            train_row = dict(zip(train_row, values.tolist()))
        eval_model.eval()
        val = _evaluate(eval_model, packed, split.val, settings.batch_size * 2, dist)
        val_loss = _objective_loss(validation_objective, eval_model, packed, split.val, settings.batch_size,
                                   settings.seed, dist)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val_loss)
        elif scheduler is not None:
            scheduler.step()
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], **train_row, "val_loss": val_loss,
               **{f"val_{k}": v for k, v in val.items()}, "time_s": time.perf_counter() - start_time}
        state["rows"].append(row)
        state["epoch"] = epoch + 1
        # CD keeps its last epoch: the dsm validation loss is blind to how the model shares probability
        # between basins (score matching's blind spot, which is what CD corrects), so selecting by it undid
        # the CD fine-tune (alanine dipeptide: best epoch 1 of 21, φ/ψ JSD 9.8× the floor; last epoch 2.8×)
        improved = settings.objective_name == "cd" or val_loss < state["best_val"]
        if improved:
            state.update(best_val=val_loss, best_epoch=epoch + 1, bad_epochs=0)
        else:
            state["bad_epochs"] += 1
        if dist.main:
            if improved:
                rd.save_torch(eval_model.state_dict(), out / rd.MODEL)
            # checkpoint before metrics.csv: an epoch row on disk always has a checkpoint to resume from
            rd.save_torch({
                "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": None if scheduler is None else scheduler.state_dict(),
                "ema": None if ema is None else ema.state_dict(), "state": state, "rng": torch.get_rng_state(),
                "objective": objective.state_dict() if hasattr(objective, "state_dict") else None,
            }, out / rd.CHECKPOINT)
            _write_metrics(out, state["rows"], writer)
        shown = {"val_F_MAE": val.get("force_mae_meV_A"), "val_E_MAE": val.get("energy_mae_meV")}
        epochs_bar.set_postfix(loss=f"{row.get('train_loss', 0):.4g}",
                               **{k: f"{v:.1f}" for k, v in shown.items() if v is not None}, refresh=False)
        dist.barrier()
        if state["bad_epochs"] >= settings.patience:
            break
        if settings.max_minutes and (time.perf_counter() - start_time) > 60 * settings.max_minutes:
            break
    epochs_bar.close()
    if writer is not None:
        writer.close()

    best = rd.load(out)
    summary = {"run_dir": str(out), "epochs": state["epoch"], "best_epoch": state["best_epoch"],
               "n_train": len(split.train), "split": settings.split_file or settings.split_method,
               "one_molecule": one_molecule,
               "n_val": len(split.val), "n_test": len(split.test),
               "wall_seconds": time.perf_counter() - start_time}
    if settings.objective_name == "dsm":
        summary.update(dsm_sigma=settings.sigma, antithetic=bool(settings.antithetic))
    if prior_config is not None:
        summary["prior"] = {**{key: len(prior_config.get(key, ())) for key in ("bonds", "angles", "impropers",
                                                                               "torsions", "walls")},
                            "temperature": prior_config["temperature"]}
    if settings.objective_name in SHIFT_BLIND_OBJECTIVES and packed.full.energy is not None:
        # score objectives cannot see a constant energy shift: restore it from the energies
        summary["energy_offset_shift_meV"] = 1000 * refit_energy_offsets(best, packed, split.train,
                                                                         settings.batch_size * 2)
        if dist.main:
            rd.save_torch(best.state_dict(), out / rd.MODEL)
    for name, idx in (("val", split.val), ("test", split.test)):
        if len(idx):
            summary.update({f"{name}_{k}": v for k, v in _evaluate(best, packed, idx, settings.batch_size * 2).items()})
    if dist.main:
        atomic_write_text(out / "summary.txt", format_train_summary(summary) + "\n")
    return summary


def _start_run_dir(out: Path, settings: TrainSettings, model_config: dict, normalization: dict, split: Split,
                   energy_zero: bool, prior_config: dict | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    split.save(out / rd.SPLIT)
    config = {"model": model_config, "normalization": normalization, "training": asdict(settings),
              "parent": settings.parent, "energy_zero": energy_zero}
    if prior_config is not None:
        config["prior"] = prior_config
    rd.write_config(out, config)


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


def _objective_loss(objective, model: nn.Module, packed: PackedStructures, indices: np.ndarray, batch_size: int,
                    seed: int, dist: _Distributed) -> float:
    """Mean objective over ``indices`` with a fixed noise seed (stochastic objectives compare fairly)."""
    mine = indices[dist.rank::dist.world_size] if dist.active else indices
    total = torch.zeros(2, dtype=torch.float64)
    with torch.random.fork_rng():
        torch.manual_seed(seed + 12345)
        for start in range(0, len(mine), batch_size):
            chunk = mine[start:start + batch_size]
            loss, _ = objective(model, packed.batch(chunk))
            total += torch.tensor([float(loss.detach()) * len(chunk), len(chunk)], dtype=torch.float64)
    total = dist.all_sum(total)
    return float(total[0] / total[1])


def _closed_form(settings: TrainSettings, net: nn.Module, model_config: dict, normalization: dict,
                 packed: PackedStructures, split: Split, out: Path, dist: _Distributed, one_molecule: bool) -> dict:
    from .closed_form import fit_closed_form

    start_time = time.perf_counter()
    info = fit_closed_form(net, packed, split.train, objective=settings.objective_name,
                           temperature=settings.temperature, ridge=settings.ridge, val_indices=split.val)
    summary = {"run_dir": str(out), "epochs": 1, "best_epoch": 1, "n_train": len(split.train),
               "split": settings.split_file or settings.split_method,
               "one_molecule": one_molecule,
               "n_val": len(split.val), "n_test": len(split.test), "wall_seconds": time.perf_counter() - start_time,
               "condition_number": info["condition_number"], "ridge": info["ridge"], "rank": info["rank"],
               "n_parameters": info["n_parameters"]}
    if dist.main:
        _start_run_dir(out, settings, model_config, normalization, split, packed.full.energy is not None)
        rd.save_torch(net.state_dict(), out / rd.MODEL)
    for name, idx in (("val", split.val), ("test", split.test)):
        if len(idx):
            summary.update({f"{name}_{k}": v for k, v in _evaluate(net, packed, idx, 256).items()})
    if dist.main:
        row = {"epoch": 1, **{k: v for k, v in summary.items() if k.startswith(("val_", "test_"))},
               "time_s": summary["wall_seconds"]}
        _write_metrics(out, [row], None)
        atomic_write_text(out / "summary.txt", format_train_summary(summary) + "\n")
    return summary


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the tensorboard extra is optional
        return None
    return SummaryWriter(str(out / "tensorboard"))


def _write_metrics(out: Path, rows: list[dict], writer) -> None:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    buffer = io.StringIO()
    csv_writer = csv.DictWriter(buffer, fieldnames=keys)
    csv_writer.writeheader()
    csv_writer.writerows(rows)
    atomic_write_text(out / rd.METRICS, buffer.getvalue())
    if writer is not None:
        last = rows[-1]
        for k, v in last.items():
            if k != "epoch":
                writer.add_scalar(k, v, last["epoch"])
        writer.flush()


def format_train_summary(summary: dict) -> str:
    rows = [["run directory", summary["run_dir"]], ["epochs (best)", f"{summary['epochs']} ({summary['best_epoch']})"],
            ["structures train / val / test", f"{summary['n_train']} / {summary['n_val']} / {summary['n_test']}"]]
    labels = [("energy_mae_meV", "energy MAE (meV)"), ("energy_rmse_meV", "energy RMSE (meV)"),
              ("energy_mae_meV_atom", "energy MAE (meV/atom)"), ("force_mae_meV_A", "force MAE (meV/Å)"),
              ("force_rmse_meV_A", "force RMSE (meV/Å)")]
    for key, label in labels:
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
    if "energy_offset_shift_meV" in summary:
        rows.append(["energy zero refitted (RMS shift, meV)", f"{summary['energy_offset_shift_meV']:.1f}", ""])
    rows.append(["wall time (s)", f"{summary['wall_seconds']:.1f}"])
    split = summary.get("split", "random")
    rows.insert(3, ["split", split, ""])
    table = format_table(rows, header=["", "validation", "test"], title="Training summary")
    if split == "random" and summary.get("one_molecule", True):
        table += ("\nNote: a random split of one MD trajectory puts validation and test frames femtoseconds from "
                  "training frames, so these errors flatter (SchNet on xTB malonaldehyde: 86 meV/Å here, 311 on a "
                  "separately seeded trajectory). Measure generalisation with `boltzmatch evaluate RUN_DIR "
                  "OTHER_TRAJECTORY`, or train with --split-method contiguous.")
    return table
