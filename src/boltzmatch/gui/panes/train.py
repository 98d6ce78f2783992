"""Train / fine-tune: objective, temperature, weights, σ; live learning curves read from the run's
metrics.csv; stop (the last finished epoch's checkpoint stays) and resume; the runs and their parents."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
)

from ... import finetune, train
from ...errors import BoltzmatchError
from ...objectives import OBJECTIVES
from ...objectives.registry import OBJECTIVE_DESCRIPTIONS
from ...runs import run_dir as rd
from ...training.summary import end_text
from ..widgets import LivePlot, PathField, ProgressRow
from .base import Pane


def read_metrics(run: str | Path) -> list[dict]:
    """Rows of a run's metrics.csv as floats (a line being written is left out)."""
    rows = []
    for row in rd.read_metrics(run):
        try:
            rows.append({k: float(v) for k, v in row.items() if v not in ("", None)})
        except ValueError:
            continue
    return rows


class TrainPane(Pane):
    title = "Train / fine-tune"

    def __init__(self, session, tasks, model_config, parent=None):
        super().__init__(session, tasks, parent)
        self.model_config = model_config  # callable: the Model pane's validated config
        self.current: Path | None = None
        self.new = QRadioButton("train a new model (Model pane)")
        self.new.setChecked(True)
        self.tune = QRadioButton("fine-tune the selected run")
        self.objective = QComboBox()
        for index, name in enumerate(OBJECTIVES):
            self.objective.addItem(name)
            self.objective.setItemData(index, OBJECTIVE_DESCRIPTIONS[name], Qt.ItemDataRole.ToolTipRole)
        self.objective_help = QLabel(wordWrap=True)
        self.objective_help.setStyleSheet("color: #555")
        self.objective.currentTextChanged.connect(lambda name: self.objective_help.setText(
            OBJECTIVE_DESCRIPTIONS.get(name, "")))
        self.objective.setCurrentText("energy-forces")
        self.objective_help.setText(OBJECTIVE_DESCRIPTIONS["energy-forces"])
        self.temperature = QDoubleSpinBox(decimals=1, minimum=0.0, maximum=5000.0, value=0.0, suffix=" K")
        self.temperature.setSpecialValueText("from the data")
        self.energy_weight = QLineEdit()
        self.energy_weight.setPlaceholderText("default")
        self.force_weight = QLineEdit()
        self.force_weight.setPlaceholderText("default")
        self.stress_weight = QLineEdit()
        self.stress_weight.setPlaceholderText("default: 10 for crystals with stress labels, else 0")
        self.stress_weight.setToolTip("weight of the crystals' stress term, the virial-per-atom MSE (eV²/atom²), "
                                      "supervised objectives, fisher and fisher-cd (train --stress-weight)")
        self.sigma = QLineEdit()
        self.sigma.setPlaceholderText("dsm σ in Å, e.g. 0.05 or 0.02, 0.05 (default from the data)")
        self.prior = QCheckBox("bonded prior (one molecule; a fine-tune keeps its parent's)")
        self.prior.setToolTip("harmonic bonds, angles, impropers and von Mises torsions fitted to the frames at "
                              "the temperature, and walls beyond the pair distances they filled; the network "
                              "learns the rest (train --prior bonded)")
        self.solver = QComboBox()
        self.solver.addItems(["iterative", "closed-form"])
        self.solver.setToolTip("the linear model's fit: Adam epochs (iterative), or the exact least-squares "
                               "solution in one pass (closed-form; objectives energy, fisher and ism)")
        self.validation = PathField(caption="Validation structures (labelled)")
        self.validation.edit.setPlaceholderText("10 % of the data; or a file, e.g. a separately seeded trajectory")
        self.validation.setToolTip("frames that choose the best model and drive the learning-rate schedule "
                                   "(train --val-data); frames of the training trajectory sit femtoseconds from "
                                   "training frames")
        self.element_energies = QLineEdit()
        self.element_energies.setPlaceholderText("auto; least-squares; xtb or emt isolated atoms; or H=-10.7,C=-48.8 "
                                                 "(eV)")
        self.element_energies.setToolTip("what the training compositions leave open of the energy zero (one "
                                         "molecule's frames fix only its own), as MACE's E0s "
                                         "(train/finetune --element-energies); empty: auto, the isolated atoms of "
                                         "the frames' method, and for a fine-tune its parent's choice")
        self.epochs = QSpinBox(minimum=1, maximum=100_000, value=50)
        self.batch_size = QSpinBox(minimum=1, maximum=4096, value=16)
        self.lr = QLineEdit("1e-3")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        form = QFormLayout()
        mode = QHBoxLayout()
        mode.addWidget(self.new)
        mode.addWidget(self.tune)
        form.addRow("mode", mode)
        for label, widget in (("objective", self.objective), ("", self.objective_help),
                              ("temperature", self.temperature),
                              ("energy weight", self.energy_weight), ("force weight", self.force_weight),
                              ("stress weight", self.stress_weight),
                              ("σ (dsm)", self.sigma), ("prior", self.prior), ("solver (linear)", self.solver),
                              ("validation", self.validation), ("element energies", self.element_energies),
                              ("epochs", self.epochs),
                              ("batch size", self.batch_size),
                              ("learning rate", self.lr), ("seed", self.seed)):
            form.addRow(label, widget)
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.resume_button = QPushButton("Resume selected")
        self.resume_button.clicked.connect(self.resume)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.resume_button)
        form.addRow(buttons)
        self.progress = ProgressRow()
        self.curves = LivePlot(tasks, size=(5.5, 3.6))
        self.runs = QTreeWidget()
        self.runs.setHeaderLabels(["run", "model", "objective", "epochs", VAL_FORCE_HEADER])
        self.runs.currentItemChanged.connect(lambda item, _old: self._select(item))
        self.summary = QPlainTextEdit(readOnly=True)
        self.summary.setPlaceholderText("the selected run's training summary: why it ended, held-out errors")
        self.summary.setStyleSheet("font-family: monospace")
        self.summary.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)  # a table: columns stay aligned
        self.arrange([self.progress], [form, self.runs, self.summary], self.curves)
        self.timer = self.poller(self.refresh_curves)
        session.runs_changed.connect(self.refresh_runs)
        self.refresh_runs()

    # settings → library arguments -----------------------------------------------------------------
    def _common(self) -> dict:
        kwargs: dict = {"epochs": self.epochs.value(), "batch_size": self.batch_size.value(), "seed": self.seed.value()}
        try:
            kwargs["lr"] = float(self.lr.text())
            for key, edit in (("energy_weight", self.energy_weight), ("force_weight", self.force_weight),
                              ("stress_weight", self.stress_weight)):
                if edit.text().strip():
                    kwargs[key] = float(edit.text())
            if self.sigma.text().strip():
                kwargs["sigma"] = [float(v) for v in self.sigma.text().replace(",", " ").split()]
        except ValueError as exc:
            raise BoltzmatchError(f"training settings: {exc}") from None
        if self.temperature.value() > 0:
            kwargs["temperature"] = self.temperature.value()
        if self.validation.text():
            kwargs["val_data"] = self.validation.text()
        kwargs.update(self.session.compute_options())  # Settings ▸ Compute device, CUDA graphs
        return kwargs

    def start(self) -> None:
        try:
            data = self.session.data
            if not data:
                raise BoltzmatchError("no data: open or generate structures in the Data pane first")
            kwargs = self._common()
            objective = self.objective.currentText()
            if self.element_energies.text().strip():
                kwargs["element_energies"] = self.element_energies.text().strip()
            if self.tune.isChecked():
                parent = self.selected_run()
                if parent is None:
                    raise BoltzmatchError("fine-tune: select the run to start from in the list")
                out = self.session.new_path(f"{parent.name}-{objective}")
                self._launch(finetune, str(parent), out, data=data, out=str(out), objective=objective, **kwargs)
            else:
                config = self.model_config()
                out = self.session.new_path(f"{config['name']}-{objective}")
                kwargs["objective"] = objective
                if self.prior.isChecked():
                    kwargs["prior"] = "bonded"
                if config["name"] == "linear":
                    kwargs["solver"] = self.solver.currentText()
                self._launch(train, data, out, out=str(out), model=config["name"], config=config, **kwargs)
        except BoltzmatchError as exc:
            self.show_error(str(exc), "")

    def resume(self) -> None:
        run = self.selected_run()
        if run is None:
            self.show_error("resume: select a run in the list", "")
            return
        try:
            data = rd.read_config(run)["training"]["data"]
        except (BoltzmatchError, KeyError) as exc:
            self.show_error(f"{run}: cannot resume ({exc})", "")
            return
        self._launch(train, data, run, out=str(run), resume=True, **self.session.compute_options())

    def _launch(self, fn, first, run_dir: Path, **kwargs) -> None:
        self.current = Path(run_dir)
        name = f"{fn.__name__} {self.current.name}"
        worker = self.run(fn, first, progress=self.progress, name=name, **kwargs,
                          on_result=lambda summary: self.progress.finished(f"{name}: done, {end_text(summary)}"))
        worker.signals.finished.connect(self._finished)
        self.start_button.setEnabled(False)
        self.resume_button.setEnabled(False)
        self.timer.start()

    def _finished(self) -> None:
        """The run that just ended stays the selected, plotted and summarised one (refreshing the list used
        to reselect the run selected before, e.g. a fine-tune's parent)."""
        self.timer.stop()
        self.start_button.setEnabled(True)
        self.resume_button.setEnabled(True)
        finished = self.current
        if finished is not None and finished.exists():
            self.session.add_run(finished)
        self.refresh_runs()
        if finished is not None:
            self.current = finished
            self.select_run(finished)
        self.plot_curves()
        self.show_summary()

    # runs and curves -----------------------------------------------------------------------------
    def refresh_runs(self) -> None:
        selected = self.selected_run()
        self.runs.clear()
        items: dict[str, QTreeWidgetItem] = {}
        runs = self.session.runs()
        for run in runs:
            config = rd.read_config(run)
            training = config.get("training", {})
            metrics = read_metrics(run)
            objective = training.get("objective") or training.get("loss", "")
            force = kept_force_mae(metrics, objective)
            item = QTreeWidgetItem([run.name, config["model"]["name"], objective, str(len(metrics)),
                                    "–" if force is None else f"{force:.1f}"])
            item.setData(0, 256, str(run))
            items[str(run.resolve())] = item
        for run in runs:
            item = items[str(run.resolve())]
            parent = self.session.parent_of(run)  # as given to finetune: absolute, or relative to where it ran
            holder = items.get(str(Path(parent).resolve())) if parent else None
            if holder is not None and holder is not item:
                holder.addChild(item)
            else:
                self.runs.addTopLevelItem(item)
        self.runs.expandAll()
        if selected is not None:
            self.select_run(selected)

    def selected_run(self) -> Path | None:
        item = self.runs.currentItem()
        return Path(item.data(0, 256)) if item is not None else None

    def select_run(self, run: str | Path) -> None:
        for item in self.runs.findItems(Path(run).name, _match_recursive()):
            self.runs.setCurrentItem(item)
            return

    def _select(self, item) -> None:
        if item is not None and (self.worker is None or self.worker.done):
            self.current = Path(item.data(0, 256))
            self.plot_curves()
            self.show_summary()

    def show_summary(self) -> None:
        """The current run's summary.txt (why it ended, validation and test errors), if it has one."""
        path = self.current / rd.SUMMARY if self.current is not None else None
        self.summary.setPlainText(path.read_text() if path is not None and path.exists() else "")

    def refresh_curves(self) -> None:
        """The live view: re-render (off the GUI thread) when the run's metrics.csv has grown."""
        if self.current is not None and self.changed(self.current / rd.METRICS, "curves"):
            rows, title = read_metrics(self.current), self.current.name
            self.curves.show_live(lambda figure: draw_curves(figure, rows, title))

    def plot_curves(self) -> None:
        rows = read_metrics(self.current) if self.current else []
        title = self.current.name if self.current else "no run"
        self.curves.show_final(lambda figure: draw_curves(figure, rows, title))


VAL_FORCE_HEADER = "val force MAE (meV/Å)"
#: objectives whose run keeps the last epoch's model, not the best validation loss's
_KEEPS_LAST = ("cd", "fisher-cd")


def kept_force_mae(rows: list[dict], objective: str) -> float | None:
    """The validation force MAE (meV/Å) of the epoch whose model the run kept: one unit for every objective
    (the validation losses of different objectives are not comparable); None without forces."""
    rows = [r for r in rows if "val_loss" in r]
    if not rows:
        return None
    kept = rows[-1] if objective in _KEEPS_LAST else min(rows, key=lambda r: r["val_loss"])
    return kept.get("val_force_mae_meV_A")


def draw_curves(figure, rows: list[dict], title: str) -> None:
    """Training and validation loss against epoch (log scale when positive)."""
    ax = figure.add_subplot()
    if rows:
        epochs = [r["epoch"] for r in rows]
        for key, label in (("train_loss", "train"), ("val_loss", "validation")):
            values = [r.get(key) for r in rows]
            if all(v is not None for v in values):
                ax.plot(epochs, values, "o-", ms=3, label=label)
        positive = all(r.get("train_loss", 1) > 0 and r.get("val_loss", 1) > 0 for r in rows)
        ax.set_yscale("log" if positive else "linear")
        ax.legend()
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)


def _match_recursive():
    from PySide6.QtCore import Qt

    return Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive
