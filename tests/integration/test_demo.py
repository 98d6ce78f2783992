"""``boltzmatch demo --quick``: the main job end to end at toy sizes (about a minute)."""

import subprocess
import sys


def test_quick_demo_runs_every_stage_and_writes_the_report(tmp_path):
    result = subprocess.run([sys.executable, "-m", "boltzmatch", "demo", "--quick", "--out", str(tmp_path / "demo"),
                             "--quiet"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    for name in ("linear-mse", "linear-fisher", "schnet-mse", "schnet-fisher", "schnet-dsm"):
        assert name in result.stdout
        assert (tmp_path / "demo" / "runs" / name / "model.pt").exists()
        assert (tmp_path / "demo" / "report" / "simulations" / name / "summary.json").exists()
    assert "median time to collapse (ps)" in result.stdout and "force MAE (meV/Å)" in result.stdout
    report = (tmp_path / "demo" / "report" / "report.md").read_text()
    assert "| metric | linear-mse | linear-fisher | schnet-mse | schnet-fisher | schnet-dsm |" in report
    assert (tmp_path / "demo" / "report" / "survival.png").exists()
    # a second call reuses every finished stage
    again = subprocess.run([sys.executable, "-m", "boltzmatch", "demo", "--quick", "--out", str(tmp_path / "demo"),
                            "--quiet"], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and again.stdout.count("reused") == 8
