"""``boltzmatch stability`` on real GFN2-xTB malonaldehyde: at 1000 K its hydroxyl proton moves to the
other oxygen within 2 ps (seed 1). Fu et al.'s bond rule calls that reference trajectory collapsed; the
molecular-graph criterion, the default, does not; and it judges a trajectory in which a C–C bond breaks
as collapsed from the frame it broke."""

import json

import numpy as np
import pytest

from boltzmatch.cli.main import main
from boltzmatch.data import read_structures, write_structures
from boltzmatch.data.geometry import find_bonds
from helpers import xtb_in_subprocess


@pytest.fixture(scope="module")
def hot_malonaldehyde(tmp_path_factory):
    path = tmp_path_factory.mktemp("stability") / "malonaldehyde-1000K.xyz"
    xtb_in_subprocess("malonaldehyde", path, temperature=1000, time=2, interval=10, timestep=0.5, equilibration=1000,
                      seed=1)
    return path


def _judge(capsys, *args) -> dict:
    assert main(["stability", *map(str, args), "--frame-fs", "5", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_proton_transfer_is_chemistry_by_default_and_a_collapse_by_the_bond_rule(hot_malonaldehyde, capsys):
    graph = _judge(capsys, hot_malonaldehyde, "--reference", hot_malonaldehyde)
    assert not graph["collapsed"] and graph["frames"] == 400
    bond = _judge(capsys, hot_malonaldehyde, "--reference", hot_malonaldehyde, "--criterion", "bond")
    assert bond["collapsed"] and "O0–H5" in bond["reference_check"][0]
    assert "breaks the bond rule" in bond["reference_check"][0]


def test_a_broken_carbon_bond_is_a_collapse_from_the_frame_it_broke(hot_malonaldehyde, tmp_path, capsys):
    frames = read_structures(hot_malonaldehyde)[:100]
    bonds = find_bonds(frames[0])
    a, b = next((int(x), int(y)) for x, y in zip(bonds.i, bonds.j, strict=True)
                if frames[0].numbers[x] == 6 and frames[0].numbers[y] == 6)
    for frame in frames[40:]:  # pull atom b (and nothing else) 2 Å away from a from frame 40 on
        direction = frame.positions[b] - frame.positions[a]
        frame.positions[b] += 2.0 * direction / np.linalg.norm(direction)
    broken = tmp_path / "broken.xyz"
    write_structures(broken, frames)
    result = _judge(capsys, broken, "--reference", hot_malonaldehyde)
    assert result["collapsed"] and result["onset_frame"] == 40
    assert result["collapse_frame"] == 50  # 50 fs later: 10 frames of 5 fs
    assert f"C{a}–C{b}" in result["detail"] or f"C{min(a, b)}–C{max(a, b)}" in result["detail"]


def test_bad_input_is_one_line(tmp_path, hot_malonaldehyde, capsys):
    frames = read_structures(hot_malonaldehyde)
    for frame in frames:
        del frame.info["time_ps"]  # frames from elsewhere that do not say when they were taken
    untimed = tmp_path / "untimed.xyz"
    write_structures(untimed, frames)
    assert main(["stability", str(untimed), "--reference", str(hot_malonaldehyde)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--frame-fs" in err
    assert main(["stability", str(tmp_path / "none.xyz"), "--reference", str(hot_malonaldehyde)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def _lammps_dump(frames) -> str:
    """A LAMMPS text dump (id type x y z) of ``frames`` in a 30 Å box."""
    out = []
    for step, frame in enumerate(frames):
        out += ["ITEM: TIMESTEP", str(step), "ITEM: NUMBER OF ATOMS", str(len(frame)),
                "ITEM: BOX BOUNDS pp pp pp", "-15 15", "-15 15", "-15 15", "ITEM: ATOMS id type x y z"]
        out += [f"{i + 1} {z} {x:.6f} {y:.6f} {w:.6f}" for i, (z, (x, y, w)) in
                enumerate(zip(frame.numbers, frame.positions, strict=True))]
    return "\n".join(out) + "\n"


def test_a_lammps_dump_is_judged_with_the_reference_naming_its_atoms(hot_malonaldehyde, tmp_path, capsys):
    frames = read_structures(hot_malonaldehyde)[:60]
    dump = tmp_path / "md.lammpstrj"
    dump.write_text(_lammps_dump(frames))
    result = _judge(capsys, dump, "--reference", hot_malonaldehyde)
    assert result["frames"] == 60 and not result["collapsed"] and result["criterion"] == "graph"
    # the same dump with a C atom moved out of the molecule from frame 30 on
    for frame in frames[30:]:
        frame.positions[1] += [3.0, 0.0, 0.0]
    dump.write_text(_lammps_dump(frames))
    result = _judge(capsys, dump, "--reference", hot_malonaldehyde)
    assert result["collapsed"] and result["onset_frame"] == 30
    assert result["detail"].startswith("broken") and "C1–C2" in result["detail"]
