"""SchNetPack 2.1.1 training SchNet on QM9 U0 from the db `boltzmatch data qm9` writes (peer for qm9_u0.py).

SchNetPack reads that db as its own (SchNetPack's QM9 layout): AtomsDataModule with
ASENeighborList + RemoveOffsets(energy_U0, mean and atomrefs from the db's metadata) + CastTo32,
NeuralNetworkPotential(SchNet, Atomwise → energy_U0), AddOffsets on output, MSE on U0, Adam, the
same split file, epochs and batch size as boltzmatch. Prints one JSON line: wall seconds of
``trainer.fit``, structures per second and the best model's U0 MAE (eV) on the split's test set.
"""

import argparse
import json
import os
import time

import numpy as np
import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--split", required=True, help="npz with train_idx, val_idx, test_idx")
    parser.add_argument("--config", required=True, help="JSON: cutoff, n_interactions, n_features, n_rbf")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import pytorch_lightning as pl
    import schnetpack as spk
    import schnetpack.transform as trn
    import torchmetrics
    from schnetpack.nn.activations import shifted_softplus

    config = json.loads(args.config)
    for name in ("db", "split", "workdir"):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    os.makedirs(args.workdir, exist_ok=True)
    os.chdir(args.workdir)
    split = np.load(args.split)
    pl.seed_everything(args.seed, workers=True)
    key, cutoff = "energy_U0", config["cutoff"]
    datamodule = spk.data.AtomsDataModule(
        args.db, batch_size=args.batch_size, num_train=len(split["train_idx"]), num_val=len(split["val_idx"]),
        num_test=len(split["test_idx"]), split_file=args.split, load_properties=[key], distance_unit="Ang",
        property_units={key: "eV"}, num_workers=0, pin_memory=False,
        transforms=[trn.ASENeighborList(cutoff=cutoff), trn.RemoveOffsets(key, remove_mean=True, remove_atomrefs=True),
                    trn.CastTo32()],
    )
    datamodule.prepare_data()
    datamodule.setup()
    radial = spk.nn.GaussianRBF(n_rbf=config["n_rbf"], cutoff=cutoff)
    representation = spk.representation.SchNet(n_atom_basis=config["n_features"],
                                               n_interactions=config["n_interactions"],
                                               radial_basis=radial, cutoff_fn=spk.nn.CosineCutoff(cutoff))
    model = spk.model.NeuralNetworkPotential(
        representation=representation, input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[spk.atomistic.Atomwise(n_in=config["n_features"], output_key=key,
                                               activation=shifted_softplus)],
        postprocessors=[trn.CastTo64(), trn.AddOffsets(key, add_mean=True, add_atomrefs=True)],
    )
    outputs = [spk.task.ModelOutput(key, loss_fn=torch.nn.MSELoss(), loss_weight=1.0,
                                    metrics={"MAE": torchmetrics.MeanAbsoluteError()})]
    task = spk.task.AtomisticTask(model=model, outputs=outputs, optimizer_cls=torch.optim.Adam,
                                  optimizer_args={"lr": args.lr})
    best = os.path.join(args.workdir, "best_model")
    trainer = pl.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, default_root_dir=args.workdir,
                         logger=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=[spk.train.ModelCheckpoint(model_path=best, save_top_k=1, monitor="val_loss",
                                                              dirpath=os.path.join(args.workdir, "checkpoints"))])
    start = time.perf_counter()
    trainer.fit(task, datamodule=datamodule)
    wall = time.perf_counter() - start
    best_model = torch.load(best, weights_only=False)
    best_model.eval()
    import ase.db

    db = ase.db.connect(args.db)
    converter = spk.interfaces.AtomsConverter(neighbor_list=trn.ASENeighborList(cutoff=cutoff), dtype=torch.float32)
    test = [int(i) for i in split["test_idx"]]
    errors = []
    for start_index in range(0, len(test), 100):
        rows = [db.get(id=i + 1) for i in test[start_index:start_index + 100]]
        out = best_model(converter([r.toatoms() for r in rows]))
        errors.append(out[key].detach().double().numpy() - np.array([float(np.ravel(r.data[key])[0]) for r in rows]))
    errors = np.concatenate(errors)
    n_train = len(split["train_idx"])
    print(json.dumps({"wall_seconds": wall, "epochs": args.epochs, "n_train": n_train,
                      "structures_per_second": n_train * args.epochs / wall,
                      "test_u0_mae_meV": 1000 * float(np.abs(errors).mean()), "n_test": int(errors.size),
                      "torch": torch.__version__, "threads": torch.get_num_threads(), "schnetpack": "2.1.1"}))


if __name__ == "__main__":
    main()
