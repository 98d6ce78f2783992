"""QM9 from the qm9pack wheel as an ASE db in SchNetPack's layout, read back and trained on."""

import importlib.util
import subprocess
import sys

import ase.db
import numpy as np
import pytest
from ase import units

import boltzmatch
from boltzmatch.data import read_structures
from boltzmatch.data.qm9 import PROPERTIES, write_qm9_db

# qm9pack's own __init__ imports pkg_resources, gone from new setuptools: look for its files only
pytestmark = pytest.mark.skipif(importlib.util.find_spec("qm9pack") is None, reason="needs the qm9 extra")


@pytest.fixture(scope="module")
def qm9_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("qm9") / "qm9.db"
    write_qm9_db(path, limit=40, seed=1, progress=False)
    return path


def test_layout_units_and_atomrefs(qm9_db):
    db = ase.db.connect(str(qm9_db))
    assert db.count() == 40
    meta = db.metadata
    assert meta["_distance_unit"] == "Ang" and meta["_property_unit_dict"]["energy_U0"] == "eV"
    assert set(meta["_property_unit_dict"]) == set(PROPERTIES)
    assert meta["atomrefs"]["energy_U0"][6] == pytest.approx(-37.846772 * units.Hartree)
    row = next(db.select())
    assert set(row.data) == set(PROPERTIES)
    # methane-like sanity: U0 is about the sum of the free-atom references minus the atomisation energy
    refs = sum(meta["atomrefs"]["energy_U0"][z] for z in row.numbers)
    assert all(np.shape(v) == (1,) for v in row.data.values())  # SchNetPack's reader needs arrays
    assert -150 < float(row.data["energy_U0"][0]) - refs < -5  # eV: atomisation energies of QM9 molecules


def test_reads_back_and_a_subset_is_reproducible(qm9_db, tmp_path):
    structures = read_structures(qm9_db, energy_key="energy_U0")
    db = ase.db.connect(str(qm9_db))
    np.testing.assert_allclose([a.get_potential_energy() for a in structures],
                               [float(r.data["energy_U0"][0]) for r in db.select()], rtol=1e-12)
    again = tmp_path / "again.db"
    write_qm9_db(again, limit=40, seed=1, progress=False)
    other = tmp_path / "other.db"
    write_qm9_db(other, limit=40, seed=2, progress=False)
    ids = [[r.qm9_index for r in ase.db.connect(str(p)).select()] for p in (qm9_db, again, other)]
    assert ids[0] == ids[1] and ids[0] != ids[2]


def test_a_db_in_schnetpacks_own_units_reads_the_same(qm9_db, tmp_path):
    """SchNetPack's QM9 class stores Hartree and says so in _property_unit_dict."""
    theirs = tmp_path / "schnetpack_qm9.db"
    ours = ase.db.connect(str(qm9_db))
    hartree = {k for k, (_, _, unit) in PROPERTIES.items() if unit == "eV"}
    with ase.db.connect(str(theirs)) as db:
        for row in ours.select():
            data = {k: (v / units.Hartree if k in hartree else v) for k, v in row.data.items()}
            db.write(row.toatoms(), data=data)
        db.metadata = {"_property_unit_dict": {k: ("Hartree" if k in hartree else u)
                                               for k, (_, _, u) in PROPERTIES.items()},
                       "_distance_unit": "Ang"}
    a = [s.get_potential_energy() for s in read_structures(qm9_db, energy_key="energy_U0")]
    b = [s.get_potential_energy() for s in read_structures(theirs, energy_key="energy_U0")]
    np.testing.assert_allclose(a, b, rtol=1e-10)


def test_cli_info_and_training_on_u0(qm9_db, tmp_path):
    info = subprocess.run([sys.executable, "-m", "boltzmatch", "info", str(qm9_db)], capture_output=True, text=True)
    assert info.returncode == 0 and "energy_U0" in info.stdout and "heat_capacity" in info.stdout
    bad = subprocess.run([sys.executable, "-m", "boltzmatch", "data", "qm9", "--out", str(tmp_path / "q.xyz")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "must end in .db" in bad.stderr
    summary = boltzmatch.train(qm9_db, out=tmp_path / "run", model="schnet", objective="energy", epochs=1,
                               config={"n_interactions": 1, "n_features": 16, "n_rbf": 8},
                               data_options={"energy_key": "energy_U0"}, progress=False)
    assert np.isfinite(summary["val_energy_mae_meV"]) and not summary["one_molecule"]
