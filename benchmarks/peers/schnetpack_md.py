"""SchNetPack 2.1.1's own MD with a SchNet whose weights come from boltzmatch (peer for md_throughput.py).

Runs in SchNetPack's virtual environment (benchmarks/.peers/schnetpack). Builds
NeuralNetworkPotential(SchNet + Atomwise(shifted softplus) + Forces), loads the exported weights,
checks its forces on one frame against boltzmatch's (printed as max |ΔF| in eV/Å), then times
System + VelocityVerlet + LangevinThermostat with n replicas (SchNetPack batches the replicas in
one model call), in each of ``--dtypes`` (``Simulator.to(dtype)``, as ``spkmd``'s precision setting
does). Prints one JSON line: {"rates": {dtype: {replicas: replica-steps/s}}, "max_force_difference": ...}.
"""

import argparse
import json
import sys
import tempfile
import time

import numpy as np
import torch
from ase.io import read


def build_model(config, state):
    import schnetpack as spk
    from schnetpack.nn.activations import shifted_softplus

    cutoff = config["cutoff"]
    representation = spk.representation.SchNet(
        n_atom_basis=config["n_features"], n_interactions=config["n_interactions"],
        radial_basis=spk.nn.GaussianRBF(n_rbf=config["n_rbf"], cutoff=cutoff), cutoff_fn=spk.nn.CosineCutoff(cutoff),
    )
    model = spk.model.NeuralNetworkPotential(
        representation=representation, input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[spk.atomistic.Atomwise(n_in=config["n_features"], output_key="energy",
                                               activation=shifted_softplus),
                        spk.atomistic.Forces(energy_key="energy", force_key="forces")],
    )
    own = model.state_dict()
    state = dict(state)
    state["representation.embedding.weight"] = state["representation.embedding.weight"][: own[
        "representation.embedding.weight"].shape[0]]
    fixed = ("representation.radial_basis", "representation.cutoff_fn")  # buffers, not weights
    missing = [k for k in own if k not in state and not k.startswith(fixed)]
    if missing:
        raise SystemExit(f"weights missing for {missing}")
    own.update({k: v for k, v in state.items() if k in own})
    model.load_state_dict(own)
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", required=True)
    parser.add_argument("--frame", required=True)
    parser.add_argument("--forces", required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--temperature", type=float, default=500.0)
    parser.add_argument("--timestep", type=float, default=0.5)
    parser.add_argument("--friction", type=float, default=0.01)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    args = parser.parse_args()

    import schnetpack as spk
    from schnetpack.md import Simulator, System, UniformInit
    from schnetpack.md.calculators import SchNetPackCalculator
    from schnetpack.md.integrators import VelocityVerlet
    from schnetpack.md.neighborlist_md import NeighborListMD
    from schnetpack.md.simulation_hooks import LangevinThermostat

    exported = torch.load(args.weights, weights_only=True)
    config = exported["config"]
    model = build_model(config, exported["state"])
    atoms = read(args.frame)

    # check the port: forces of SchNetPack's model against boltzmatch's on the same frame
    converter = spk.interfaces.AtomsConverter(neighbor_list=spk.transform.ASENeighborList(cutoff=config["cutoff"]),
                                              dtype=torch.float32)
    forces = model(converter(atoms))["forces"].detach().numpy()
    ours = np.load(args.forces)
    max_diff = float(np.abs(forces - ours).max())
    print("forces[0]", forces[0], "boltzmatch", ours[0], file=sys.stderr)

    rates: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_file = f"{tmp}/model.pt"
        torch.save(model, model_file)
        for dtype_name in args.dtypes:
            dtype = getattr(torch, dtype_name)
            rates[dtype_name] = {}
            for n in args.replicas:
                system = System()
                system.load_molecules(atoms, n_replicas=n, position_unit_input="Angstrom")
                UniformInit(args.temperature, remove_center_of_mass=True,
                            remove_translation=True).initialize_system(system)
                neighbors = NeighborListMD(cutoff=config["cutoff"], cutoff_shell=2.0,
                                           base_nbl=spk.transform.TorchNeighborList)
                calculator = SchNetPackCalculator(model_file, "forces", "eV", "Angstrom", neighbors,
                                                  energy_key="energy")
                thermostat = LangevinThermostat(args.temperature, 1.0 / args.friction)
                simulator = Simulator(system, VelocityVerlet(args.timestep), calculator, simulator_hooks=[thermostat])
                simulator = simulator.to(dtype)
                simulator.simulate(5)
                start = time.perf_counter()
                simulator.simulate(args.steps)
                rates[dtype_name][str(n)] = n * args.steps / (time.perf_counter() - start)
    print(json.dumps({"rates": rates, "max_force_difference": max_diff, "torch": torch.__version__,
                      "schnetpack": spk.__version__ if hasattr(spk, "__version__") else "2.1.1",
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
