"""Helpers for benchmarks: reference data made once and cached, JSON + table output."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from boltzmatch.data import generate
from boltzmatch.utils.atomic import atomic_write_text
from boltzmatch.utils.table import format_table

CACHE = Path(__file__).resolve().parent / ".cache"
RESULTS = Path(__file__).resolve().parent / "results"


def molecule_data(molecule: str, name: str, *, frames: int, seed: int, temperature: float = 500.0) -> Path:
    """GFN2-xTB frames of ``molecule`` at ``temperature`` K, every 10th step of 0.5 fs; cached by name."""
    path = CACHE / f"{name}.xyz"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        generate(molecule, out=path, calculator="xtb", temperature=temperature, time=frames * 10 * 0.5 / 1000,
                 interval=10, timestep=0.5, equilibration=1000, seed=seed, progress=True)
    return path


def ethanol_data(name: str, *, frames: int, seed: int, temperature: float = 500.0) -> Path:
    """GFN2-xTB ethanol frames at ``temperature`` K (see :func:`molecule_data`)."""
    return molecule_data("ethanol", name, frames=frames, seed=seed, temperature=temperature)


def qm9_data(molecules: int, seed: int = 0) -> Path:
    """``molecules`` random QM9 molecules (the qm9pack wheel) as extxyz, energy U0 in eV; cached, so that a machine
    without qm9pack (a GPU machine) runs with the file carried to it."""
    path = CACHE / f"qm9_{molecules}.xyz"
    if not path.exists():
        import tempfile

        from boltzmatch.data import read_structures, write_structures
        from boltzmatch.data.qm9 import write_qm9_db

        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            write_qm9_db(f"{tmp}/qm9.db", limit=molecules, seed=seed, progress=False)
            write_structures(path, read_structures(f"{tmp}/qm9.db"))
    return path


def make_split(n_frames: int, n_train: int, path: Path, seed: int = 0) -> Path:
    """A split file in SchNetPack's layout (train_idx, val_idx, test_idx), which boltzmatch reads too: ``n_train``
    random frames train, the rest validate, none test (the test frames come from another trajectory)."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(n_frames)
    np.savez(path, train_idx=order[:n_train], val_idx=order[n_train:], test_idx=order[:0])
    return path


PEER_PYTHON = Path(__file__).resolve().parent / ".peers" / "schnetpack" / "bin" / "python"


def install_schnetpack_peer() -> None:
    """SchNetPack 2.1.1 in its own virtual environment (torch 2.4.1: SchNetPack does not import
    under torch ≥ 2.6, which removed ``torch.utils.data.T_co``)."""
    if PEER_PYTHON.exists():
        return
    import subprocess

    venv = PEER_PYTHON.parents[1]
    subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "torch==2.4.1", "schnetpack==2.1.1"], check=True)


SCHNET_CONFIG = {"cutoff": 5.0, "n_interactions": 3, "n_features": 64, "n_rbf": 20}


def trained_schnet(data: Path, minutes: float = 3.0) -> Path:
    """A SchNet (SCHNET_CONFIG) trained for a few minutes on ``data``, cached: stable enough for MD
    and landscapes, where the weights' realism matters, not their accuracy."""
    import boltzmatch

    run = CACHE / "trained_schnet"
    if not (run / "model.pt").exists():
        boltzmatch.train(data, out=run, model="schnet", config=SCHNET_CONFIG, epochs=100000, batch_size=16,
                         lr=1e-3, max_minutes=minutes, progress=True)
    return run


def machine() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine()}


def write_results(name: str, results: dict, rows: list[list], header: list[str]) -> str:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = {"machine": machine(), **results}
    atomic_write_text(RESULTS / f"{name}.json", json.dumps(results, indent=2))
    table = format_table(rows, header=header, title=name)
    atomic_write_text(RESULTS / f"{name}.md", table + "\n")
    return table


def spread(values: list[float]) -> dict:
    """Median, range and every value of a round-robin measurement."""
    import numpy as np

    return {"median": float(np.median(values)), "min": float(np.min(values)), "max": float(np.max(values)),
            "rounds": [float(v) for v in values]}


def cell(stats: dict, digits: int = 1) -> str:
    """A table cell for :func:`spread`: median (min–max)."""
    return f"{stats['median']:.{digits}f} ({stats['min']:.{digits}f}–{stats['max']:.{digits}f})"


def thermalize(atoms, *, temperature_K: float, rng) -> None:
    """Maxwell–Boltzmann momenta at ``temperature_K`` (K): ASE ≥ 3.29's ``thermalize_momenta``, else
    the ``MaxwellBoltzmannDistribution`` it deprecates."""
    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # ASE < 3.29
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
    thermalize_momenta(atoms, temperature_K=temperature_K, rng=rng)


def ase_langevin_rate(frames, calculator, *, replicas: int = 4, steps: int = 50, temperature: float = 500.0) -> float:
    """Replica-steps per second of ASE's Langevin (0.5 fs, friction 0.01/fs) driving ``calculator``,
    one Atoms at a time as ASE does, over ``replicas`` × ``steps``."""
    import time

    import numpy as np
    from ase import units
    from ase.md.langevin import Langevin

    start = time.perf_counter()
    for replica in range(replicas):
        atoms = frames[replica].copy()
        atoms.calc = calculator
        thermalize(atoms, temperature_K=temperature, rng=np.random.default_rng(replica))
        Langevin(atoms, 0.5 * units.fs, temperature_K=temperature, friction=0.01 / units.fs,
                 rng=np.random.default_rng(replica)).run(steps)
    return replicas * steps / (time.perf_counter() - start)


def ase_packed_langevin_rate(frames, calculator, *, replicas: int = 64, steps: int = 50, spacing: float = 20.0,
                             temperature: float = 500.0) -> float:
    """Replica-steps per second of ASE's Langevin (0.5 fs, friction 0.01/fs) driving ``calculator`` on
    ``replicas`` molecules packed ``spacing`` Å apart in one Atoms (no periodic cell): what an ASE user does
    to batch molecules through one calculator call per step."""
    import time

    import numpy as np
    from ase import units
    from ase.md.langevin import Langevin

    side = int(np.ceil(replicas ** (1 / 3)))
    packed = None
    for k in range(replicas):
        molecule = frames[k % len(frames)].copy()
        molecule.calc = None
        molecule.positions += spacing * np.array([k % side, (k // side) % side, k // side ** 2], dtype=float)
        packed = molecule if packed is None else packed + molecule
    packed.calc = calculator
    thermalize(packed, temperature_K=temperature, rng=np.random.default_rng(0))
    dynamics = Langevin(packed, 0.5 * units.fs, temperature_K=temperature, friction=0.01 / units.fs,
                        rng=np.random.default_rng(0))
    dynamics.run(1)  # the first call builds what the calculator caches
    start = time.perf_counter()
    dynamics.run(steps)
    return replicas * steps / (time.perf_counter() - start)
