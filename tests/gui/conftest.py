"""The desktop app under pytest-qt, offscreen. Skipped without the gui extra (PySide6, pytest-qt)."""

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


@pytest.fixture
def make_window(qtbot, tmp_path):
    """A window on a fresh working folder and settings file; its workers are stopped and joined at teardown."""
    from PySide6.QtCore import QSettings

    from boltzmatch.gui.window import MainWindow

    windows = []

    def make(workdir=None, settings_file=None):
        settings = QSettings(str(settings_file or tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(workdir=workdir or tmp_path / "work", settings=settings)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.tasks.cancel_all()
        assert window.tasks.wait(120_000), "a worker thread did not finish"
