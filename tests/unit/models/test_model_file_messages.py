"""Issue 39: the files that sit beside a MACE model get a line that says what they are (a compiled model, a
training checkpoint, a truncated file), not "holds a RecursiveScriptModule" or a text file's message."""

import pytest
import torch

from boltzmatch.errors import BoltzmatchError
from boltzmatch.models.external import detect_format


def test_a_compiled_model_is_named_and_the_model_file_pointed_to(tmp_path):
    path = tmp_path / "MACE_model_compiled.model"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 1)), path)
    with pytest.raises(BoltzmatchError, match=r"TorchScript-compiled model .*import the \*\.model file"):
        detect_format(path)


def test_a_training_checkpoint_is_named(tmp_path):
    path = tmp_path / "MACE_model_run-123_epoch-10.pt"
    torch.save({"model": torch.nn.Linear(2, 1).state_dict(), "optimizer": {}, "lr_scheduler": {}}, path)
    with pytest.raises(BoltzmatchError, match=r"a training checkpoint \(a dict of lr_scheduler, model, optimizer"):
        detect_format(path)


def test_a_truncated_file_is_not_called_a_text_file(tmp_path):
    whole = tmp_path / "whole.model"
    torch.save(torch.nn.Linear(8, 8), whole)
    cut = tmp_path / "cut.model"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(BoltzmatchError, match="truncated or corrupt"):
        detect_format(cut)
    text = tmp_path / "notes.model"
    text.write_text("not a model\n")
    with pytest.raises(BoltzmatchError, match="not a model file boltzmatch can import"):
        detect_format(text)


def test_the_nequip_hint_says_it_needs_its_own_environment():
    from boltzmatch.models.external.base import install_hint

    assert "environment without MACE" in install_hint("nequip") and "e3nn" in install_hint("nequip")
    assert install_hint("mace") == "install it with pip install 'boltzmatch[mace]'"
