"""``compare``: one table with a column per model, the same MD seeds, plots, one-line errors."""

import json
import subprocess
import sys

from boltzmatch.analysis.compare import compare
from boltzmatch.simulate.output import read_samples


def test_compare_with_simulation_writes_report_and_plots(tmp_path, ethanol_xtb, linear_runs):
    result = compare(list(linear_runs), ethanol_xtb, out=tmp_path / "report", simulate=True, replicas=3,
                     time=0.1, interval=10, progress=False)
    models = result["models"]
    assert list(models) == ["energy", "fisher"]
    for entry in models.values():
        assert {"energy_mae_meV", "force_mae_meV_A", "median_time_to_collapse_ps", "collapsed_fraction"} <= set(entry)
        assert len(entry["time_to_collapse_ps"]) == 3
    # the Fisher fit is the force-matching optimum among linear potentials: lower force error on its data
    assert models["fisher"]["force_mae_meV_A"] < models["energy"]["force_mae_meV_A"]
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| metric | energy | fisher |" in report and "force MAE (meV/Å)" in report
    # the distribution metrics say how many frames they rest on (an early collapse leaves few)
    assert "| MD frames judged (before collapses) |" in report
    assert "collapse = a bond graph the test frames never visit" in report  # a molecule: the graph criterion
    for name, entry in models.items():
        frames = read_samples(tmp_path / "report" / "simulations" / name)
        assert entry["n_sample_frames"] == sum(len(replica) for replica in frames) > 3
    for plot in ("parity.png", "energy_trajectory.png", "survival.png", "ks.png"):
        assert (tmp_path / "report" / plot).stat().st_size > 1000
    # both models started from the same frames with the same seed
    starts = [json.loads((tmp_path / "report" / "simulations" / n / "simulation.json").read_text())["start_indices"]
              for n in ("energy", "fisher")]
    assert starts[0] == starts[1]
    saved = json.loads((tmp_path / "report" / "compare.json").read_text())
    assert saved["models"]["fisher"]["force_mae_meV_A"] == models["fisher"]["force_mae_meV_A"]


def test_compare_cli_prints_the_table_and_names_bad_input(tmp_path, ethanol_xtb, linear_runs):
    ok = subprocess.run([sys.executable, "-m", "boltzmatch", "compare", *map(str, linear_runs), "--test",
                         str(ethanol_xtb), "--out", str(tmp_path / "r"), "--names", "mse", "fisher", "--landscape",
                         "--landscape-grid", "3", "--quiet"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "mse" in ok.stdout and "force MAE (meV/Å)" in ok.stdout and "report:" in ok.stdout
    assert "sharpness" in ok.stdout and (tmp_path / "r" / "landscapes" / "fisher" / "contour.png").exists()
    assert "landscapes/mse/contour.png" in (tmp_path / "r" / "report.md").read_text()
    bad = subprocess.run([sys.executable, "-m", "boltzmatch", "compare", *map(str, linear_runs), "--test",
                          str(ethanol_xtb), "--out", str(tmp_path / "r2"), "--names", "only-one"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--names: expected 2" in bad.stderr
