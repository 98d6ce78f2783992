"""Periodic systems are judged by h(r) by default: an aluminium (111) slab with ASE's EMT at 600 K, whose
surface atoms move > 0.5 Å from their mean neighbour distances in its own reference trajectory (the bond rule,
which the default once applied to every periodic structure, called every replica collapsed at its first
check, and the reference itself collapsed from frame 0)."""

import json

import numpy as np
import pytest
from ase.build import fcc111

from boltzmatch.cli.main import main
from boltzmatch.data import generate, read_structures, write_structures
from boltzmatch.data.geometry import bond_lengths
from boltzmatch.simulate import simulate
from boltzmatch.simulate.judge import judge_trajectory
from boltzmatch.simulate.stability import BondReference
from helpers import HarmonicWell


@pytest.fixture(scope="module")
def slab_trajectories(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slab")
    write_structures(folder / "slab.xyz", [fcc111("Al", size=(3, 3, 3), vacuum=6.0)])
    paths = []
    for seed in (0, 1):
        paths.append(folder / f"al-600K-{seed}.xyz")
        generate(str(folder / "slab.xyz"), calculator="emt", temperature=600, time=1.2, interval=10,
                 equilibration=400, seed=seed, out=paths[-1], progress=False)
    return paths


def test_generated_frames_record_their_time(slab_trajectories):
    times = [a.info["time_ps"] for a in read_structures(slab_trajectories[0])]
    np.testing.assert_allclose(times, 0.005 * np.arange(1, len(times) + 1))


def test_a_periodic_trajectory_is_judged_by_its_h_r_by_default(slab_trajectories):
    reference, other = map(str, slab_trajectories)
    bond = judge_trajectory(other, reference, criterion="graph")  # graph falls back to the bond rule here
    assert bond["collapsed"] and "breaks the bond rule" in bond["reference_check"][0]
    # no --frame-fs: generate records time_ps. Separately seeded 1-ps windows differ by ≤ 0.14 (limit 0.25)
    result = judge_trajectory(other, reference)
    assert result["criterion"] == "rdf" and not result["collapsed"] and result["reference_check"] == []
    assert result["simulated_ps"] == pytest.approx(1.195)


def test_a_periodic_simulation_is_judged_by_its_h_r_by_default(slab_trajectories, tmp_path, capsys):
    reference = read_structures(slab_trajectories[0])
    bonds, mean = BondReference(reference).for_structure(reference[0])
    start = reference[int(np.argmax(np.abs(bond_lengths(reference, bonds) - mean).max(1)))]
    well = HarmonicWell(k=5.0, centres=start.positions)  # atoms stay within ~0.1 Å of a reference frame
    with pytest.warns(UserWarning, match="--time 0.3 ps is shorter than the h.r. window"):  # the user is told,
        s = simulate(well, [start], reference=reference, out=tmp_path / "md", replicas=2, time=0.3, interval=20,
                     temperature=300, seed=0, progress=False)  # without progress bars too
    assert s["criterion"] == "rdf" and s["n_collapsed"] == 0  # shorter than one h(r) window: nothing to judge
    assert json.loads((tmp_path / "md" / "simulation.json").read_text())["criterion"] == "rdf"
    # simulate's trajectories record their time_ps, and the reader keeps it: no --frame-fs needed
    own = judge_trajectory(tmp_path / "md" / "trajectories" / "replica_000.xyz", slab_trajectories[0])
    assert own["frames"] == 31 and own["simulated_ps"] == pytest.approx(0.3)
    s = simulate(well, [start], reference=reference, out=tmp_path / "bond", replicas=2, time=0.3, interval=20,
                 temperature=300, criterion="bond", seed=0, progress=False)
    assert s["n_collapsed"] == 2


def test_times_that_go_back_are_an_error(slab_trajectories, tmp_path, capsys):
    both = tmp_path / "both.xyz"
    write_structures(both, read_structures(slab_trajectories[0]) + read_structures(slab_trajectories[1]))
    assert main(["stability", str(both), "--reference", str(slab_trajectories[0])]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "time_ps goes back at frame 240" in err


def test_compare_reports_the_criterion_its_simulations_used(slab_trajectories, tmp_path):
    from boltzmatch.analysis.compare import compare
    from boltzmatch.training import train

    run = tmp_path / "schnet"
    train(str(slab_trajectories[0]), model="schnet", config={"n_features": 8, "n_interactions": 1, "cutoff": 4.0},
          epochs=1, out=run, progress=False)
    result = compare([run], str(slab_trajectories[1]), out=tmp_path / "report", simulate=True, replicas=2, time=0.05,
                     interval=10, progress=False)
    assert result["settings"]["criterion"] == "rdf"
    report = (tmp_path / "report" / "report.md").read_text()
    assert "collapse = the h(r) of a replica's last 1 ps" in report and "bond graph" not in report


def _boxed(frames, shift):
    """Frames of a molecule in a 10 Å periodic box, moved by ``shift`` Å and wrapped into the cell every frame,
    as DFT codes write them: the molecule lies across the boundary."""
    out = []
    for frame in frames:
        boxed = frame.copy()
        boxed.cell, boxed.pbc = [10.0, 10.0, 10.0], True
        boxed.positions += shift
        boxed.wrap()
        out.append(boxed)
    return out


def test_a_molecule_in_a_periodic_box_is_judged_by_its_graph(ethanol_xtb, tmp_path):
    from boltzmatch.data.geometry import find_bonds

    frames = read_structures(ethanol_xtb)[:80]
    reference = _boxed(frames, [9.0, 0.5, 0.5])  # wrapped: C, O and H atoms on both sides of the cell
    write_structures(tmp_path / "boxed.xyz", reference)
    calm = judge_trajectory(tmp_path / "boxed.xyz", tmp_path / "boxed.xyz", frame_fs=5.0)
    assert calm["criterion"] == "graph" and not calm["collapsed"] and calm["reference_check"] == []
    bonds = find_bonds(frames[0])
    a, b = next((int(x), int(y)) for x, y in zip(bonds.i, bonds.j, strict=True)
                if frames[0].numbers[x] == 6 and frames[0].numbers[y] == 6)
    broken = [f.copy() for f in frames]
    for frame in broken[30:]:  # pull one carbon 2 Å away from the other from frame 30 on
        direction = frame.positions[b] - frame.positions[a]
        frame.positions[b] += 2.0 * direction / np.linalg.norm(direction)
    write_structures(tmp_path / "broken.xyz", _boxed(broken, [9.0, 0.5, 0.5]))
    result = judge_trajectory(tmp_path / "broken.xyz", tmp_path / "boxed.xyz", frame_fs=5.0)
    assert result["collapsed"] and result["onset_frame"] == 30 and "C" in result["detail"]
