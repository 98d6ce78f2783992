"""FrameWriter (generate's output): frames written before an interruption are kept, and a writer stopped before
its first frame leaves no file (it left an empty one, which a later existence check took for data)."""

import pytest
from ase.build import bulk

from boltzmatch.data import read_structures
from boltzmatch.data.writers import FrameWriter


def test_frames_written_before_an_interruption_are_kept(tmp_path):
    path = tmp_path / "frames.xyz"
    with pytest.raises(KeyboardInterrupt), FrameWriter(path) as writer:
        writer.write(bulk("Cu", "fcc", a=3.6))
        writer.write(bulk("Cu", "fcc", a=3.7))
        raise KeyboardInterrupt
    assert [a.cell[0, 1] for a in read_structures(path)] == [1.8, 1.85]
    assert not (tmp_path / "frames.xyz.partial").exists()


def test_a_writer_stopped_before_its_first_frame_leaves_no_file(tmp_path):
    path = tmp_path / "frames.xyz"
    with pytest.raises(KeyboardInterrupt), FrameWriter(path):
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
