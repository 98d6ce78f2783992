"""`boltzmatch sweep dashboard` (issue 39): Optuna's dashboard on a running sweep's storage, looked at in
headless Chromium while the sweep's trials run; and its one-line errors."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

pytest.importorskip("optuna_dashboard")

from boltzmatch.cli.main import main  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

PROGRAM = """import argparse, os, time
p = argparse.ArgumentParser(); p.add_argument('--x', type=int); a = p.parse_args()
time.sleep(1.0)
with open(os.path.join(os.environ['BOLTZMATCH_TRIAL_DIR'], 'metrics.csv'), 'w') as f:
    f.write('epoch,val_loss\\n1,%d\\n' % ((a.x - 3) ** 2))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def completed_trials(folder: Path) -> int:
    return len(list(folder.glob("trials/*/metrics.csv")))


def test_the_dashboard_shows_a_running_sweep_in_a_browser(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    program = tmp_path / "train.py"
    program.write_text(PROGRAM)
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"method": "grid", "program": str(program),
                                      "metric": {"name": "val_loss", "goal": "minimize"},
                                      "parameters": {"x": {"values": list(range(12))}}}))
    folder = tmp_path / "s"
    sweep = subprocess.Popen([sys.executable, "-m", "boltzmatch", "sweep", "run", str(config), "--out", str(folder)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    dashboard = None
    try:
        wait_for(lambda: completed_trials(folder) >= 2, 120, "two finished trials")
        dashboard = subprocess.Popen([sys.executable, "-m", "boltzmatch", "sweep", "dashboard", str(folder),
                                      "--port", str(port)], stdout=subprocess.PIPE, text=True)
        line = dashboard.stdout.readline()
        assert f"http://127.0.0.1:{port}/dashboard/studies/" in line
        page_url = line.split(" at ")[1].split()[0]
        name = json.loads((folder / "study.json").read_text())["study_name"]
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/api/studies"), 60, "the dashboard to answer")
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(page_url)
            page.wait_for_selector(f"text={name}", timeout=30_000)  # the study's name in the header
            page.wait_for_selector("text=Best Trial", timeout=30_000)  # a finished trial is on the page
            shot = Path(os.environ.get("BOLTZMATCH_DASHBOARD_PNG", tmp_path / "dashboard.png"))
            page.screenshot(path=str(shot))
            body = page.inner_text("body")
            browser.close()
        assert sweep.poll() is None, "the sweep finished before the dashboard was looked at"
        assert "val_loss" in body  # the objective named by the sweep's metric
        assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    finally:
        for process in (dashboard, sweep):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)


def test_the_dashboard_of_a_folder_that_is_no_sweep_is_one_line(tmp_path, capsys):
    assert main(["sweep", "dashboard", str(tmp_path), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a sweep folder" in err[0]
