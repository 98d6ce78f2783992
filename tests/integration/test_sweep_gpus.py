"""Issue 40: ``sweep run --gpus 0,1`` gives every running trial a GPU of its own through CUDA_VISIBLE_DEVICES
(checked with a program that records what it sees and when; no GPU is needed to hand the indices out)."""

import json

import pytest
import yaml

optuna = pytest.importorskip("optuna", reason="the sweep extra")

from boltzmatch.cli.main import main  # noqa: E402
from boltzmatch.errors import BoltzmatchError  # noqa: E402
from boltzmatch.sweep import run_sweep  # noqa: E402
from boltzmatch.sweep.gpus import check_jobs, parse_gpus  # noqa: E402
from boltzmatch.sweep.runner import load_study  # noqa: E402

PROGRAM = """import argparse, json, os, time
p = argparse.ArgumentParser(); p.add_argument('--x', type=int); a = p.parse_args()
folder = os.environ['BOLTZMATCH_TRIAL_DIR']
start = time.time(); time.sleep(0.6)
json.dump({'gpu': os.environ.get('CUDA_VISIBLE_DEVICES'), 'start': start, 'end': time.time()},
          open(os.path.join(folder, 'seen.json'), 'w'))
with open(os.path.join(folder, 'metrics.csv'), 'w') as f:
    f.write('epoch,val_loss\\n1,%d\\n' % a.x)
"""


def test_each_running_trial_has_a_gpu_of_its_own(tmp_path):
    (tmp_path / "program.py").write_text(PROGRAM)
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"method": "grid", "program": str(tmp_path / "program.py"),
                                      "metric": {"name": "val_loss", "goal": "minimize"},
                                      "parameters": {"x": {"values": [1, 2, 3, 4, 5, 6]}}}))
    summary = run_sweep(config, out=tmp_path / "s", gpus="0,1")
    assert summary["complete"] == 6
    seen = [json.loads(p.read_text()) for p in sorted((tmp_path / "s" / "trials").glob("*/seen.json"))]
    assert {s["gpu"] for s in seen} == {"0", "1"}
    for a in seen:  # two trials that ran at the same time never shared a GPU
        for b in seen:
            if a is not b and a["start"] < b["end"] and b["start"] < a["end"]:
                assert a["gpu"] != b["gpu"]
    assert any(a is not b and a["start"] < b["end"] and b["start"] < a["end"] for a in seen for b in seen)
    study, _ = load_study(tmp_path / "s")
    assert {t.user_attrs["gpu"] for t in study.trials} == {"0", "1"}


def test_bad_gpu_lists_are_one_line_errors(tmp_path, capsys):
    assert parse_gpus(None) is None and parse_gpus("0, 2") == ["0", "2"]
    for bad in ("0,a", "1,1", ""):
        with pytest.raises(BoltzmatchError, match="--gpus"):
            parse_gpus(bad)
    assert check_jobs(1, ["0", "1"]) == 2 and check_jobs(1, None) == 1
    with pytest.raises(BoltzmatchError, match="at most 2 jobs"):
        check_jobs(3, ["0", "1"])
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"method": "grid", "program": "p.py", "parameters": {"x": {"values": [1]}}}))
    assert main(["sweep", "run", str(config), "--out", str(tmp_path / "s"), "--gpus", "0,x"]) == 2
    assert "--gpus 0,x: expected distinct GPU indices" in capsys.readouterr().err
