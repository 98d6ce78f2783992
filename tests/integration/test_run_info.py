"""``boltzmatch info RUN_DIR``: what a run holds (it was 'is a directory; expected a structure file')."""

import json
import re

import boltzmatch
from boltzmatch.cli.main import main


def test_info_on_a_run_directory_names_its_model_training_lineage_and_energy_zero(ethanol_xtb, tmp_path, capsys,
                                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)  # parents named relative to where the fine-tune ran, as a user's are
    boltzmatch.train(ethanol_xtb, out="parent", model="linear", config={"n_rbf": 6, "cutoff": 4.0},
                     solver="closed-form", objective="energy", element_energies="least-squares", progress=False)
    boltzmatch.finetune("parent", data=ethanol_xtb, out="tuned", objective="energy", epochs=1, progress=False)
    assert main(["info", "tuned"]) == 0
    out = capsys.readouterr().out
    for row in (r"lineage \(newest first\) +tuned ← parent\n", r"energy zero +fitted only for C2H6O\n",
                r"model +linear\n", r"elements +H C O\n", r"objective +energy\n", r"epochs done +1\n",
                r"parameters +\d[\d,]*\n", r"model options +.*cutoff=4\.0"):
        assert re.search(row, out), (row, out)
    assert "Training summary" in out  # the run's own summary.txt follows
    assert main(["info", "parent", "--json"]) == 0
    description = json.loads(capsys.readouterr().out)
    assert description["lineage"] == ["parent"] and description["training"]["solver"] == "closed-form"
    assert description["n_parameters"] == sum(p.numel() for p in boltzmatch.load("parent").parameters())
    (tmp_path / "empty").mkdir()
    assert main(["info", "empty"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "empty: not a run directory (no config.yaml)" in err
