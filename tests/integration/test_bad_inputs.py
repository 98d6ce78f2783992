"""Issue 43: bad numbers get one line naming the option, exit 2 and nothing written (they were tracebacks or
silently accepted), and a GFlowNet run is not overwritten without --overwrite."""

import pytest

from boltzmatch.cli.main import main

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny JEM on digits and a tiny GFlowNet on a hypergrid."""
    root = tmp_path_factory.mktemp("runs")
    assert main(["generative", "train", "jem", "--data", "digits", "--epochs", "1", "--option", "hidden=[16]",
                 "--option", "steps=2", "--out", str(root / "jem"), "--quiet"]) == 0
    assert main(["gflownet", "train", "--env", "hypergrid", "--ndim", "2", "--height", "4", "--n-trajectories",
                 "64", "--hidden", "16", "--out", str(root / "gfn"), "--quiet"]) == 0
    return root


CASES = [
    (["gflownet", "evaluate", "{gfn}", "--samples", "-5"], "--samples"),
    (["gflownet", "train", "--env", "hypergrid", "--r1", "-0.5", "--out", "{new}"], "--r1"),
    (["generative", "sample", "{jem}", "--label", "12", "--out", "{new}.npy"], "--label"),
    (["gflownet", "train", "--hidden", "0", "--out", "{new}"], "--hidden"),
    (["gflownet", "train", "--lr", "-1", "--out", "{new}"], "--lr"),
    (["gflownet", "train", "--subtb-lambda", "-1", "--loss", "subtb", "--out", "{new}"], "--subtb-lambda"),
    (["generative", "train", "gan", "--data", "moons", "--batch-size", "0", "--out", "{new}"], "--batch-size"),
    (["generative", "sample", "{jem}", "--steps", "0", "--out", "{new}.npy"], "--steps"),
    (["generative", "train", "diffusion", "--data", "moons", "--temperature", "-5", "--out", "{new}"],
     "--temperature"),
]


@pytest.mark.parametrize(("argv", "option"), CASES, ids=[" ".join(c[0][:2] + [c[1]]) for c in CASES])
def test_a_bad_number_is_one_line_naming_the_option_and_writes_nothing(runs, tmp_path, capsys, argv, option):
    new = tmp_path / "new"
    argv = [a.format(gfn=runs / "gfn", jem=runs / "jem", new=new) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and option in err and "Traceback" not in err
    assert not new.exists() and not new.with_suffix(".npy").exists()


def test_a_gflownet_run_is_replaced_only_with_overwrite(runs, tmp_path, capsys):
    out = tmp_path / "g"
    common = ["gflownet", "train", "--env", "hypergrid", "--ndim", "2", "--height", "4", "--n-trajectories", "32",
              "--hidden", "8", "--out", str(out), "--quiet"]
    assert main(common) == 0
    (out / "old-plot.png").write_bytes(b"not a plot")
    assert main(common) == 2 and "--overwrite" in capsys.readouterr().err
    assert (out / "old-plot.png").exists()  # refused: nothing touched
    assert main([*common, "--overwrite"]) == 0
    assert not (out / "old-plot.png").exists() and (out / "config.yaml").exists()
