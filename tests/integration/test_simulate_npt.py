"""``simulate --pressure``: NPT by stochastic cell rescaling, end to end, on a Lennard-Jones crystal whose torch
model equals ASE's calculator (energy, forces and stress: tested here)."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from ase.calculators.lj import LennardJones as AseLennardJones
from ase.io import read, write
from test_simulate import InterruptAfter

import boltzmatch
from boltzmatch.data.atoms_batch import AtomsBatch
from boltzmatch.models.base import energy_forces_and_stress
from boltzmatch.simulate.output import read_thermo
from helpers import LennardJones

ARGON = dict(temperature=40.0, timestep=5.0, compressibility=0.5, barostat_tau=500.0, interval=10,
             check_interval=10, criterion="bond", progress=False)


@pytest.fixture
def argon():
    return bulk("Ar", "fcc", a=5.30, cubic=True).repeat(2)  # 32 atoms, 8.5 Å cutoff within the 10.6 Å cell


def test_the_torch_lennard_jones_model_is_ases(argon):
    atoms = argon.copy()
    atoms.rattle(0.05, seed=0)
    atoms.calc = AseLennardJones(epsilon=0.0104, sigma=3.4, rc=8.5, smooth=False)
    with torch.enable_grad():
        energy, forces, stress = energy_forces_and_stress(LennardJones(), AtomsBatch.from_atoms(
            [atoms], dtype=torch.float64))
    assert energy.item() == pytest.approx(atoms.get_potential_energy(), abs=1e-10)
    assert np.abs(forces.detach().numpy() - atoms.get_forces()).max() < 1e-10
    assert np.abs(stress[0].detach().numpy() - atoms.get_stress(voigt=False)).max() < 1e-12


def test_npt_writes_changing_cells_volumes_and_pressures(tmp_path, argon):
    s = boltzmatch.simulate(LennardJones(), [argon], out=tmp_path / "sim", replicas=4, time=2.0, pressure=0.0,
                            **ARGON)
    assert s["complete"] and s["n_collapsed"] == 0
    thermo = read_thermo(tmp_path / "sim" / "thermo.csv")
    frames = read(tmp_path / "sim" / "trajectories" / "replica_001.xyz", index=":")
    volumes = [a.get_volume() for a in frames]
    assert len(set(volumes)) == len(frames)  # every frame in its own cell
    assert volumes == pytest.approx(thermo["volume_A3"][thermo["replica"] == 1].tolist(), rel=1e-6)
    # the fractional positions stay where the cell takes them: no atom left behind by a rescaling
    assert np.all(np.abs(frames[-1].get_scaled_positions(wrap=False) - argon.get_scaled_positions()) < 0.1)
    # at 0 GPa and 40 K the crystal expands from its 5.30 Å start (ASE's own barostat: 5.366 Å, benchmarks/npt.py)
    assert 1.005 < s["mean_volume_A3"] / argon.get_volume() < 1.06
    assert np.isfinite(s["mean_pressure_GPa"]) and s["pressure_GPa"] == 0.0
    table = boltzmatch.simulate.format_simulation(s)
    assert "pressure: set / mean (GPa)" in table and "mean volume (Å³)" in table


def test_a_higher_pressure_gives_a_smaller_volume(tmp_path, argon):
    volumes = {p: boltzmatch.simulate(LennardJones(), [argon], out=tmp_path / f"p{p}", replicas=4, time=2.0,
                                      pressure=p, write_trajectories=False, **ARGON)["mean_volume_A3"]
               for p in (0.0, 0.5)}
    assert volumes[0.5] < 0.95 * volumes[0.0]


def test_an_interrupted_npt_run_resumes_to_the_uninterrupted_result(tmp_path, argon):
    options = dict(replicas=2, time=0.4, pressure=0.1, seed=3, **ARGON)
    full = boltzmatch.simulate(LennardJones(), [argon], out=tmp_path / "full", **options)
    with pytest.raises(KeyboardInterrupt):
        boltzmatch.simulate(InterruptAfter(LennardJones(), 47), [argon], out=tmp_path / "cut", **options)
    assert (tmp_path / "cut" / "checkpoint.pt").exists()
    resumed = boltzmatch.simulate(LennardJones(), [argon], out=tmp_path / "cut", resume=True, **options)
    assert resumed["complete"] and resumed["mean_volume_A3"] == pytest.approx(full["mean_volume_A3"], rel=1e-12)
    for name in ("thermo.csv", "trajectories/replica_000.xyz", "trajectories/replica_001.xyz"):
        assert (tmp_path / "cut" / name).read_text() == (tmp_path / "full" / name).read_text(), name
    with pytest.raises(boltzmatch.BoltzmatchError, match="other settings"):
        with pytest.raises(KeyboardInterrupt):
            boltzmatch.simulate(InterruptAfter(LennardJones(), 30), [argon], out=tmp_path / "p", **options)
        boltzmatch.simulate(LennardJones(), [argon], out=tmp_path / "p", resume=True, **{**options, "pressure": 0.2})


def test_npt_judges_collapse_in_the_present_cell(tmp_path, argon):
    """h(r) is measured in each replica's own cell: an NPT crystal judged against an NVT run of itself does not
    collapse, in MD or when ``stability`` reads its trajectory back."""
    boltzmatch.simulate(LennardJones(), [argon], out=tmp_path / "nvt", replicas=1, time=1.0, **ARGON)
    reference = tmp_path / "nvt" / "trajectories" / "replica_000.xyz"
    s = boltzmatch.simulate(LennardJones(), [argon], out=tmp_path / "npt", replicas=2, time=1.0, pressure=0.0,
                            reference=reference, rdf_window=200.0, **{**ARGON, "criterion": "rdf"})
    assert s["n_collapsed"] == 0
    from boltzmatch.simulate.judge import judge_trajectory

    result = judge_trajectory(tmp_path / "npt" / "trajectories" / "replica_000.xyz", reference, criterion="rdf",
                              rdf_window=200.0)
    assert not result["collapsed"] and result["frames"] == 21


@pytest.fixture
def argon_run(tmp_path, argon):
    """A linear model of LJ argon trained on ``ar.xyz`` (four rattled copies of the crystal, one cell)."""
    run = tmp_path / "run"
    structures = [argon.copy() for _ in range(4)]
    for k, atoms in enumerate(structures):
        atoms.rattle(0.02, seed=k)
        atoms.calc = AseLennardJones(epsilon=0.0104, sigma=3.4, rc=8.5, smooth=False)
        atoms.get_forces()
    write(tmp_path / "ar.xyz", structures)
    boltzmatch.train(tmp_path / "ar.xyz", out=run, model="linear", config={"n_rbf": 4, "cutoff": 5.0},
                     solver="closed-form", objective="energy", progress=False)
    return run, structures


def test_the_cli_warns_of_a_reference_at_one_volume_and_draws_the_run(tmp_path, argon_run, capsys, recwarn):
    """NPT judged by h(r) against NVT frames (one volume) is warned of, naming generate --pressure, with --quiet
    too (it hides progress, not warnings; it hid this one before); every simulate command draws simulation.png
    (the barostat's panels too)."""
    from boltzmatch.cli.main import main

    run, _ = argon_run
    for flags in ([], ["--pressure", "0"]):
        out = tmp_path / f"md{len(flags)}"
        recwarn.clear()
        assert main(["simulate", str(run), "--start", str(tmp_path / "ar.xyz"), *flags, "--temperature", "40",
                     "--timestep", "5", "--replicas", "2", "--time", "0.2", "--criterion", "rdf",
                     "--out", str(out), "--quiet"]) == 0
        captured = capsys.readouterr()
        assert f"plot: {out}/simulation.png" in captured.out and (out / "simulation.png").stat().st_size > 10_000
        messages = [str(w.message) for w in recwarn]
        warned = [m for m in messages if "ar.xyz: the reference's Ar32 frames all have one volume" in m]
        assert len(warned) == bool(flags) and all("generate ... --pressure 0" in m for m in warned)
        assert any("--time 0.2 ps is shorter than the h(r) window" in m for m in messages)


def test_cli_pressure_errors_are_one_line(tmp_path, argon_run):
    run, structures = argon_run
    ethanol = molecule("CH3CH2OH")
    ethanol.info["energy"] = 0.0
    write(tmp_path / "ethanol.xyz", ethanol)
    cases = {
        ("--start", str(tmp_path / "ethanol.xyz"), "--pressure", "0"):
            "--pressure needs structures periodic in all three directions",
        ("--start", str(tmp_path / "ar.xyz"), "--pressure", "0", "--integrator", "verlet"):
            "--pressure needs --integrator langevin",
        ("--start", str(tmp_path / "ar.xyz"), "--pressure", "0", "--compressibility", "0"):
            "--compressibility must be positive",
        ("--start", str(tmp_path / "tilted.xyz"), "--pressure", "0", "--pressure-coupling", "anisotropic"):
            "tilted.xyz: frame 0: --pressure-coupling anisotropic needs a cell with its vectors along x, y and z",
    }
    tilted = structures[0].copy()
    tilted.set_cell(tilted.cell + [[0, 0, 0], [0.5, 0, 0], [0, 0, 0]], scale_atoms=True)
    write(tmp_path / "tilted.xyz", tilted)
    for flags, message in cases.items():
        out = tmp_path / f"bad{len(message)}"
        bad = subprocess.run([sys.executable, "-m", "boltzmatch", "simulate", str(run), *flags, "--out", str(out),
                              "--quiet"], capture_output=True, text=True, timeout=300)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and message in bad.stderr, bad.stderr
        assert not out.exists()


def test_reused_pairs_in_rescaled_cells_give_the_thermo_of_a_search_every_step(tmp_path, argon):
    """The barostat changes every cell every step; the pairs found once (default skin) still give what a search
    at every step (skin 0) gives: the same volumes and pressures, with one search against one per step."""
    runs = {skin: boltzmatch.simulate(LennardJones(), [argon], out=tmp_path / f"skin{skin}", replicas=2, time=0.5,
                                      pressure=0.2, skin=skin, write_trajectories=False, **ARGON)
            for skin in (0.0, 1.0)}
    assert runs[0.0]["timing"]["neighbor_searches"] == runs[0.0]["steps"]
    assert runs[1.0]["timing"]["neighbor_searches"] < runs[0.0]["steps"] / 10
    first, second = (read_thermo(tmp_path / f"skin{skin}" / "thermo.csv") for skin in (0.0, 1.0))
    for column in ("volume_A3", "pressure_GPa", "potential_eV"):
        assert np.allclose(first[column], second[column], rtol=1e-9, atol=1e-9), column


def test_the_anisotropic_coupling_finds_the_crystals_shape_and_the_isotropic_keeps_the_start(tmp_path, argon):
    """fcc argon started 5 % longer along z: with each axis alone the cell turns cubic again (the shape the
    potential wants), with the axes together it keeps the start's c/a; thermo.csv has the cell's lengths."""
    strained = argon.copy()
    strained.set_cell(argon.cell * [0.976, 0.976, 1.05], scale_atoms=True)
    ratios = {}
    for coupling in ("isotropic", "anisotropic"):
        s = boltzmatch.simulate(LennardJones(), [strained], out=tmp_path / coupling, replicas=16, time=3.0,
                                pressure=0.0, pressure_coupling=coupling, write_trajectories=False,
                                **{**ARGON, "barostat_tau": 250.0})
        thermo = read_thermo(tmp_path / coupling / "thermo.csv")
        late = thermo["time_ps"] >= 1.5  # relaxed by 1 ps (c/a 1.04 → 1.00 ± 0.01 in 0.5-ps blocks, 3 seeds)
        ratios[coupling] = thermo["c_A"][late].mean() / np.sqrt(thermo["a_A"][late] * thermo["b_A"][late]).mean()
        assert len(s["mean_cell_lengths_A"]) == 3 and "mean cell lengths a, b, c (Å)" in (
            boltzmatch.simulate.format_simulation(s))
        lengths = np.stack([thermo[c] for c in ("a_A", "b_A", "c_A")], axis=1)
        assert np.allclose(lengths.prod(1), thermo["volume_A3"], rtol=1e-5)
    assert ratios["isotropic"] == pytest.approx(1.05 / 0.976, rel=1e-6)
    assert ratios["anisotropic"] == pytest.approx(1.0, abs=0.01)
