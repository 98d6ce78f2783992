"""Readers and writers: round trips, units, SchNetPack's QM9 layout, MD17 npz, bad input."""

import ase.db
import ase.io
import numpy as np
import pytest
from ase import units
from ase.build import molecule

from boltzmatch.data import energy_of, forces_of, read_structures, write_structures
from boltzmatch.errors import BoltzmatchError
from helpers import labelled_molecules

KCAL = units.kcal / units.mol


def assert_same(a_list, b_list):
    """Equal to extxyz's precision: 8 decimals in Å and eV/Å columns."""
    assert len(a_list) == len(b_list)
    for a, b in zip(a_list, b_list):
        assert (a.numbers == b.numbers).all()
        np.testing.assert_allclose(a.positions, b.positions, rtol=0, atol=1e-8)
        assert energy_of(a) == pytest.approx(energy_of(b), rel=1e-12)
        np.testing.assert_allclose(forces_of(a), forces_of(b), rtol=0, atol=1e-8)


def test_extxyz_db_extxyz_round_trip(tmp_path, molecules):
    write_structures(tmp_path / "a.xyz", molecules)
    first = read_structures(tmp_path / "a.xyz")
    write_structures(tmp_path / "b.db", first)
    second = read_structures(tmp_path / "b.db")
    write_structures(tmp_path / "c.xyz", second)
    assert_same(molecules, read_structures(tmp_path / "c.xyz"))


def test_traj_is_read(tmp_path, molecules):
    ase.io.write(tmp_path / "a.traj", molecules)
    assert_same(molecules, read_structures(tmp_path / "a.traj"))


def test_extxyz_ref_keys_detected(tmp_path):
    atoms = molecule("H2O")
    atoms.info["REF_energy"] = -2.5
    atoms.arrays["REF_forces"] = np.arange(9.0).reshape(3, 3)
    ase.io.write(tmp_path / "ref.xyz", atoms, format="extxyz")
    (s,) = read_structures(tmp_path / "ref.xyz")
    assert energy_of(s) == -2.5
    np.testing.assert_allclose(forces_of(s), np.arange(9.0).reshape(3, 3))


def test_explicit_key_and_unit_conversion(tmp_path):
    atoms = molecule("H2O")
    atoms.info["dft_e"] = -2.0
    atoms.arrays["dft_f"] = np.ones((3, 3))
    ase.io.write(tmp_path / "k.xyz", atoms, format="extxyz")
    (s,) = read_structures(tmp_path / "k.xyz", energy_key="dft_e", forces_key="dft_f",
                           energy_unit="hartree", length_unit="bohr")
    assert energy_of(s) == pytest.approx(-2.0 * units.Hartree)
    np.testing.assert_allclose(forces_of(s), units.Hartree / units.Bohr)
    np.testing.assert_allclose(s.positions, atoms.positions * units.Bohr)
    with pytest.raises(BoltzmatchError, match=r"k.xyz, line 1 \(structure 0\): key 'nope' not found"):
        read_structures(tmp_path / "k.xyz", energy_key="nope")


def _write_md17_npz(path, layout, structures, e_scale, with_units=False):
    z = structures[0].numbers
    R = np.stack([a.positions for a in structures])
    E = np.array([energy_of(a) for a in structures]) / e_scale
    F = np.stack([forces_of(a) for a in structures]) / e_scale
    if layout == "sgdml":
        extra = {"e_unit": np.array("kcal/mol"), "r_unit": np.array("Ang")} if with_units else {}
        np.savez(path, z=z, R=R, E=E[:, None], F=F, **extra)
    else:
        np.savez(path, nuclear_charges=z, coords=R, energies=E, forces=F)


@pytest.mark.parametrize("layout", ["sgdml", "rmd17"])
def test_npz_to_extxyz_round_trip(tmp_path, molecules, layout):
    _write_md17_npz(tmp_path / "m.npz", layout, molecules, KCAL)
    read = read_structures(tmp_path / "m.npz", energy_unit="kcal/mol")
    assert_same(molecules, read)
    write_structures(tmp_path / "m.xyz", read)
    assert_same(molecules, read_structures(tmp_path / "m.xyz"))


def test_npz_units_from_file_and_required_otherwise(tmp_path, molecules):
    _write_md17_npz(tmp_path / "u.npz", "sgdml", molecules, KCAL, with_units=True)
    assert_same(molecules, read_structures(tmp_path / "u.npz"))
    _write_md17_npz(tmp_path / "n.npz", "rmd17", molecules, KCAL)
    with pytest.raises(BoltzmatchError, match="does not state its energy unit"):
        read_structures(tmp_path / "n.npz")


def test_schnetpack_qm9_layout(tmp_path):
    """An ASE db as SchNetPack's QM9 writes it: properties in row.data, units in metadata."""
    path = tmp_path / "qm9.db"
    structures = [molecule("CH4"), molecule("H2O"), molecule("NH3")]
    u0_hartree = [-40.47893, -76.404702, -56.525887]
    with ase.db.connect(str(path)) as db:
        db.metadata = {
            "_property_unit_dict": {"energy_U0": "Ha", "energy_U": "Ha", "homo": "Ha", "mu": "Debye"},
            "_distance_unit": "Ang",
            "atomrefs": {},
        }
        for atoms, u0 in zip(structures, u0_hartree):
            db.write(atoms, data={"energy_U0": np.array([u0]), "energy_U": np.array([u0 + 0.01]),
                                  "homo": np.array([-0.3]), "mu": np.array([1.0])})
    read = read_structures(path)
    assert [energy_of(a) for a in read] == pytest.approx([u * units.Hartree for u in u0_hartree])
    assert [a.get_chemical_formula() for a in read] == ["CH4", "H2O", "H3N"]
    other = read_structures(path, energy_key="energy_U")
    assert energy_of(other[0]) == pytest.approx((u0_hartree[0] + 0.01) * units.Hartree)


# ------------------------------------------------------------------------ bad input

XYZ_OK = '3\nProperties=species:S:1:pos:R:3 energy=-1.0 pbc="F F F"\nO 0 0 0\nH 0 0 1\nH 0 1 0\n'


@pytest.mark.parametrize(
    "text, message",
    [
        (XYZ_OK.rsplit("H", 1)[0], r"bad.xyz, line 4: file ends inside frame 0: expected 3 atom lines, found 2"),
        (XYZ_OK.replace("O 0 0 0", "Xx 0 0 0"), r"bad.xyz, line 3: unknown element 'Xx'"),
        (XYZ_OK.replace("O 0 0 0", "O 0 zero 0"), r"bad.xyz, line 3: expected a number for a coordinate"),
        (XYZ_OK.replace("O 0 0 0", "O 0 0"), r"bad.xyz, line 3: expected 'symbol x y z"),
        ("three\n", r"bad.xyz, line 1: expected the atom count of frame 0"),
        (XYZ_OK.replace("energy=-1.0", "energy=nan"), r"bad.xyz, line 1 \(structure 0\): energy contains NaN"),
        (XYZ_OK.replace("H 0 1 0", "H 0 inf 0"), r"bad.xyz, line 1 \(structure 0\): positions contains NaN or inf"),
        ("", r"bad.xyz: holds no structures"),
    ],
)
def test_malformed_extxyz(tmp_path, text, message):
    (tmp_path / "bad.xyz").write_text(text)
    with pytest.raises(BoltzmatchError, match=message):
        read_structures(tmp_path / "bad.xyz")


def test_missing_and_mixed_labels(tmp_path, molecules):
    unlabelled = [molecule("H2O")]
    write_structures(tmp_path / "u.xyz", unlabelled)
    with pytest.raises(BoltzmatchError, match=r"u.xyz, structure 0: has no forces; this task needs forces"):
        read_structures(tmp_path / "u.xyz", require=["forces"])
    write_structures(tmp_path / "mixed.xyz", molecules[:2] + unlabelled)
    with pytest.raises(BoltzmatchError, match=r"structure 2: has no energy while other structures do"):
        read_structures(tmp_path / "mixed.xyz")


def test_other_bad_files(tmp_path):
    with pytest.raises(BoltzmatchError, match=r"nothere.xyz: no such file"):
        read_structures(tmp_path / "nothere.xyz")
    (tmp_path / "x.pdf").write_text("hi")
    with pytest.raises(BoltzmatchError, match=r"unknown file type '.pdf'"):
        read_structures(tmp_path / "x.pdf")
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 10)
    with pytest.raises(BoltzmatchError, match=r"junk.db: is not a readable ASE database"):
        read_structures(tmp_path / "junk.db")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(BoltzmatchError, match=r"junk.npz: is not a readable npz archive"):
        read_structures(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(BoltzmatchError, match=r"other.npz: expected the sGDML MD17 keys"):
        read_structures(tmp_path / "other.npz")
    (tmp_path / "bin.xyz").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BoltzmatchError, match=r"bin.xyz: is not a text file"):
        read_structures(tmp_path / "bin.xyz")


def test_write_is_atomic(tmp_path, molecules, monkeypatch):
    """A crash while writing leaves neither a partial file nor a temporary one."""
    import ase.io as aio

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(aio, "write", boom)
    with pytest.raises(RuntimeError):
        write_structures(tmp_path / "out.xyz", molecules)
    assert list(tmp_path.iterdir()) == []


def test_many_frames_with_variable_sizes(tmp_path):
    structures = labelled_molecules(3) + labelled_molecules(2, name="H2O", seed=2)
    write_structures(tmp_path / "v.xyz", structures)
    assert_same(structures, read_structures(tmp_path / "v.xyz"))


def test_ase_info_that_extxyz_cannot_keep_is_dropped_without_a_warning(tmp_path):
    import warnings

    import ase.io
    from ase.build import fcc111

    ase.io.write(tmp_path / "slab.xyz", fcc111("Al", size=(2, 2, 2), vacuum=5.0))  # info holds adsorbate_info
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_structures(tmp_path / "slab.xyz")[0]) == 8
