"""The desktop app's goals (issue 15): the window opens in under 2 s, and the event loop stays
responsive (latency < 100 ms) while a training runs in its worker.

- open: wall time from starting ``python`` to the window shown (imports included), 5 fresh processes;
- latency: a 10 ms QTimer for 10 s, idle and then while the Train pane trains a SchNet on 200 xTB
  ethanol frames in its worker; latency = how late each tick fires (p50, p99, max, ms). Offscreen.

Usage: python benchmarks/gui_responsiveness.py → benchmarks/results/gui_responsiveness.{json,md}
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from common import ethanol_data, write_results

OPEN_SCRIPT = """
import time, sys
t0 = float(sys.argv[1])
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
from boltzmatch.gui.window import MainWindow
app = QApplication([])
window = MainWindow(workdir=sys.argv[2], settings=QSettings(sys.argv[2] + "/s.ini", QSettings.Format.IniFormat))
window.show()
def shown():
    print(f"{time.time() - t0:.4f}", flush=True)
    app.quit()
QTimer.singleShot(0, shown)
app.exec()
"""


def open_times(n: int = 5) -> list[float]:
    out = []
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    for _ in range(n):
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([sys.executable, "-c", OPEN_SCRIPT, repr(time.time()), tmp], env=env, check=True,
                                  capture_output=True, text=True)
            out.append(float(done.stdout.strip().splitlines()[-1]))
    return out


def tick_latencies(app, seconds: float, interval_ms: int = 10) -> np.ndarray:
    from PySide6.QtCore import QElapsedTimer, QTimer

    late, clock, last = [], QElapsedTimer(), [0.0]
    clock.start()

    def tick():
        now = clock.nsecsElapsed() / 1e6
        late.append(now - last[0] - interval_ms)
        last[0] = now

    timer = QTimer()
    timer.setTimerType(timer.timerType().PreciseTimer)
    timer.timeout.connect(tick)
    last[0] = clock.nsecsElapsed() / 1e6
    timer.start(interval_ms)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    return np.array(late[1:])


def latencies() -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from boltzmatch.gui.panes.train import read_metrics
    from boltzmatch.gui.window import MainWindow

    data = ethanol_data("ethanol500K_train200", frames=200, seed=1)
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(workdir=tmp, settings=QSettings(tmp + "/s.ini", QSettings.Format.IniFormat))
        window.show()
        window.data.open(str(data))
        while window.data.worker is None or not window.data.worker.done:
            app.processEvents()
        idle = tick_latencies(app, 10.0)
        pane = window.train
        pane.epochs.setValue(10_000)
        pane.start()
        time.sleep(1.0)  # into the epochs
        busy = tick_latencies(app, 10.0)
        epochs_seen = len(read_metrics(pane.current))
        window.tasks.cancel_all()
        window.tasks.wait(60_000)
        window.close()
    summary = {}
    for name, values in (("idle", idle), ("training", busy)):
        summary[name] = {"ticks": int(values.size), "p50_ms": float(np.percentile(values, 50)),
                         "p99_ms": float(np.percentile(values, 99)), "max_ms": float(values.max())}
    summary["training"]["epochs_during_measurement"] = epochs_seen
    return summary


def main() -> None:
    opens = open_times()
    lat = latencies()
    results = {"open_seconds": opens, "open_median_s": statistics.median(opens), "latency": lat}
    rows = [["window open (s), median of 5", statistics.median(opens), "< 2", ""],
            *[[f"event-loop latency, {k} (ms) p50 / p99 / max", f"{v['p50_ms']:.1f} / {v['p99_ms']:.1f} / "
               f"{v['max_ms']:.1f}", "< 100 (max)", f"{v['ticks']} ticks"] for k, v in lat.items()]]
    print(write_results("gui_responsiveness", results, rows, ["measure", "value", "goal", "note"]))


if __name__ == "__main__":
    main()
