"""Fuzz the readers: any bytes either parse or raise BoltzmatchError, never anything else."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boltzmatch.data import read_structures, write_structures
from boltzmatch.errors import BoltzmatchError
from helpers import labelled_molecules

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _read_or_user_error(path):
    try:
        structures = read_structures(path)
    except BoltzmatchError as exc:
        assert "\n" not in str(exc)
        return None
    for atoms in structures:
        assert np.isfinite(atoms.positions).all()
    return structures


@FUZZ
@given(cut=st.integers(min_value=0, max_value=10_000), junk=st.binary(max_size=20))
def test_truncated_and_corrupted_extxyz(tmp_path_factory, cut, junk):
    folder = tmp_path_factory.mktemp("fuzz")
    write_structures(folder / "ok.xyz", labelled_molecules(3))
    data = (folder / "ok.xyz").read_bytes()
    cut = cut % (len(data) + 1)
    (folder / "bad.xyz").write_bytes(data[:cut] + junk + data[cut + len(junk):])
    _read_or_user_error(folder / "bad.xyz")


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list("0123456789 .-eEHCOXx=\n\"'abc:")), max_size=200))
def test_random_text_as_extxyz(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "r.xyz"
    path.write_text(text)
    _read_or_user_error(path)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=100_000))
def test_truncated_db_and_npz(tmp_path_factory, cut):
    folder = tmp_path_factory.mktemp("fuzz")
    structures = labelled_molecules(3)
    write_structures(folder / "ok.db", structures)
    np.savez(folder / "ok.npz", z=structures[0].numbers, R=np.stack([a.positions for a in structures]),
             E=np.zeros(3), F=np.zeros((3, 9, 3)), e_unit=np.array("eV"))
    for name in ("ok.db", "ok.npz"):
        data = (folder / name).read_bytes()
        bad = folder / ("bad" + name[2:])
        bad.write_bytes(data[: cut % (len(data) + 1)])
        _read_or_user_error(bad)
