import json

import numpy as np
import pytest

from boltzmatch.data import Split, split_indices
from boltzmatch.errors import BoltzmatchError


def test_random_split_is_seeded_partition():
    a = split_indices(100, val_fraction=0.1, test_fraction=0.2, seed=3)
    b = split_indices(100, val_fraction=0.1, test_fraction=0.2, seed=3)
    c = split_indices(100, val_fraction=0.1, test_fraction=0.2, seed=4)
    assert (a.train == b.train).all() and not np.array_equal(a.train, c.train)
    assert (len(a.train), len(a.val), len(a.test)) == (70, 10, 20)
    assert sorted(np.concatenate([a.train, a.val, a.test]).tolist()) == list(range(100))


def test_contiguous_split_keeps_blocks():
    s = split_indices(10, val_fraction=0.2, test_fraction=0.2, method="contiguous")
    assert s.train.tolist() == list(range(6))
    assert s.val.tolist() == [6, 7]
    assert s.test.tolist() == [8, 9]


def test_split_file_round_trip(tmp_path):
    s = split_indices(20, seed=1)
    s.save(tmp_path / "split.npz")
    loaded = Split.load(tmp_path / "split.npz", n_structures=20)
    assert (loaded.test == s.test).all()
    (tmp_path / "split.json").write_text(json.dumps({"train": [0, 1], "val": [2], "test": [30]}))
    with pytest.raises(BoltzmatchError, match=r"split.json, key 'test': indices must lie in 0..19"):
        Split.load(tmp_path / "split.json", n_structures=20)


def test_schnetpack_split_file_is_read(tmp_path):
    np.savez(tmp_path / "split.npz", train_idx=np.array([3, 1, 0]), val_idx=np.array([2]), test_idx=np.array([4]))
    loaded = Split.load(tmp_path / "split.npz", n_structures=5)
    assert loaded.train.tolist() == [3, 1, 0] and loaded.val.tolist() == [2] and loaded.test.tolist() == [4]
    np.savez(tmp_path / "other.npz", training=np.array([0]))
    with pytest.raises(BoltzmatchError, match=r"other.npz, key 'train': missing"):
        Split.load(tmp_path / "other.npz")


def test_bad_fractions():
    with pytest.raises(BoltzmatchError, match="no training structures"):
        split_indices(5, val_fraction=0.6, test_fraction=0.4)
