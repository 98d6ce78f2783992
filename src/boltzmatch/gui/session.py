"""What the window works on: a working folder for new runs, the current data file, the runs found
there (with their parents), and the settings that persist between sessions (QSettings)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal

from ..runs import run_dir as rd

RECENT = 8


class Session(QObject):
    data_changed = Signal(str)
    runs_changed = Signal()

    def __init__(self, workdir: str | Path, settings: QSettings, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data: str | None = None
        self.extra_runs: list[Path] = []

    # data ---------------------------------------------------------------------------------------
    def set_data(self, path: str | Path) -> None:
        self.data = str(path)
        recent = [self.data] + [p for p in self.recent_files() if p != self.data]
        self.settings.setValue("recent/data", recent[:RECENT])
        self.data_changed.emit(self.data)

    def recent_files(self) -> list[str]:
        value = self.settings.value("recent/data", [])
        if isinstance(value, str):  # QSettings returns one item as a plain string
            value = [value]
        return [str(v) for v in value or []]

    # compute device -----------------------------------------------------------------------------
    def device(self) -> str:
        """Where training and MD started from the app compute (``auto``: CUDA when present); persists."""
        return str(self.settings.value("compute/device", "auto"))

    def set_device(self, device: str) -> None:
        from ..utils.device import resolve_device

        resolve_device(device)  # a device this machine lacks is refused here, not when a run starts
        self.settings.setValue("compute/device", device)

    def cuda_graphs(self) -> bool:
        """Whether training and MD on a CUDA device replay CUDA graphs (``--cuda-graphs``); persists, off at first."""
        return str(self.settings.value("compute/cuda_graphs", "false")).lower() in ("true", "1")

    def set_cuda_graphs(self, on: bool) -> None:
        self.settings.setValue("compute/cuda_graphs", "true" if on else "false")

    def compute_options(self) -> dict:
        """What a training or MD call from the app takes from Settings: ``device``, and ``cuda_graphs`` where the
        device is a CUDA one (elsewhere graphs do not apply, and asking would only warn)."""
        from ..utils.device import resolve_device

        options: dict = {"device": self.device()}
        if self.cuda_graphs() and resolve_device(options["device"]).type == "cuda":
            options["cuda_graphs"] = True
        return options

    # runs ---------------------------------------------------------------------------------------
    def new_path(self, stem: str, suffix: str = "") -> Path:
        """A name under the working folder that does not exist yet (``stem``, ``stem_2``, …)."""
        candidate, k = self.workdir / f"{stem}{suffix}", 1
        while candidate.exists():
            k += 1
            candidate = self.workdir / f"{stem}_{k}{suffix}"
        return candidate

    def add_run(self, path: str | Path) -> None:
        path = Path(path)
        if path.parent != self.workdir and path not in self.extra_runs:
            self.extra_runs.append(path)
        self.runs_changed.emit()

    def runs(self) -> list[Path]:
        """Energy-model run directories (config.yaml and model.pt) in the working folder and opened ones."""
        found = [p for p in sorted(self.workdir.iterdir()) if _is_model_run(p)] if self.workdir.exists() else []
        return found + [p for p in self.extra_runs if _is_model_run(p) and p not in found]

    def classifier_runs(self) -> list[Path]:
        """Generative runs with a classifier (jem, classifier) in the working folder: their landscapes are
        the hinge and cross-entropy ones."""
        if not self.workdir.exists():
            return []
        return [p for p in sorted(self.workdir.iterdir()) if _is_classifier_run(p)]

    def parent_of(self, run: Path) -> str | None:
        try:
            parent = rd.read_config(run).get("parent")
        except Exception:  # noqa: BLE001 (a half-written run has no parent to show)
            return None
        return str(parent) if parent else None


def _is_classifier_run(path: Path) -> bool:
    if not (path / rd.CONFIG).is_file() or not (path / rd.MODEL).is_file():
        return False
    try:
        config = rd.read_config(path)
    except Exception:  # noqa: BLE001
        return False
    return config.get("kind") == "generative" and config.get("model", {}).get("name") in ("jem", "classifier")


def _is_model_run(path: Path) -> bool:
    if not (path / rd.CONFIG).is_file() or not (path / rd.MODEL).is_file():
        return False
    try:
        return rd.read_config(path).get("kind") in (None, "model")
    except Exception:  # noqa: BLE001
        return False
