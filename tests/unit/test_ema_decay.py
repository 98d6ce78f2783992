"""``ema_decay="auto"``: the weights' moving average keeps a horizon of ~3,200 structures at batches above 32,
and ~100 steps at 32 and below (training/settings.auto_ema_decay)."""

from __future__ import annotations

import math

import pytest
import yaml

from boltzmatch.cli.main import main
from boltzmatch.data import write_structures
from boltzmatch.errors import BoltzmatchError
from boltzmatch.training.settings import TrainSettings, auto_ema_decay
from helpers import labelled_molecules


def test_auto_is_099_up_to_batch_32_and_the_same_horizon_in_structures_above():
    assert auto_ema_decay(8) == auto_ema_decay(32) == 0.99
    for batch in (64, 128, 512):  # the time constant −1/ln(decay), in structures: ~3,200, as at 32
        assert -batch / math.log(auto_ema_decay(batch)) == pytest.approx(-32 / math.log(0.99), rel=1e-12)
    assert auto_ema_decay(512) == pytest.approx(0.851, abs=1e-3)


def test_settings_resolve_auto_and_refuse_decays_outside_0_1():
    assert TrainSettings(data="x", batch_size=128).check().ema_decay == pytest.approx(0.99 ** 4)
    assert TrainSettings(data="x", ema_decay=0.9).check().ema_decay == 0.9
    assert TrainSettings(data="x", ema_decay=None).check().ema_decay is None
    for bad in (1.0, 1.5, -0.1, "fast"):
        with pytest.raises(BoltzmatchError, match="ema_decay must be auto, a number in"):
            TrainSettings(data="x", ema_decay=bad).check()


def test_the_train_command_records_the_decay_it_used(tmp_path, capsys):
    write_structures(tmp_path / "data.xyz", labelled_molecules(20))
    common = ["train", str(tmp_path / "data.xyz"), "--model", "schnet", "--epochs", "1", "--quiet",
              "--device", "cpu"]
    assert main([*common, "--out", str(tmp_path / "auto"), "--batch-size", "64"]) == 0
    assert main([*common, "--out", str(tmp_path / "off"), "--ema-decay", "0"]) == 0
    decay = {name: yaml.safe_load((tmp_path / name / "config.yaml").read_text())["training"]["ema_decay"]
             for name in ("auto", "off")}
    assert decay == {"auto": pytest.approx(0.9801), "off": None}
    with pytest.raises(SystemExit):
        main([*common, "--out", str(tmp_path / "bad"), "--ema-decay", "1"])
    assert "expected 'auto', 0 (off) or a number in (0, 1), got '1'" in capsys.readouterr().err
