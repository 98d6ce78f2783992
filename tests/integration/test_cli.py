"""The command line: help, summaries, one-line errors with exit code 2."""

import subprocess
import sys

import pytest

from boltzmatch.cli.main import main
from boltzmatch.data import write_structures
from helpers import labelled_molecules


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "boltzmatch", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("generate", "info"):
        assert command in result.stdout


def test_info_summarises(tmp_path, capsys):
    write_structures(tmp_path / "m.xyz", labelled_molecules(4))
    assert main(["info", str(tmp_path / "m.xyz")]) == 0
    out = capsys.readouterr().out
    assert "structures" in out and "4" in out and "C2H6O ×4" in out and "energy, forces" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["info", "missing.xyz"], "missing.xyz: no such file"),
        (["info", "bad.xyz"], "bad.xyz, line 1: expected the atom count of frame 0"),
        (["info", "m.xyz", "--energy-unit", "furlong"], "unknown energy unit 'furlong'"),
        (["generate", "unobtainium", "--out", "x.xyz"], "unknown system 'unobtainium'"),
        (["generate", "ethanol", "--time", "0", "--out", "x.xyz"], "time must be positive (ps)"),
    ],
)
def test_user_errors_are_one_line(tmp_path, args, message):
    (tmp_path / "bad.xyz").write_text("not a count\n")
    write_structures(tmp_path / "m.xyz", labelled_molecules(2))
    result = subprocess.run([sys.executable, "-m", "boltzmatch", *args], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "x.xyz").exists()


def test_generate_and_info_end_to_end(tmp_path):
    out = tmp_path / "eth.xyz"
    result = run_cli("generate", "ethanol", "--time", "0.01", "--interval", "10", "--equilibration", "0",
                     "--seed", "1", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "frames written" in result.stdout and "temperature mean" in result.stdout
    info = run_cli("info", str(out), "--json")
    assert info.returncode == 0 and '"n_structures": 2' in info.stdout


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    """``boltzmatch info FILE | head -1``: the closed pipe was a BrokenPipeError traceback; now a quiet stop."""
    import subprocess
    import sys

    from boltzmatch.data import write_structures
    from helpers import labelled_molecules

    path = tmp_path / "frames.xyz"
    write_structures(path, labelled_molecules(3))
    process = subprocess.Popen([sys.executable, "-m", "boltzmatch", "info", str(path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # before the command prints anything: its first write meets a closed pipe
    _, err = process.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()
    assert process.returncode == 141
