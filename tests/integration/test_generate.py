"""Reference data from real calculators: EMT, GFN2-xTB (tblite), OpenMM; seeds; interruption."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from boltzmatch.data import energy_of, forces_of, generate, read_structures
from boltzmatch.errors import BoltzmatchError


def test_emt_bulk_frames_have_consistent_labels(tmp_path):
    summary = generate("Cu-fcc-2x2x2", calculator="emt", temperature=300, time=0.08, interval=10,
                       timestep=2.0, equilibration=10, seed=0, out=tmp_path / "cu.xyz", progress=False)
    frames = read_structures(tmp_path / "cu.xyz", require=["energy", "forces"])
    assert summary.frames == len(frames) == 4
    assert frames[0].pbc.all() and len(frames[0]) == 32
    # labels are EMT's values at the written positions
    from ase.calculators.emt import EMT

    check = frames[-1].copy()
    check.calc = EMT()
    assert check.get_potential_energy() == pytest.approx(energy_of(frames[-1]), abs=1e-6)
    np.testing.assert_allclose(check.get_forces(), forces_of(frames[-1]), atol=1e-6)


def test_xtb_labels_are_the_reference_forces_of_the_written_positions(tmp_path):
    """Regression: molecules run with FixCom, whose adjusted forces once ended up in the files."""
    from tblite.ase import TBLite

    generate("ethanol", out=tmp_path / "e.xyz", calculator="xtb", temperature=500, time=0.02, interval=20,
             equilibration=20, seed=0, progress=False)
    for frame in read_structures(tmp_path / "e.xyz"):
        check = frame.copy()
        check.calc = TBLite(method="GFN2-xTB", verbosity=0)
        assert check.get_potential_energy() == pytest.approx(energy_of(frame), abs=1e-6)
        # SCF convergence of a fresh calculation: ~5e-5 eV/Å; the FixCom bug was 0.7 eV/Å
        np.testing.assert_allclose(check.get_forces(), forces_of(frame), atol=3e-4)


def test_xtb_same_seed_same_file(tmp_path):
    kwargs = dict(calculator="xtb", temperature=500, time=0.015, interval=10, timestep=0.5,
                  equilibration=5, progress=False)
    generate("ethanol", out=tmp_path / "a.xyz", seed=7, **kwargs)
    generate("ethanol", out=tmp_path / "b.xyz", seed=7, **kwargs)
    generate("ethanol", out=tmp_path / "c.xyz", seed=8, **kwargs)
    assert (tmp_path / "a.xyz").read_text() == (tmp_path / "b.xyz").read_text()
    assert (tmp_path / "a.xyz").read_text() != (tmp_path / "c.xyz").read_text()
    frames = read_structures(tmp_path / "a.xyz", require=["energy", "forces"])
    assert len(frames) == 3 and frames[0].get_chemical_formula() == "C2H6O"
    assert -320 < energy_of(frames[0]) < -300  # GFN2-xTB total energy of ethanol, eV


def test_langevin_thermostat_reaches_target_temperature(tmp_path):
    """Mean kinetic temperature within 10% of the target (3N-3 dof, FixCom), EMT so it is quick."""
    summary = generate("Cu-fcc-2x2x2", calculator="emt", temperature=400, time=8.0, interval=10,
                       timestep=4.0, equilibration=500, friction=0.02, seed=1, out=tmp_path / "t.xyz",
                       progress=False)
    assert summary.temperature_mean == pytest.approx(400, rel=0.1)


def test_unknown_system_and_calculator(tmp_path):
    with pytest.raises(BoltzmatchError, match="unknown system 'unobtainium'"):
        generate("unobtainium", out=tmp_path / "x.xyz", time=0.0005, interval=1)
    with pytest.raises(BoltzmatchError, match="openmm calculator has a force field for alanine-dipeptide only"):
        generate("ethanol", calculator="openmm", out=tmp_path / "x.xyz", time=0.0005, interval=1)
    assert not (tmp_path / "x.xyz").exists()


def test_openmm_alanine_dipeptide(tmp_path):
    pytest.importorskip("openmm")
    pytest.importorskip("openmmtools")
    generate("alanine-dipeptide", calculator="openmm", temperature=300, time=0.01, interval=10,
             timestep=0.5, equilibration=0, seed=0, out=tmp_path / "ala.xyz", progress=False)
    frames = read_structures(tmp_path / "ala.xyz", require=["energy", "forces"])
    assert len(frames) == 2 and len(frames[0]) == 22
    # forces are minus the gradient of the energy (finite difference through the calculator)
    from boltzmatch.data.openmm_reference import alanine_dipeptide_calculator

    atoms = frames[0].copy()
    atoms.calc = alanine_dipeptide_calculator()
    f = atoms.get_forces()
    h = 1e-4
    atoms.positions[3, 1] += h
    e_plus = atoms.get_potential_energy()
    atoms.positions[3, 1] -= 2 * h
    e_minus = atoms.get_potential_energy()
    assert -(e_plus - e_minus) / (2 * h) == pytest.approx(f[3, 1], rel=1e-3, abs=1e-3)


def test_sigterm_leaves_valid_file(tmp_path):
    out = tmp_path / "killed.xyz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "boltzmatch", "generate", "ethanol", "--time", "50", "--interval", "5",
         "--equilibration", "0", "--out", str(out), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    partial = out.with_name(out.name + ".partial")
    deadline = time.time() + 60
    while time.time() < deadline and (not partial.exists() or partial.stat().st_size < 5000):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "frames written so far" in stdout
    frames = read_structures(out, require=["energy", "forces"])
    assert len(frames) >= 1
    assert not partial.exists()


def test_cell_scales_give_a_crystal_at_several_volumes(tmp_path):
    """generate --cell-scale: the K trajectories at each scale in turn (seeds counting on), each frame's cell the
    built crystal's scaled by its factor, with EMT's stress labels; the same as a run of the one scale alone."""
    from ase.build import bulk

    from boltzmatch.data.labels import stress_of

    out = tmp_path / "scaled.xyz"
    summary = generate("Cu-fcc-2x2x2", calculator="emt", temperature=300, time=0.02, interval=10, equilibration=10,
                       seed=3, out=out, progress=False, cell_scales=[0.97, 1.03])
    assert summary.trajectories == 2 and summary.cell_scales == [0.97, 1.03]
    assert "cell scales" in summary.table()
    from ase.io import read

    frames = read_structures(out)
    volume = bulk("Cu", "fcc", cubic=True).repeat((2, 2, 2)).get_volume()
    scales = [f.info["cell_scale"] for f in read(out, index=":")]  # the file says which scale (the reader drops it)
    assert scales == [0.97] * 4 + [1.03] * 4
    for frame, scale in zip(frames, scales, strict=True):
        assert frame.get_volume() == pytest.approx(volume * scale**3, rel=1e-12)
    # compressed cells push outwards (positive pressure, ASE's stress negative), stretched ones pull in
    assert np.mean([stress_of(f)[:3].mean() for f in frames[:4]]) < 0 < np.mean([stress_of(f)[:3].mean()
                                                                                for f in frames[4:]])
    alone = tmp_path / "alone.xyz"
    single = generate("Cu-fcc-2x2x2", calculator="emt", temperature=300, time=0.02, interval=10, equilibration=10,
                      seed=4, out=alone, progress=False, cell_scales=[1.03])
    assert single.cell_scales == [1.03] and "cell scales" in single.table()  # one scale is named too
    np.testing.assert_array_equal(read_structures(alone)[0].positions, frames[4].positions)


@pytest.mark.parametrize(("system", "scales", "message"), [
    ("ethanol", [0.98, 1.0], "--cell-scale needs a crystal; ethanol is not periodic in all three directions"),
    ("Cu-fcc-2x2x2", [1.0, -1.0], "--cell-scale takes positive factors"),
])
def test_cell_scales_that_cannot_apply_are_refused_before_writing(tmp_path, system, scales, message):
    with pytest.raises(BoltzmatchError, match=message):
        generate(system, calculator="emt", time=0.01, out=tmp_path / "x.xyz", progress=False, cell_scales=scales)
    assert not list(tmp_path.iterdir())


def test_a_pressure_gives_npt_frames_at_the_reference_methods_own_density(tmp_path):
    """generate --pressure: ASE's LangevinBAOAB with a flexible cell, so the frames' cells move, and EMT Cu at 600 K
    and 0 GPa settles near EMT's own thermal lattice constant (3.6347 Å, benchmarks/npt.py) from the 3.61 Å
    built cell; each frame names its pressure. Seeds fix the file, one trajectory or several."""
    out = tmp_path / "npt.xyz"
    summary = generate("Cu-fcc-2x2x2", calculator="emt", temperature=600.0, time=1.0, timestep=2.0, interval=5,
                       equilibration=500, out=out, progress=False, pressure=0.0)
    frames = read_structures(out)
    volumes = np.array([f.get_volume() for f in frames])
    assert summary.frames == 100 and len(set(volumes.round(6))) == len(frames)
    assert (volumes.mean() / 8) ** (1 / 3) == pytest.approx(3.6347, abs=0.01)
    from ase.io import read

    assert {f.info["pressure_GPa"] for f in read(out, index=":")} == {0.0}
    again = tmp_path / "again.xyz"
    generate("Cu-fcc-2x2x2", calculator="emt", temperature=600.0, time=0.1, timestep=2.0, interval=5,
             equilibration=10, out=again, progress=False, pressure=0.0, trajectories=2)
    first = read_structures(again)[0]
    alone = tmp_path / "alone.xyz"
    generate("Cu-fcc-2x2x2", calculator="emt", temperature=600.0, time=0.1, timestep=2.0, interval=5,
             equilibration=10, out=alone, progress=False, pressure=0.0)
    assert np.array_equal(first.cell[:], read_structures(alone)[0].cell[:])
    with pytest.raises(BoltzmatchError, match="--pressure needs a crystal; ethanol is not periodic"):
        generate("ethanol", calculator="emt", time=0.01, out=tmp_path / "x.xyz", progress=False, pressure=0.0)
    assert not (tmp_path / "x.xyz").exists()


def test_common_names_of_g2_molecules_build_them():
    """A chemist types ``methanol``, not ``CH3OH``: that was 'unknown system'."""
    from ase.collections import g2

    from boltzmatch.data.systems import COMMON_NAMES, build_system

    assert build_system("methanol").get_chemical_formula() == "CH4O"
    assert build_system("Acetic acid").get_chemical_formula() == "C2H4O2"
    assert build_system("dimethyl_ether").get_chemical_formula() == "C2H6O"
    assert set(COMMON_NAMES.values()) <= set(g2.names)  # every name maps to a molecule ASE has
