"""Fu et al.'s h(r)-deviation rule (issue 36): a replica whose h(r) stays the reference's survives, one whose
atoms drift apart collapses once a window of it has been seen, never before; the rule also works from
``boltzmatch stability`` and from MD, and its windows survive a checkpoint."""

import json

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import write

from boltzmatch.data.systems import build_system
from boltzmatch.simulate.judge import judge_trajectory
from boltzmatch.simulate.rdf_rule import RdfWatch
from boltzmatch.simulate.stability import BondReference, StabilityMonitor


def vibrating(atoms: Atoms, n: int, seed: int, sigma: float = 0.05) -> list[Atoms]:
    """``n`` frames of ``atoms`` with independent Gaussian displacements (Å): a harmonic crystal's frames."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        frame = atoms.copy()
        frame.positions += rng.normal(0.0, sigma, frame.positions.shape)
        frames.append(frame)
    return frames


def drifting(frames: list[Atoms], atom: int, speed: float) -> list[Atoms]:
    """``frames`` with ``atom`` moving away along x by ``speed`` Å per frame."""
    out = []
    for k, frame in enumerate(frames):
        moved = frame.copy()
        moved.positions[atom, 0] += speed * k
        out.append(moved)
    return out


@pytest.fixture(scope="module")
def molecule() -> Atoms:
    return build_system("malonaldehyde")


def test_same_distribution_is_never_a_collapse(molecule):
    reference = vibrating(molecule, 400, seed=0)
    watch = RdfWatch([molecule], reference, window=250.0, max_deviation=0.3)
    flags = [watch.observe(0, frame.positions, k * 0.005) for k, frame in enumerate(vibrating(molecule, 400, seed=1))]
    assert not any(flags)
    assert 0 < watch.last[0] < 0.3  # a window was judged, and it is close to the reference


def test_deviation_is_zero_for_identical_and_two_for_disjoint_histograms():
    counts = np.array([1.0, 4.0, 0.0, 5.0])
    assert RdfWatch.deviation(counts, 3 * counts) == 0.0
    assert RdfWatch.deviation(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(2.0)


def test_drifting_atom_collapses_after_one_window_not_before(molecule):
    reference = vibrating(molecule, 400, seed=0)
    frames = drifting(vibrating(molecule, 150, seed=2), atom=8, speed=0.2)  # 30 Å over 150 frames
    watch = RdfWatch([molecule], reference, window=250.0, max_deviation=0.3)  # 20 checks of 5 fs
    flags = [watch.observe(0, frame.positions, k * 0.005) for k, frame in enumerate(frames)]
    first = flags.index(True)
    assert first >= 50  # nothing judged before one window (50 checks of 5 fs) has passed
    assert all(flags[first:])


def test_monitor_reports_rdf_and_keeps_windows_across_a_checkpoint(molecule):
    reference = BondReference(vibrating(molecule, 200, seed=0))
    frames = drifting(vibrating(molecule, 120, seed=3), atom=8, speed=0.3)
    a = StabilityMonitor([molecule], reference, criterion="rdf", rdf_window=250.0, max_rdf_deviation=0.3)
    b = StabilityMonitor([molecule], reference, criterion="rdf", rdf_window=250.0, max_rdf_deviation=0.3)
    reasons_a, reasons_b = [], []
    for k, frame in enumerate(frames):
        positions = torch.as_tensor(frame.positions)
        reasons_a.append(a.structure_reasons(positions, k * 0.005)[0][0])
        if k == 70:  # b restarts from a checkpoint of itself taken here
            state = json.loads(json.dumps(b.state_dict(), default=lambda x: x.tolist()))
            b = StabilityMonitor([molecule], reference, criterion="rdf", rdf_window=250.0, max_rdf_deviation=0.3)
            b.load_state_dict({"onset": state["onset"], "rdf": {
                "windows": {r: [(t, np.asarray(c)) for t, c in w] for r, w in state["rdf"]["windows"].items()},
                "last": state["rdf"]["last"]}})
        reasons_b.append(b.structure_reasons(positions, k * 0.005)[0][0])
    assert "rdf" in reasons_a
    assert reasons_a == reasons_b


def test_stability_command_judges_by_rdf(tmp_path, molecule):
    reference, trajectory = tmp_path / "reference.xyz", tmp_path / "run.xyz"
    write(reference, vibrating(molecule, 300, seed=0))
    write(trajectory, drifting(vibrating(molecule, 150, seed=4), atom=8, speed=0.2))
    result = judge_trajectory(trajectory, reference, criterion="rdf", frame_fs=5.0, rdf_window=250.0,
                              max_rdf_deviation=0.3)
    assert result["collapsed"] and result["collapse_frame"] >= 50
    assert "h(r)" in result["detail"]
    assert result["reference_check"] == []  # the reference's own stretches stay within the limit
    calm = judge_trajectory(reference, reference, criterion="rdf", frame_fs=5.0, rdf_window=250.0,
                            max_rdf_deviation=0.3)
    assert not calm["collapsed"]


@pytest.mark.parametrize("command", ["simulate", "stability"])
def test_command_line_defaults_are_the_rule_s(command):
    from boltzmatch.cli.main import build_parser
    from boltzmatch.simulate.rdf_rule import DEFAULT_MAX_RDF_DEVIATION, DEFAULT_RDF_WINDOW_FS

    argv = ([command, "RUN", "--start", "S", "--out", "O"] if command == "simulate" else
            [command, "TRAJ", "--reference", "REF"])
    args = build_parser().parse_args(argv + ["--criterion", "rdf"])
    assert (args.rdf_window, args.max_rdf_deviation) == (DEFAULT_RDF_WINDOW_FS, DEFAULT_MAX_RDF_DEVIATION)


def test_a_barostat_cell_is_measured_in_its_own_cell():
    """A crystal whose cell a barostat expanded by 8 % is judged in that cell: with it, the h(r) of frames scaled
    alike is the (scaled) reference's; measured in the starting cell, the pairs through the boundary come out
    0.8 Å short and the same frames would count as a collapse."""
    from ase.build import bulk

    crystal = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    scale = 1.08

    def expanded(frame):
        frame = frame.copy()
        frame.set_cell(frame.cell * scale, scale_atoms=True)
        return frame

    reference = [expanded(f) for f in vibrating(crystal, 40, seed=0, sigma=0.03)]
    frames = [expanded(f) for f in vibrating(crystal, 40, seed=1, sigma=0.03)]
    monitor = StabilityMonitor([crystal], BondReference(reference, "ref"), criterion="rdf", rdf_window=100.0)
    blind = StabilityMonitor([crystal], BondReference(reference, "ref"), criterion="rdf", rdf_window=100.0)
    for k, frame in enumerate(frames):
        positions = torch.as_tensor(frame.positions)
        cell = torch.as_tensor(np.asarray(frame.cell))[None]
        assert monitor.structure_reasons(positions, k * 0.005, cell)[0][0] is None
        last = blind.structure_reasons(positions, k * 0.005)[0][0]
    assert last == "rdf"


def test_the_bond_rule_measures_bonds_through_a_barostat_cell():
    from ase.build import bulk

    crystal = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    big = crystal.copy()
    big.set_cell(big.cell * 1.08, scale_atoms=True)
    monitor = StabilityMonitor([crystal], BondReference([big], "ref"), criterion="bond")
    positions = torch.as_tensor(big.positions)
    assert monitor.max_bond_deviation(positions, torch.as_tensor(np.asarray(big.cell))[None]).item() < 1e-9
    assert monitor.max_bond_deviation(positions).item() > 0.5  # bonds through the boundary, in the old cell
