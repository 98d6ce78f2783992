"""--device everywhere (issue 40): one resolver, one-line errors, run directories that load on any device,
NCCL under torchrun on GPUs, the memory model of the replica count. CUDA-only checks carry the gpu marker."""

import argparse

import pytest
import torch

import boltzmatch
from boltzmatch.cli.common import add_device_options, device_kwargs
from boltzmatch.errors import BoltzmatchError
from boltzmatch.models import build_model
from boltzmatch.runs import run_dir as rd
from boltzmatch.training.distributed import Distributed
from boltzmatch.utils.device import autocast, check_precision, default_device, max_batch_from_memory, resolve_device


def test_auto_is_cuda_only_where_there_is_one():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "tpu:0"])
def test_bad_device_names_are_one_line_errors(spec):
    with pytest.raises(BoltzmatchError, match=f"--device {spec}: expected auto"):
        resolve_device(spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without CUDA")
def test_cuda_without_a_gpu_says_so():
    with pytest.raises(BoltzmatchError, match="no CUDA device is visible here.*use --device cpu"):
        resolve_device("cuda:0")


def test_precision_names():
    assert check_precision(None) == "float32"
    with pytest.raises(BoltzmatchError, match="--precision half"):
        check_precision("half")


def test_bf16_autocast_on_the_cpu_computes_in_bf16():
    a = torch.randn(4, 4)
    with autocast(torch.device("cpu"), "bf16"):
        assert (a @ a).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "float32"):
        assert (a @ a).dtype == torch.float32


def test_default_device_is_restored():
    before = torch.get_default_device()
    with default_device(torch.device("meta")):
        assert torch.zeros(2).device.type == "meta"
    assert torch.get_default_device() == before


def test_cli_options_pass_only_what_was_given():
    parser = argparse.ArgumentParser()
    add_device_options(parser, precision=True)
    assert device_kwargs(parser.parse_args([])) == {}
    assert device_kwargs(parser.parse_args(["--device", "cpu", "--precision", "bf16"])) == {
        "device": "cpu", "precision": "bf16"}


def test_memory_model_fits_the_measured_peaks():
    # 100 MB fixed + 2 MB per replica, measured at 64 and 256 replicas: 1 GB free at 80 % → 350 replicas
    measured = [(64, 100e6 + 64 * 2e6), (256, 100e6 + 256 * 2e6)]
    assert max_batch_from_memory(measured, free_bytes=1e9) == 350
    with pytest.raises(ValueError, match="two batch sizes"):
        max_batch_from_memory([(64, 1e6)], free_bytes=1e9)


def test_distributed_picks_gloo_on_cpus_and_nccl_on_gpus(monkeypatch):
    assert Distributed(torch.device("cpu")).backend == "gloo"
    single = Distributed(torch.device("meta"))  # one process: nothing initialised, the device kept
    assert single.device.type == "meta" and not single.active
    fake = Distributed.__new__(Distributed)
    fake.device = torch.device("cuda", 1)
    assert fake.backend == "nccl"


def test_a_run_loads_onto_the_device_asked_for(tmp_path, molecules):
    """rd.load(map_location=...) put the weights there but left the model on the CPU (simulate --device cuda
    then mixed devices); the model itself now moves."""
    from ase.io import write

    data = tmp_path / "mols.xyz"
    write(data, molecules)
    boltzmatch.train(data, out=tmp_path / "run", model="mlp", epochs=1, progress=False, device="cpu")
    model = rd.load(tmp_path / "run", map_location="meta")
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert rd.read_config(tmp_path / "run")["training"]["device"] == "cpu"


def test_training_in_bf16_on_the_cpu_runs_and_learns(tmp_path, molecules):
    from ase.io import write

    data = tmp_path / "mols.xyz"
    write(data, molecules)
    summary = boltzmatch.train(data, out=tmp_path / "run", model="mlp", epochs=3, progress=False, device="cpu",
                               precision="bf16")
    assert summary["val_force_mae_meV_A"] == summary["val_force_mae_meV_A"]  # finite, not NaN
    assert rd.read_config(tmp_path / "run")["training"]["precision"] == "bf16"


@pytest.mark.gpu
def test_training_on_cuda_matches_the_cpu(tmp_path, molecules):
    """The same run on the GPU and the CPU: the same code path, errors within float32 reordering."""
    from ase.io import write

    data = tmp_path / "mols.xyz"
    write(data, molecules)
    common = dict(model="schnet", epochs=2, progress=False, config={"dtype": "float64"}, ema_decay=None)
    cpu = boltzmatch.train(data, out=tmp_path / "cpu", device="cpu", **common)
    gpu = boltzmatch.train(data, out=tmp_path / "gpu", device="cuda", **common)
    assert gpu["val_force_mae_meV_A"] == pytest.approx(cpu["val_force_mae_meV_A"], rel=1e-6)


@pytest.mark.gpu
def test_simulate_on_cuda(tmp_path, molecules):
    from ase.io import write

    data = tmp_path / "mols.xyz"
    write(data, molecules)
    boltzmatch.train(data, out=tmp_path / "run", model="schnet", epochs=1, progress=False)
    summary = boltzmatch.simulate(tmp_path / "run", data, out=tmp_path / "md", replicas=4, time=0.05,
                                  device="cuda", progress=False)
    assert summary["replicas"] == 4


def test_replicas_auto_needs_a_gpu(tmp_path, molecules):
    from ase.io import write

    data = tmp_path / "mols.xyz"
    write(data, molecules)
    boltzmatch.train(data, out=tmp_path / "run", model="mlp", epochs=1, progress=False, device="cpu")
    with pytest.raises(BoltzmatchError, match="--replicas auto sizes the batch to a GPU's memory"):
        boltzmatch.simulate(tmp_path / "run", data, out=tmp_path / "md", replicas="auto", device="cpu",
                            time=0.01, progress=False)
    assert not (tmp_path / "md" / "summary.json").exists()
    summary = boltzmatch.simulate(tmp_path / "run", data, out=tmp_path / "md", replicas=2, device="cpu", time=0.01,
                                  interval=5, check_interval=5, progress=False)
    assert summary["timing"]["device"] == "cpu"  # where it ran is in summary.json and the table


@pytest.mark.gpu
def test_replicas_auto_fills_the_gpu_by_the_measured_model(tmp_path, molecules):
    from ase.io import write

    from boltzmatch.simulate.memory import measured_peaks

    data = tmp_path / "mols.xyz"
    write(data, molecules)
    boltzmatch.train(data, out=tmp_path / "run", model="schnet", epochs=1, progress=False)
    model = rd.load(tmp_path / "run", map_location="cuda")
    (n1, p1), (n2, p2) = measured_peaks(model, molecules, torch.device("cuda"))
    assert p2 > p1 > 0  # more replicas, more memory
    summary = boltzmatch.simulate(tmp_path / "run", data, out=tmp_path / "md", replicas="auto", device="cuda",
                                  time=0.005, progress=False, write_trajectories=False)
    assert summary["replicas"] > 32


@pytest.mark.gpu
def test_replicas_auto_under_a_barostat_counts_the_stress_graph(tmp_path):
    """NPT evaluates the stress too (the strain's graph): the memory model measures that call, so it holds no more
    replicas than one measured on forces alone."""
    from ase.build import bulk

    from boltzmatch.simulate.memory import measured_peaks

    crystals = [bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)]
    crystals[0].rattle(0.05, seed=0)
    model = build_model({"name": "schnet", "cutoff": 4.0}).to("cuda")
    forces = measured_peaks(model, crystals, torch.device("cuda"))
    stress = measured_peaks(model, crystals, torch.device("cuda"), stress=True)
    assert all(s >= f > 0 for (_, s), (_, f) in zip(stress, forces, strict=True))


def test_checkpoint_state_moves_whole():
    from boltzmatch.utils.device import tensors_to

    state = {"a": [torch.ones(2), (torch.zeros(1), 3)], "b": "text"}
    moved = tensors_to(state, torch.device("meta"))
    assert moved["a"][0].device.type == "meta" and moved["a"][1][0].device.type == "meta"
    assert moved["a"][1][1] == 3 and moved["b"] == "text" and isinstance(moved["a"][1], tuple)


def test_the_cpu_default_device_adds_no_torch_function_mode():
    """torch.set_default_device installs a TorchFunctionMode that every torch call goes through; on the CPU,
    already the default, default_device must not (it slowed gflownet train by ~15 %)."""
    from torch.overrides import _get_current_function_mode_stack

    with default_device(torch.device("cpu")):
        assert not _get_current_function_mode_stack()
    with default_device(torch.device("meta")):
        assert _get_current_function_mode_stack()


def test_a_bad_device_leaves_an_existing_gflownet_run_alone(tmp_path):
    """gflownet train --overwrite with a mistyped --device emptied the old run before the device was refused."""
    from boltzmatch.gflownet import train_gflownet

    out = tmp_path / "run"
    train_gflownet("hypergrid", out=out, env_options={"ndim": 2, "height": 3}, n_trajectories=32, batch_size=16,
                   hidden=[8], progress=False)
    kept = sorted(p.name for p in out.iterdir())
    with pytest.raises(BoltzmatchError, match="--device gpu"):
        train_gflownet("hypergrid", out=out, env_options={"ndim": 2, "height": 3}, n_trajectories=32,
                       batch_size=16, hidden=[8], progress=False, overwrite=True, device="gpu")
    assert sorted(p.name for p in out.iterdir()) == kept
