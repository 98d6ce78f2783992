"""generate's trajectories and refine's labels on Dask (issue 41): the same bytes as the serial run with
any number of workers, nothing lost or duplicated when a worker is SIGKILLed mid-run, and a killed client
that resumes computes only the missing trajectories."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("distributed")

from ase.io import read  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

from boltzmatch.data import generate  # noqa: E402
from boltzmatch.data.labelling import label_frames  # noqa: E402

# EMT ethanol: about 1 s of MD per 0.5 ps trajectory here
MD = dict(calculator="emt", temperature=300.0, time=0.5, interval=50, equilibration=0, progress=False)


def done(journal) -> int:
    """Trajectories the journal says are in the output (0 before it exists)."""
    try:
        return json.loads(journal.read_text())["done"]
    except (OSError, ValueError):
        return 0


@pytest.fixture(autouse=True)
def _environment_restored():
    """The tests that start a LocalCluster of their own get the environment back that its nanny changes (the
    one of TaskPool is restored by TaskPool, tested below)."""
    before = dict(os.environ)
    yield
    for key in set(os.environ) - set(before):
        del os.environ[key]
    os.environ.update(before)


@pytest.fixture(scope="module")
def serial_six(tmp_path_factory):
    path = tmp_path_factory.mktemp("serial") / "six.xyz"
    generate("ethanol", out=path, trajectories=6, seed=7, **MD)
    return path.read_bytes()


def test_trajectories_on_two_workers_equal_the_serial_run_byte_for_byte(tmp_path, serial_six):
    summary = generate("ethanol", out=tmp_path / "two.xyz", trajectories=6, seed=7, workers=2, **MD)
    assert (tmp_path / "two.xyz").read_bytes() == serial_six
    assert summary.trajectories == 6 and summary.frames == 120
    assert not list(tmp_path.glob("two.xyz.partial*"))  # no journal or partial file left behind
    # trajectory k is the single run with seed 7 + k
    generate("ethanol", out=tmp_path / "third.xyz", seed=9, **MD)
    third = [a for a in read(tmp_path / "two.xyz", index=":") if a.info["trajectory"] == 2]
    single = read(tmp_path / "third.xyz", index=":")
    assert len(third) == len(single) == 20
    assert all((a.positions == b.positions).all() and a.get_potential_energy() == b.get_potential_energy()
               for a, b in zip(third, single))


def test_a_local_cluster_leaves_the_environment_as_it_found_it(tmp_path, monkeypatch):
    """Dask's nanny writes its workers' settings (OMP_NUM_THREADS=1, MKL_NUM_THREADS=1, PYTHONHASHSEED...) into
    this process's environment and left them there: every later subprocess ran on one thread (the run-loop
    test's killed diffusion run then differed from the in-process one in the last bits)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    before = dict(os.environ)
    generate("ethanol", out=tmp_path / "two.xyz", trajectories=2, seed=7, workers=2, **MD)
    assert dict(os.environ) == before


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(tmp_path, serial_six):
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        out = tmp_path / "killed.xyz"
        journal = tmp_path / "killed.xyz.partial.parts" / "journal.json"
        errors = []

        def run():
            try:
                generate("ethanol", out=out, trajectories=6, seed=7, scheduler=cluster.scheduler_address, **MD)
            except Exception as error:  # noqa: BLE001  (reported below)
                errors.append(error)

        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 60
        while done(journal) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.is_alive(), "the run ended before a worker could be killed"
        os.kill(pids[0], signal.SIGKILL)
        worker.join(120)
    assert not errors and out.read_bytes() == serial_six


def test_a_killed_client_resumes_and_computes_only_the_missing_trajectories(tmp_path, serial_six, monkeypatch):
    out = tmp_path / "resumed.xyz"
    journal = tmp_path / "resumed.xyz.partial.parts" / "journal.json"
    process = subprocess.Popen([sys.executable, "-m", "boltzmatch", "generate", "ethanol", "--calculator", "emt",
                                "--temperature", "300", "--time", "0.5", "--interval", "50", "--equilibration", "0",
                                "--trajectories", "6", "--seed", "7", "--quiet", "--out", str(out)])
    deadline = time.monotonic() + 120
    while done(journal) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()
    import boltzmatch.data.trajectories as trajectories

    computed = []
    real = trajectories.run_reference_md
    monkeypatch.setattr(trajectories, "run_reference_md",
                        lambda md, *a, **k: computed.append(md.seed) or real(md, *a, **k))
    generate("ethanol", out=out, trajectories=6, seed=7, **MD)
    assert out.read_bytes() == serial_six
    assert 0 < len(computed) <= 4 and computed == sorted(computed) and computed[-1] == 12


def test_labels_are_the_same_with_one_and_two_workers(ethanol_xtb, tmp_path):
    frames = read(ethanol_xtb, index=":12")
    assert label_frames(frames, tmp_path / "one.xyz", "xtb", progress=False) == 12
    assert label_frames(frames, tmp_path / "two.xyz", "xtb", workers=2, progress=False) == 12
    assert (tmp_path / "one.xyz").read_bytes() == (tmp_path / "two.xyz").read_bytes()
    assert label_frames(frames, tmp_path / "two.xyz", "xtb", progress=False) == 0  # finished: nothing to do


@pytest.mark.parametrize(("flag", "value"), [("--workers", "0"), ("--trajectories", "0")])
def test_a_bad_count_is_one_line_and_writes_nothing(tmp_path, capsys, flag, value):
    from boltzmatch.cli.main import main

    out = tmp_path / "x.xyz"
    assert main(["generate", "ethanol", "--calculator", "emt", "--time", "0.05", "--trajectories", "2", flag, value,
                 "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{flag} must be a positive integer, got 0" in err[0]
    assert not list(tmp_path.iterdir())
