"""The desktop app (extra ``gui``: PySide6): a Qt window over boltzmatch's Python API.

Every action is a call of a public boltzmatch function in a worker thread (:mod:`.worker`); the
GUI holds no science of its own. ``boltzmatch gui`` opens it; ``boltzmatch gui --screenshots DIR``
walks every pane through a small workflow, saves one PNG per pane and exits (:mod:`.screenshots`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def run_app(*, workdir: str | Path | None = None, screenshots: str | Path | None = None) -> int:
    """Open the window (and, with ``screenshots``, run the workflow, save the PNGs and quit)."""
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from .window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("boltzmatch")
    app.setOrganizationName("boltzmatch")
    settings = None
    if screenshots is not None:  # a fresh settings file: screenshots never depend on a user's history
        settings = QSettings(str(Path(screenshots) / "settings.ini"), QSettings.Format.IniFormat)
        workdir = workdir or Path(screenshots) / "workdir"
    window = MainWindow(workdir=workdir, settings=settings)
    window.show()
    if screenshots is None:
        return app.exec()
    from .screenshots import walk_and_capture

    status = {"code": 0}

    def capture() -> None:
        try:
            from ..utils.table import format_table

            started = time.perf_counter()
            saved = walk_and_capture(window, Path(screenshots))
            print(format_table([[p.stem.split("-", 1)[1], str(p)] for p in saved]
                               + [["wall time (s)", f"{time.perf_counter() - started:.1f}"]],
                               header=["pane", "screenshot"], title="boltzmatch gui --screenshots"))
        except Exception as exc:  # noqa: BLE001 (report and exit non-zero, never hang)
            print(f"error: screenshots: {exc}", file=sys.stderr)
            status["code"] = 1
        finally:
            window.close()
            app.quit()

    QTimer.singleShot(0, capture)
    app.exec()
    return status["code"]
