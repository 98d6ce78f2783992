"""Test helpers: small labelled structure sets made in memory (no downloads)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch
from ase.build import molecule
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from boltzmatch.data import make_structure


def labelled_molecules(n: int = 5, seed: int = 0, name: str = "CH3CH2OH") -> list:
    """``n`` jittered copies of an ASE molecule with random energies (eV) and forces (eV/Å)."""
    rng = np.random.default_rng(seed)
    base = molecule(name)
    out = []
    for _ in range(n):
        out.append(
            make_structure(
                base.numbers, base.positions + 0.05 * rng.standard_normal(base.positions.shape),
                energy=float(rng.normal(-10.0, 1.0)), forces=rng.standard_normal((len(base), 3)),
            )
        )
    return out


class HarmonicWell(torch.nn.Module):
    """U = ½ k Σ_i |x_i − c_i|² per structure (eV, k in eV/Å²): a model with known Boltzmann statistics.

    ``centres`` (n_atoms_per_structure, 3) in Å; default: every atom tethered to the origin.
    """

    def __init__(self, k: float = 1.0, centres: np.ndarray | None = None, dtype: torch.dtype = torch.float64):
        super().__init__()
        self.k = torch.nn.Parameter(torch.tensor(float(k), dtype=dtype))
        self.centres = None if centres is None else torch.as_tensor(centres, dtype=dtype)

    def forward(self, batch) -> torch.Tensor:
        x = batch.positions
        if self.centres is not None:
            counts = batch.atoms_per_structure
            x = x - self.centres.repeat(len(counts), 1)
        atomic = 0.5 * self.k * (x**2).sum(-1)
        return torch.zeros(batch.n_structures, dtype=x.dtype, device=x.device).index_add(0, batch.structure_index,
                                                                                          atomic)


class LennardJones(torch.nn.Module):
    """U = Σ_pairs 4ε[(σ/r)¹² − (σ/r)⁶] − its value at ``cutoff`` (eV; σ, r and the cutoff in Å), per structure,
    through the periodic neighbour list: ASE's ``LennardJones(smooth=False)`` in torch, with its stress."""

    def __init__(self, epsilon: float = 0.0104, sigma: float = 3.4, cutoff: float = 8.5):
        super().__init__()
        self.epsilon = torch.nn.Parameter(torch.tensor(float(epsilon), dtype=torch.float64))
        self.sigma, self.cutoff = float(sigma), float(cutoff)

    def forward(self, batch) -> torch.Tensor:
        from boltzmatch.models.neighbors import neighbor_list

        edges = neighbor_list(batch, self.cutoff, half=True)
        inverse6 = (self.sigma / edges.distances) ** 6
        shift = (self.sigma / self.cutoff) ** 6
        pair = 4.0 * self.epsilon * (inverse6**2 - inverse6 - (shift**2 - shift))
        out = torch.zeros(batch.n_structures, dtype=pair.dtype, device=pair.device)
        return out.index_add(0, batch.structure_index[edges.i], pair) + 0.0 * batch.positions.sum()


def schnetpack_model_file(path, representation: str = "schnet", cutoff: float = 4.0, seed: int = 0,
                          n_features: int = 16, n_interactions: int = 2):
    """A SchNetPack 2 model file as ``spktrain`` saves it (NeuralNetworkPotential with PairwiseDistances,
    a SchNet or PaiNN representation, Atomwise energy, Forces, CastTo64 and AddOffsets postprocessors),
    with random weights. Needs schnetpack (its own environment: it needs torch < 2.5)."""
    import schnetpack as spk

    torch.manual_seed(seed)
    radial = spk.nn.GaussianRBF(n_rbf=8, cutoff=cutoff)
    if representation == "painn":
        rep = spk.representation.PaiNN(n_atom_basis=n_features, n_interactions=n_interactions, radial_basis=radial,
                                       cutoff_fn=spk.nn.CosineCutoff(cutoff))
    else:
        rep = spk.representation.SchNet(n_atom_basis=n_features, n_interactions=n_interactions, radial_basis=radial,
                                        cutoff_fn=spk.nn.CosineCutoff(cutoff))
    # SchNetPack 2.1.1's AddOffsets(atomrefs=tensor) fails on `tensor or ...`: set the buffer after
    offsets = spk.transform.AddOffsets("energy", add_mean=True, add_atomrefs=True, property_mean=torch.tensor([0.3]))
    offsets.atomref[[1, 6, 8, 29]] = torch.tensor([-13.6, -1030.0, -2040.0, -1000.0])
    model = spk.model.NeuralNetworkPotential(
        representation=rep, input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[spk.atomistic.Atomwise(n_in=n_features, output_key="energy"),
                        spk.atomistic.Forces(energy_key="energy", force_key="forces")],
        postprocessors=[spk.transform.CastTo64(), offsets],
    )
    torch.save(model, path)
    return path


def external_test_structures():
    """A rattled ethanol and a rattled fcc Cu cell: a molecule and a periodic crystal."""
    from ase.build import bulk

    ethanol = molecule("CH3CH2OH")
    ethanol.rattle(0.05, seed=1)
    copper = bulk("Cu", "fcc", a=3.6, cubic=True)
    copper.rattle(0.05, seed=2)
    return [ethanol, copper]


def nequip_graph_model(seed: int = 0, r_max: float = 4.0):
    """A small NequIP GraphModel (energies and forces) as NequIPGNNModel builds it, random weights,
    float64, elements H C O Cu. Needs nequip (its own environment: e3nn ≥ 0.6 conflicts with MACE)."""
    from nequip.model import NequIPGNNModel
    from nequip.utils.global_state import global_state_initialized, set_global_state

    if not global_state_initialized():
        set_global_state()
    model = NequIPGNNModel(seed=seed, model_dtype="float64", r_max=r_max, type_names=["H", "C", "O", "Cu"],
                           num_layers=2, l_max=1, num_features=8, radial_mlp_width=16, avg_num_neighbors=5.0,
                           per_type_energy_shifts={"H": -13.6, "C": -1030.0, "O": -2040.0, "Cu": -1000.0})
    with torch.no_grad():  # trained-looking weights (NequIP starts its readout at zero)
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def assert_matches_calculator(model, calculator, atol: float = 1e-9) -> None:
    """Energies (eV) and forces (eV/Å) of ``model`` equal the foreign ``calculator``'s on
    :func:`external_test_structures`, in float64."""
    from boltzmatch.data import AtomsBatch
    from boltzmatch.models import energy_and_forces

    for atoms in external_test_structures():
        energy, forces = energy_and_forces(model, AtomsBatch.from_atoms([atoms], dtype=torch.float64))
        atoms.calc = calculator
        assert abs(float(energy.detach()) - atoms.get_potential_energy()) <= atol
        np.testing.assert_allclose(forces.numpy(), atoms.get_forces(), atol=atol)


def xtb_in_subprocess(system: str, out, **options) -> None:
    """``boltzmatch generate SYSTEM --calculator xtb`` in its own process. In pytest's process PySide6 is
    loaded (pytest-qt), and then every tblite call loses ~29 references to None (tblite's per-call
    functools.update_wrapper meets shiboken's signature hook; measured here: 0.018 without PySide6);
    on Python 3.11 None is not immortal, and a few thousand in-process xTB steps deallocate it."""
    import subprocess
    import sys

    args = [sys.executable, "-m", "boltzmatch", "generate", system, "--calculator", "xtb", "--quiet", "--out", str(out)]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def train_gflownet_model(env, loss: str, iterations: int, batch_size: int, hidden: list[int], epsilon: float = 0.0):
    """A GFlowNet trained on-policy (with ε-exploration if given) with Adam (log Z at lr 0.1), seeded."""
    from boltzmatch.gflownet.losses import gflownet_loss
    from boltzmatch.gflownet.model import GFlowNetModel
    from boltzmatch.gflownet.sampler import sample_trajectories

    torch.manual_seed(0)
    model = GFlowNetModel(env.n_features, env.n_actions, env.n_backward, hidden=hidden, exit_is_reward=loss == "fm")
    others = [p for name, p in model.named_parameters() if name != "log_z"]
    optimizer = torch.optim.Adam([{"params": others, "lr": 1e-3}, {"params": [model.log_z], "lr": 0.1}])
    generator = torch.Generator().manual_seed(0)
    for _ in range(iterations):
        value = gflownet_loss(loss, env, model, sample_trajectories(env, model, batch_size, generator, epsilon))
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    return model


class ReadBacks(torch.overrides.TorchFunctionMode):
    """Counts, in ``calls``, the torch calls that on a GPU wait for the device and copy a value back to the host:
    reading values (``item``, ``tolist``, ``float()``...), outputs sized by data (``nonzero``, ``unique``, boolean
    masks; ``repeat_interleave`` by a tensor without ``output_size``; ``bincount``, which reads the largest
    index first). On the CPU they cost nothing, so this is how a CPU test sees a GPU's stalls."""

    NAMES = {"item", "tolist", "cpu", "numpy", "nonzero", "unique", "equal", "__bool__", "__float__", "__int__",
             "__index__", "masked_select", "bincount"}

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        index = args[1] if name == "__getitem__" and len(args) > 1 else None
        masks = [t for t in (index if isinstance(index, tuple) else (index,))
                 if isinstance(t, torch.Tensor) and t.dtype == torch.bool]
        sized_by_data = (name == "repeat_interleave" and "output_size" not in kwargs
                         and isinstance(kwargs.get("repeats", args[1] if len(args) > 1 else None), torch.Tensor))
        if name in self.NAMES or masks or sized_by_data:
            self.calls.append(name)
        return func(*args, **kwargs)


class Kernels(TorchDispatchMode):
    """What a CUDA graph fixes when it captures a step, recorded for each operator the step dispatches: the
    operator, its non-tensor arguments and its tensors' shapes and dtypes (``calls``), and the memory of the
    tensors it reads that the step did not make itself (``external``: the graph reads there on every replay)."""

    def __init__(self):
        super().__init__()
        self.calls, self.external, self.made = [], [], set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        flat = tree_flatten((args, kwargs))[0]
        self.calls.append((str(func), tuple((tuple(a.shape), a.dtype) if isinstance(a, torch.Tensor) else repr(a)
                                            for a in flat)))
        for a in flat:
            if isinstance(a, torch.Tensor) and a.untyped_storage().data_ptr() not in self.made:
                self.external.append((str(func), a.untyped_storage().data_ptr()))
        out = func(*args, **kwargs)
        self.made.update(t.untyped_storage().data_ptr() for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))
        return out


def record_kernels(owner, name: str) -> list[Kernels]:
    """Wrap the method ``owner.<name>`` so that each later call records what it dispatches (a :class:`Kernels`) into
    the list returned: what a graph captured from one call would replay for the next."""
    recorded, call = [], getattr(owner, name)

    def watched(*args, **kwargs):
        with Kernels() as kernels:
            out = call(*args, **kwargs)
        recorded.append(kernels)
        return out

    setattr(owner, name, watched)
    return recorded


def cuda_synchronisations(work) -> int:
    """How often ``work()`` made the host wait for a CUDA device: every synchronisation the driver sees (torch's
    sync debug mode, which also catches blocking host-to-device copies, invisible on the CPU)."""
    import warnings

    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            work()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


#: runs ``boltzmatch ARGS`` after wrapping MODULE:ATTRIBUTE so that its N-th call SIGKILLs the process
KILLER = """
import importlib, os, signal, sys
from boltzmatch.cli.main import main
target, calls = sys.argv[1], int(sys.argv[2])
module, attribute = target.split(":")
owner = importlib.import_module(module)
*path, name = attribute.split(".")
for part in path:
    owner = getattr(owner, part)
original, count = getattr(owner, name), [0]
def wrapped(*args, **kwargs):
    count[0] += 1
    if count[0] == calls:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
setattr(owner, name, wrapped)
sys.exit(main(sys.argv[3:]))
"""


def kill_at_call(target: str, calls: int, args: list[str]) -> None:
    """Run ``boltzmatch ARGS`` in a subprocess that SIGKILLs itself at the ``calls``-th call of ``target``
    (``module:attribute.path``): a kill that lands at the same place every time."""
    result = subprocess.run([sys.executable, "-c", KILLER, target, str(calls), *args], capture_output=True, text=True)
    assert result.returncode == -9, f"not killed (exit {result.returncode}): {result.stderr[-2000:]}"
