"""MD's force call as a CUDA graph (simulate/forces.py, ``cuda_graphs``), and the complete pairs of molecules it
needs (models/neighbors.py). The CPU runs everything but the capture: the static positions, the complete pairs,
the same operators on the same memory from one call to the next, nothing read back. The capture and replay are
checked on CUDA (gpu marker)."""

from __future__ import annotations

import warnings

import pytest
import torch
from ase.build import bulk, molecule

import boltzmatch
from boltzmatch.data import AtomsBatch
from boltzmatch.models import build_model
from boltzmatch.models.neighbors import complete_pairs, neighbor_list
from boltzmatch.simulate import ModelForces
from boltzmatch.simulate import forces as forces_module
from boltzmatch.simulate.integrators import Langevin, MDState, maxwell_boltzmann
from boltzmatch.simulate.summary import format_simulation
from helpers import ReadBacks, cuda_synchronisations, record_kernels

#: Å, short enough that benzene and ethanol have pairs beyond it
CUTOFF = 2.5
CONFIGS = {"schnet": {"n_features": 16, "n_interactions": 2, "n_rbf": 8, "cutoff": CUTOFF},
           "painn": {"n_features": 16, "n_interactions": 2, "n_rbf": 8, "cutoff": CUTOFF},
           "mace": {"hidden_irreps": "8x0e + 8x1o", "max_ell": 1, "correlation": 2, "r_max": CUTOFF}}


def _model(name: str, dtype: str = "float64", device: str = "cpu"):
    torch.manual_seed(0)
    return build_model({"name": name, "elements": [1, 6, 8], "dtype": dtype, **CONFIGS[name]}).to(device)


def _molecules(device: str = "cpu", dtype=torch.float64) -> AtomsBatch:
    return AtomsBatch.from_atoms([molecule("CH3CH2OH"), molecule("C6H6"), molecule("H2O")], dtype=dtype,
                                 device=device)


@pytest.mark.parametrize("name", ["schnet", "painn", "mace"])
def test_models_that_mask_beyond_their_cutoff_take_complete_pairs_whole_and_give_the_same_forces(name):
    model = _model(name)
    batch = _molecules()
    results = []
    for pairs in (None, complete_pairs(batch)):
        positions = batch.positions.clone().requires_grad_(True)
        moved = AtomsBatch(**{**batch.__dict__, "positions": positions, "pairs": pairs})
        energy = model(moved)
        (grad,) = torch.autograd.grad(energy.sum(), positions)
        results.append((energy.detach(), grad))
    (e_fresh, g_fresh), (e_complete, g_complete) = results
    torch.testing.assert_close(e_complete, e_fresh, rtol=0, atol=1e-12)
    torch.testing.assert_close(g_complete, g_fresh, rtol=0, atol=1e-12)
    pairs = complete_pairs(batch)
    taken = neighbor_list(AtomsBatch(**{**batch.__dict__, "pairs": pairs}), CUTOFF, masked=True)
    within = neighbor_list(batch, CUTOFF)
    assert len(taken.i) == len(pairs.i) == 9 * 8 + 12 * 11 + 3 * 2 > len(within.i)  # pairs beyond the cutoff too


@pytest.mark.parametrize("half", [False, True])
def test_a_caller_that_does_not_mask_gets_complete_pairs_cut_to_its_cutoff(half):
    """The linear descriptor model and the adapters of SchNetPack and NequIP models do not say they mask: given
    complete pairs, they get exactly the edges of a fresh search."""
    batch = _molecules()
    given = neighbor_list(AtomsBatch(**{**batch.__dict__, "pairs": complete_pairs(batch)}), CUTOFF, half=half)
    fresh = neighbor_list(batch, CUTOFF, half=half)
    assert torch.equal(given.i, fresh.i) and torch.equal(given.j, fresh.j)
    assert torch.equal(given.vectors, fresh.vectors)


def test_complete_pairs_cover_any_positions_of_the_same_atoms_and_no_periodic_structure():
    batch = _molecules()
    pairs = complete_pairs(batch)
    far = batch.with_positions(batch.positions * 3.0)
    assert pairs.covers(far, 100.0)
    other = AtomsBatch.from_atoms([molecule("C6H6"), molecule("CH3CH2OH"), molecule("H2O")], dtype=torch.float64)
    assert not pairs.covers(other, CUTOFF)
    with pytest.raises(ValueError, match="periodic"):
        complete_pairs(AtomsBatch.from_atoms([molecule("H2O"), bulk("Cu", "fcc", a=3.6)]))


def _forces(model, batch: AtomsBatch, graphs: bool) -> ModelForces:
    forces = ModelForces(model, batch.numbers, batch.structure_index, batch.cell, batch.pbc)
    forces.graphs, forces.capture = graphs, False  # the graph path's static copies, run eagerly
    return forces


def _md(forces: ModelForces, batch: AtomsBatch, steps: int, keep_after: int | None = None) -> MDState:
    """``steps`` Langevin steps at 500 K from ``batch`` (float64 state), the first structure dropped after
    ``keep_after`` steps as a collapsed replica is."""
    generator = torch.Generator().manual_seed(5)
    masses = torch.as_tensor(molecule("CH3CH2OH").get_masses(), dtype=torch.float64)
    masses = torch.cat([masses, torch.as_tensor(molecule("C6H6").get_masses()),
                        torch.as_tensor(molecule("H2O").get_masses())])[:, None].double()
    kT = torch.full((batch.n_structures,), 500.0 * 8.617e-5, dtype=torch.float64)
    state = MDState(positions=batch.positions.clone(), velocities=maxwell_boltzmann(
        masses[:, 0], kT[batch.structure_index], generator), forces=torch.zeros_like(batch.positions),
        energy=torch.zeros(batch.n_structures, dtype=torch.float64), masses=masses,
        structure_index=batch.structure_index, kT=kT, dof=torch.full_like(kT, 3.0))
    state.energy, state.forces = forces(state.positions)
    integrator = Langevin(0.5, friction=0.01, generator=generator)
    for step in range(steps):
        if step == keep_after:
            keep = torch.tensor([False] + [True] * (batch.n_structures - 1))
            state = state.select(keep)
            forces.set_system(forces.numbers[keep[forces.structure_index]], state.structure_index, forces.cell[keep],
                              forces.pbc[keep])
        integrator.step(state, forces)
    return state


@pytest.mark.parametrize("name", ["schnet", "painn", "mace"])
def test_md_on_the_graph_path_follows_the_eager_trajectory(name):
    """Twenty Langevin steps with the force call on static positions and complete pairs, a replica dropped
    half-way (new replicas: new pairs and a new capture): the eager trajectory, to the last bit for SchNet and
    PaiNN (MACE's own kernels differ in float64's last bits from run to run)."""
    batch = _molecules(dtype=torch.float32)
    eager = _md(_forces(_model(name, "float32"), batch, graphs=False), batch.with_positions(
        batch.positions.double()), 20, keep_after=10)
    graphed_forces = _forces(_model(name, "float32"), batch, graphs=True)
    graphed = _md(graphed_forces, batch.with_positions(batch.positions.double()), 20, keep_after=10)
    assert graphed_forces.pairs.complete and graphed_forces.searches == 0
    for field in ("positions", "velocities", "forces", "energy"):
        a, b = getattr(eager, field), getattr(graphed, field)
        if name == "mace":
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
        else:
            assert torch.equal(a, b), field


@pytest.mark.parametrize("name", ["schnet", "painn", "mace"])
def test_a_captured_force_call_would_replay_what_an_eager_call_runs(name):
    """Two force calls at different positions after the warm-up: the same operators with the same host arguments,
    reading the same outside memory, and nothing read back or copied in from the host. That is what makes a
    replay of the first call's graph compute the second (the CPU cannot capture, but it can check)."""
    batch = _molecules(dtype=torch.float32)
    forces = _forces(_model(name, "float32"), batch, graphs=True)
    positions = batch.positions.double()
    for _ in range(ModelForces.GRAPH_WARMUP + 1):
        forces(positions)
    recorded = record_kernels(forces, "_evaluate")
    for shift in (0.01, -0.02):
        forces(positions + shift)
    first, second = recorded
    assert first.calls == second.calls
    assert first.external == second.external
    names = [call for call, _ in first.calls]
    assert not [n for n in names if n.startswith(("aten.lift_fresh", "aten.nonzero.", "aten.item",
                                                  "aten._local_scalar_dense"))]


def test_md_steps_on_the_graph_path_read_nothing_back():
    """The step a GPU would run with --cuda-graphs: the Langevin step and the force call wait for nothing (the eager
    path reads the skin check's two numbers back every step)."""
    batch = _molecules(dtype=torch.float32)
    forces = _forces(_model("schnet", "float32"), batch, graphs=True)
    state = _md(forces, batch.with_positions(batch.positions.double()), 3)
    integrator = Langevin(0.5, generator=torch.Generator().manual_seed(0))
    with ReadBacks() as reads:
        for _ in range(3):
            integrator.step(state, forces)
    assert reads.calls == []


@pytest.mark.parametrize(("options", "structures", "reason"), [
    ({}, [molecule("H2O")], "the model's device is cpu"),
    ({"compile_forces": True}, [molecule("H2O")], "--compile"),
    ({}, [bulk("Cu", "fcc", a=3.6)], "periodic structures"),
])
def test_graphs_are_off_with_a_warning_saying_why(options, structures, reason):
    batch = AtomsBatch.from_atoms(structures)
    with pytest.warns(UserWarning, match=f"--cuda-graphs ignored: {reason}"):
        forces = ModelForces(_model("schnet", "float32"), batch.numbers, batch.structure_index, batch.cell,
                             batch.pbc, cuda_graphs=True, **options)
    assert not forces.graphs


def test_a_failed_capture_warns_and_the_run_goes_on_eagerly(monkeypatch):
    def fail(run, device):
        raise RuntimeError("operation not permitted when stream is capturing\nmore")

    monkeypatch.setattr(forces_module, "capture_cuda_graph", fail)
    batch = _molecules(dtype=torch.float32)
    forces = _forces(_model("schnet", "float32"), batch, graphs=True)
    forces.capture = True
    reference = _forces(_model("schnet", "float32"), batch, graphs=False)
    positions = batch.positions.double()
    for _ in range(ModelForces.GRAPH_WARMUP):
        forces(positions)
    with pytest.warns(UserWarning, match=r"capturing the MD force call failed \(operation not permitted"):
        energy, f = forces(positions)
    assert not forces.graphs and not forces.pairs.complete  # back to the searched pairs with a skin
    expected = reference(positions)
    torch.testing.assert_close(energy, expected[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(f, expected[1], rtol=1e-5, atol=1e-5)


def test_a_molecule_much_larger_than_the_cutoff_runs_without_graphs_and_says_why():
    """A graph computes every pair of each molecule; where that is more than twice the pairs within the cutoff
    (ethanol at 1.2 Å: its 6 X-H bonds, 12 directed pairs, of 72) the force call runs eagerly on searched pairs."""
    batch = AtomsBatch.from_atoms([molecule("CH3CH2OH")], dtype=torch.float32)
    torch.manual_seed(0)
    model = build_model({"name": "schnet", "elements": [1, 6, 8], "dtype": "float32",
                         **{**CONFIGS["schnet"], "cutoff": 1.2}})
    forces, reference = _forces(model, batch, graphs=True), _forces(model, batch, graphs=False)
    positions = batch.positions.double()
    with pytest.warns(UserWarning, match=r"CUDA graphs off for this run: .* every pair of each molecule, 72, "
                                         r"6\.0x the 12 within the cutoff \(at most 2x\)"):
        energy, f = forces(positions)
    assert not forces.graphs and not forces.pairs.complete and forces.searches == 1
    expected = reference(positions)
    torch.testing.assert_close(energy, expected[0], rtol=0, atol=0)
    torch.testing.assert_close(f, expected[1], rtol=0, atol=0)


def test_the_simulate_command_takes_cuda_graphs_and_says_so_on_the_cpu(tmp_path, capsys):
    from boltzmatch.cli.main import main

    model = _model("schnet", "float32")
    boltzmatch.data.write_structures(tmp_path / "start.xyz", [molecule("CH3CH2OH")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = boltzmatch.simulate(model, tmp_path / "start.xyz", out=tmp_path / "md", replicas=2, time=0.005,
                                      interval=5, check_interval=5, progress=False, device="cpu", cuda_graphs=True)
    assert any("--cuda-graphs ignored: the model's device is cpu" in str(w.message) for w in caught)
    assert summary["timing"]["cuda_graph_replays"] == 0 and summary["complete"]
    assert "CUDA graphs" not in format_simulation(summary)
    replayed = {**summary, "timing": {**summary["timing"], "cuda_graph_replays": 40}}
    assert "cpu; 40 force calls replayed as CUDA graphs" in format_simulation(replayed)
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    assert "--cuda-graphs" in capsys.readouterr().out


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["schnet", "mace"])
def test_on_a_gpu_replayed_force_calls_follow_the_eager_trajectory_without_synchronising(name):
    batch = _molecules("cuda", dtype=torch.float32)
    model = _model(name, "float32", "cuda")
    eager = ModelForces(model, batch.numbers, batch.structure_index, batch.cell, batch.pbc)
    graphed = ModelForces(model, batch.numbers, batch.structure_index, batch.cell, batch.pbc, cuda_graphs=True)
    positions = batch.positions.double()
    generator = torch.Generator(device="cuda").manual_seed(0)
    for _ in range(6):
        positions = positions + 1e-2 * torch.randn(positions.shape, generator=generator, device="cuda",
                                                   dtype=positions.dtype)
        (e_eager, f_eager), (e_graph, f_graph) = eager(positions), graphed(positions)
        torch.testing.assert_close(e_graph, e_eager, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(f_graph, f_eager, rtol=1e-4, atol=1e-4)
    assert graphed.graphs and graphed.replays == 6 - ModelForces.GRAPH_WARMUP
    assert cuda_synchronisations(lambda: [graphed(positions + 1e-3 * k) for k in range(5)]) == 0


@pytest.mark.gpu
def test_on_a_gpu_simulate_with_cuda_graphs_replays_and_follows_the_eager_run(tmp_path):
    import csv

    model = _model("schnet", "float32", "cuda")
    energies, summaries = {}, {}
    for graphs in (False, True):
        out = tmp_path / str(graphs)
        summaries[graphs] = boltzmatch.simulate(model, [molecule("CH3CH2OH")], out=out, replicas=4, time=0.01,
                                                interval=5, check_interval=5, progress=False, device="cuda",
                                                cuda_graphs=graphs, write_trajectories=False)
        with open(out / "thermo.csv") as handle:
            energies[graphs] = [float(row["potential_eV"]) for row in csv.DictReader(handle)]
    # 21 force calls (the start, 20 steps): the warm-up ones eager, the rest replayed (a replica that stops at a
    # check means new replicas, and a new warm-up)
    assert summaries[True]["timing"]["cuda_graph_replays"] >= 20 - 2 * ModelForces.GRAPH_WARMUP
    assert "force calls replayed as CUDA graphs" in format_simulation(summaries[True])
    assert "CUDA graphs" not in format_simulation(summaries[False])
    assert summaries[False]["timing"]["cuda_graph_replays"] == 0
    assert energies[True] == pytest.approx(energies[False], rel=1e-4, abs=1e-4)


def test_the_command_line_says_why_graphs_are_off_in_one_line(tmp_path):
    """boltzmatch's warnings print as ``boltzmatch: warning: ...`` (Python adds the file, line and source)."""
    import subprocess
    import sys

    from boltzmatch.runs import run_dir as rd

    boltzmatch.train(_ethanol_data(tmp_path), out=tmp_path / "run",
                     model="schnet", config={"n_features": 8, "n_interactions": 1}, epochs=1, progress=False)
    assert rd.read_config(tmp_path / "run")
    result = subprocess.run([sys.executable, "-m", "boltzmatch", "simulate", str(tmp_path / "run"), "--start",
                             str(tmp_path / "data.xyz"), "--out", str(tmp_path / "md"), "--replicas", "2", "--time",
                             "0.005", "--cuda-graphs", "--quiet", "--device", "cpu"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["boltzmatch: warning: --cuda-graphs ignored: the model's device is cpu"]


def _ethanol_data(tmp_path):
    from helpers import labelled_molecules

    boltzmatch.data.write_structures(tmp_path / "data.xyz", labelled_molecules(12))
    return tmp_path / "data.xyz"
