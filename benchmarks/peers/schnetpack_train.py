"""SchNetPack 2.1.1 training the same SchNet (or PaiNN) configuration as boltzmatch (peer for train_throughput.py).

Runs in SchNetPack's virtual environment (benchmarks/.peers/schnetpack). Follows SchNetPack's own
recipe (its MD17 tutorial and `spktrain` defaults): an ASE database, AtomsDataModule with
ASENeighborList + RemoveOffsets(mean per atom) + CastTo32, NeuralNetworkPotential(representation,
Atomwise, Forces), AtomisticTask with MSE losses, a Lightning Trainer on the CPU, SchNetPack's
ModelCheckpoint keeping the best validation model and, with ``--ema``, its ExponentialMovingAverage
callback (on in ``spktrain``'s defaults, decay 0.995). The split is the same file boltzmatch trains on.

Loss weights are given in boltzmatch's convention (energy MSE per atom, force MSE per component)
and converted: SchNetPack's energy loss is on the total energy, so its weight is w_E / n_atoms².

Prints one JSON line: wall seconds of ``trainer.fit``, structures per second, the last epoch's
seconds, and the best model's energy (eV) and force (eV/Å) MAE on the test frames.
"""

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from ase.io import read


def build_model(name, config):
    import schnetpack as spk
    import schnetpack.transform as trn
    from schnetpack.nn.activations import shifted_softplus

    cutoff = config["cutoff"]
    radial = spk.nn.GaussianRBF(n_rbf=config["n_rbf"], cutoff=cutoff)
    if name == "schnet":
        representation = spk.representation.SchNet(n_atom_basis=config["n_features"],
                                                   n_interactions=config["n_interactions"],
                                                   radial_basis=radial, cutoff_fn=spk.nn.CosineCutoff(cutoff))
    else:
        representation = spk.representation.PaiNN(n_atom_basis=config["n_features"],
                                                  n_interactions=config["n_interactions"],
                                                  radial_basis=radial, cutoff_fn=spk.nn.CosineCutoff(cutoff))
    return spk.model.NeuralNetworkPotential(
        representation=representation, input_modules=[spk.atomistic.PairwiseDistances()],
        # the output head's activation as in boltzmatch (and the SchNet paper): shifted softplus for
        # SchNet, SiLU (SchNetPack's default) for PaiNN
        output_modules=[spk.atomistic.Atomwise(n_in=config["n_features"], output_key="energy",
                                               activation=shifted_softplus if name == "schnet" else F.silu),
                        spk.atomistic.Forces(energy_key="energy", force_key="forces")],
        postprocessors=[trn.CastTo64(), trn.AddOffsets("energy", add_mean=True, add_atomrefs=False)],
    )


def make_db(xyz, path):
    from schnetpack.data import ASEAtomsData

    frames = read(xyz, index=":")
    data = ASEAtomsData.create(path, distance_unit="Ang", property_unit_dict={"energy": "eV", "forces": "eV/Ang"})
    data.add_systems([{"energy": np.array([a.get_potential_energy()]), "forces": a.get_forces()} for a in frames],
                     frames)
    return len(frames), len(frames[0])


def test_errors(model, xyz, cutoff, batch_size=64):
    import schnetpack as spk

    frames = read(xyz, index=":")
    converter = spk.interfaces.AtomsConverter(neighbor_list=spk.transform.ASENeighborList(cutoff=cutoff),
                                              dtype=torch.float32)
    model.eval()
    energy_errors, force_errors = [], []
    for start in range(0, len(frames), batch_size):
        chunk = frames[start:start + batch_size]
        out = model(converter(chunk))
        energy_errors.append(out["energy"].detach().double().numpy()
                             - np.array([a.get_potential_energy() for a in chunk]))
        force_errors.append(out["forces"].detach().double().numpy() - np.concatenate([a.get_forces() for a in chunk]))
    de, df = np.concatenate(energy_errors), np.concatenate(force_errors)
    return {"energy_mae": float(np.abs(de).mean()), "force_mae": float(np.abs(df).mean()),
            "energy_rmse": float(np.sqrt((de**2).mean())), "force_rmse": float(np.sqrt((df**2).mean()))}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["schnet", "painn"], default="schnet")
    parser.add_argument("--config", required=True, help="JSON: cutoff, n_interactions, n_features, n_rbf")
    parser.add_argument("--train", required=True, help="extxyz with energies and forces")
    parser.add_argument("--split", required=True, help="npz with train_idx, val_idx, test_idx")
    parser.add_argument("--test", required=True, help="extxyz of held-out frames")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--energy-weight", type=float, default=1.0)
    parser.add_argument("--force-weight", type=float, default=100.0)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ema", type=float, default=0.0, help="EMA decay (SchNetPack's callback); 0: off")
    args = parser.parse_args()

    import pytorch_lightning as pl
    import schnetpack as spk
    import schnetpack.transform as trn
    import torchmetrics

    config = json.loads(args.config)
    for name in ("train", "split", "test", "workdir"):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    os.makedirs(args.workdir, exist_ok=True)
    os.chdir(args.workdir)  # AtomsDataModule leaves a splitting.lock in the working directory
    db = os.path.join(args.workdir, "data.db")
    if os.path.exists(db):
        os.remove(db)
    _, n_atoms = make_db(args.train, db)
    split = np.load(args.split)
    pl.seed_everything(args.seed, workers=True)
    datamodule = spk.data.AtomsDataModule(
        db, batch_size=args.batch_size, num_train=len(split["train_idx"]), num_val=len(split["val_idx"]),
        split_file=args.split, load_properties=["energy", "forces"], distance_unit="Ang",
        property_units={"energy": "eV", "forces": "eV/Ang"}, num_workers=args.num_workers,
        pin_memory=False, transforms=[trn.ASENeighborList(cutoff=config["cutoff"]),
                                      trn.RemoveOffsets("energy", remove_mean=True, remove_atomrefs=False),
                                      trn.CastTo32()],
    )
    model = build_model(args.model, config)
    outputs = [spk.task.ModelOutput("energy", loss_fn=torch.nn.MSELoss(), loss_weight=args.energy_weight / n_atoms**2,
                                    metrics={"MAE": torchmetrics.MeanAbsoluteError()}),
               spk.task.ModelOutput("forces", loss_fn=torch.nn.MSELoss(), loss_weight=args.force_weight,
                                    metrics={"MAE": torchmetrics.MeanAbsoluteError()})]
    task = spk.task.AtomisticTask(model=model, outputs=outputs, optimizer_cls=torch.optim.Adam,
                                  optimizer_args={"lr": args.lr})
    best = os.path.join(args.workdir, "best_model")
    epoch_times = []

    class EpochTimer(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            epoch_times.append(time.perf_counter() - self.start)

    callbacks = [spk.train.ModelCheckpoint(model_path=best, save_top_k=1, monitor="val_loss",
                                           dirpath=os.path.join(args.workdir, "checkpoints")), EpochTimer()]
    if args.ema:
        callbacks.append(spk.train.ExponentialMovingAverage(decay=args.ema))
    trainer = pl.Trainer(
        max_epochs=args.epochs, accelerator="cpu", devices=1, default_root_dir=args.workdir, logger=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        callbacks=callbacks,
    )
    start = time.perf_counter()
    trainer.fit(task, datamodule=datamodule)
    wall = time.perf_counter() - start
    errors = test_errors(torch.load(best, weights_only=False), args.test, config["cutoff"])
    n_train = len(split["train_idx"])
    print(json.dumps({"wall_seconds": wall, "epochs": args.epochs, "n_train": n_train,
                      "structures_per_second": n_train * args.epochs / wall,
                      "train_epoch_seconds_median": float(np.median(epoch_times)) if epoch_times else None,
                      "test": errors, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "schnetpack": "2.1.1", "num_workers": args.num_workers, "ema": args.ema}))


if __name__ == "__main__":
    main()
