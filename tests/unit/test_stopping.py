"""SIGTERM and Ctrl-C stop long work at a consistent point, even when the signal lands where Python ignores
exceptions (CI: a SIGTERM's KeyboardInterrupt raised inside tblite's cffi destructor was printed as
"Exception ignored from callback for ffi.gc" and lost; `generate` ran on and the test's 60 s ran out)."""

import os
import signal

import pytest

from boltzmatch.cli.main import _terminate
from boltzmatch.data.reference_md import MDSettings, run_reference_md


class SignalsWhileCollected:
    """Sends this process SIGTERM from ``__del__``, where Python ignores exceptions (as in a cffi gc callback)."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs here, between bytecodes, inside the destructor
            pass


def test_a_sigterm_inside_a_destructor_still_stops_reference_md():
    md = MDSettings(system="ethanol", calculator="emt", temperature=300.0, steps=200, interval=5, timestep=0.5,
                    equilibration=0, friction=0.01, seed=0)
    frames = []

    def on_frame(frame):
        frames.append(frame)
        if len(frames) == 2:
            SignalsWhileCollected()  # made and collected at once

    previous = signal.signal(signal.SIGTERM, _terminate)  # what the CLI installs
    try:
        with pytest.raises(KeyboardInterrupt):
            run_reference_md(md, on_frame)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(frames) == 2  # stopped at the next step, not at the end (200 steps: 40 frames)


def test_a_sigterm_inside_a_destructor_stops_labelling_after_a_committed_frame(tmp_path, monkeypatch):
    from ase.build import molecule
    from ase.io import read

    from boltzmatch.data import labelling

    real, calls = labelling.label_texts, []

    def labelling_then_signalling(*args):
        text = real(*args)
        calls.append(1)
        if len(calls) == 2:
            SignalsWhileCollected()
        return text

    monkeypatch.setattr(labelling, "label_texts", labelling_then_signalling)
    frames = [molecule("CH3CH2OH") for _ in range(10)]
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with pytest.raises(KeyboardInterrupt):
            labelling.label_frames(frames, tmp_path / "labels.xyz", "emt", progress=False)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(calls) == 2 and len(read(tmp_path / "labels.xyz", index=":")) == 2  # committed, then stopped
