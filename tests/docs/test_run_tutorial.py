"""The tutorial runner records what a shell user would read: printed lines and warnings, in order."""

import json
import subprocess
import sys
from pathlib import Path

RUNNER = Path(__file__).resolve().parents[2] / "docs" / "_ext" / "run_tutorial.py"

SCRIPT = '''# %% [markdown]
# # Warnings

# %%
import warnings


def check():
    warnings.warn("the reference has one volume")


print("before")
check()
print("after")

# %%
check()
'''


def test_a_cell_s_warnings_are_in_its_output_in_order_and_every_cell_shows_its_own(tmp_path):
    script, record = tmp_path / "01_warn.py", tmp_path / "out.json"
    script.write_text(SCRIPT)
    subprocess.run([sys.executable, str(RUNNER), str(script), str(tmp_path / "work"), str(record)], check=True,
                   capture_output=True, text=True)
    first, second = [c["output"] for c in json.loads(record.read_text())["cells"] if c["kind"] == "code"]
    lines = first.splitlines()
    assert lines[0] == "before" and lines[-1] == "after"
    assert "UserWarning: the reference has one volume" in first
    assert "UserWarning: the reference has one volume" in second  # the same line warned again: shown again
