"""What a command's process loads: only its own command module, and for ``gflownet train`` neither
torch._dynamo (FunctionalAdam) nor the generative training stack (issue 38: whole-process time)."""

import subprocess
import sys

from boltzmatch.cli.main import COMMAND_MODULES, build_parser


def test_help_lists_every_command():
    help_text = build_parser([]).format_help()
    assert all(name in help_text for name in COMMAND_MODULES)


def test_a_command_parses_with_only_its_own_parser():
    parser = build_parser(["gflownet", "train", "--loss", "db"])
    assert parser.parse_args(["gflownet", "train", "--loss", "db"]).loss == "db"


def test_gflownet_train_loads_neither_dynamo_nor_other_commands(tmp_path):
    code = (f"import sys; from boltzmatch.cli.main import main; "
            f"main(['gflownet', 'train', '--env', 'hypergrid', '--ndim', '2', '--height', '3', '--n-trajectories', "
            f"'32', '--batch-size', '16', '--hidden', '8', '--out', {str(tmp_path / 'run')!r}, '--quiet']); "
            f"print([m for m in ('torch._dynamo', 'boltzmatch.generative.train', 'boltzmatch.cli.train', "
            f"'boltzmatch.training.trainer') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_lazy_names_are_the_functions_even_after_their_modules_load():
    """training.finetune was also a submodule: once it loaded, `from boltzmatch.training import finetune`
    gave the module (the demo failed with "'module' object is not callable")."""
    import importlib

    import boltzmatch.generative as generative
    import boltzmatch.training as training

    for package in (training, generative):
        for name in package.__all__:
            module = importlib.import_module(f"{package.__name__}.{package._NAMES[name]}")
            assert getattr(package, name) is getattr(module, name), f"{package.__name__}.{name}"
    for name in training.__all__:
        exec(f"from boltzmatch.training import {name} as value; assert not hasattr(value, '__path__') and "
             f"type(value).__name__ != 'module'")
