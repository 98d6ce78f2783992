"""Model: build a network from parts (representation, interactions, features, cutoff, radial basis …) in a
form that reads and writes the CLI's model YAML (``boltzmatch train --config FILE``), validated as you type
by the same checks the CLI runs, with a live parameter count; the YAML is editable in place and kept in step
with the form both ways."""

from __future__ import annotations

import inspect

import yaml
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...errors import BoltzmatchError
from ...models import MODELS, build_model, load_config, validate_config
from ...utils.atomic import atomic_write_text
from .base import Pane

HIDDEN_KEYS = ("max_z", "noise_levels")  # set by the library, not by hand


def defaults(name: str) -> dict:
    """The constructor defaults of model ``name`` (what the CLI uses for keys a config leaves out)."""
    params = inspect.signature(MODELS[name].__init__).parameters
    return {k: (None if p.default is inspect.Parameter.empty else p.default)
            for k, p in params.items() if k != "self" and k not in HIDDEN_KEYS}


#: what a key left empty becomes when training starts
PLACEHOLDERS = {"elements": "from the data",
                "radial_basis": "by objective: gaussian with forces, bessel for energies alone"}


class ModelPane(Pane):
    title = "Model"

    def __init__(self, session, tasks, parent=None):
        super().__init__(session, tasks, parent)
        self.name = QComboBox()
        self.name.addItems(list(MODELS))
        self.name.currentTextChanged.connect(self._rebuild_form)
        self.dtype = QComboBox()
        self.dtype.addItems(["float32", "float64"])
        self.dtype.currentTextChanged.connect(self.validate)
        self.form_host = QWidget()
        self.form = QFormLayout(self.form_host)
        self.fields: dict[str, QLineEdit] = {}
        self.status = QLabel()
        self.status.setObjectName("modelStatus")
        self.preview = QPlainTextEdit()
        self.preview.textChanged.connect(self._yaml_edited)
        self._syncing = False  # True while the form writes the YAML (not an edit by the user)
        load = QPushButton("Load YAML…")
        load.clicked.connect(self._load_dialog)
        save = QPushButton("Save YAML…")
        save.clicked.connect(self._save_dialog)
        buttons = QHBoxLayout()
        buttons.addWidget(load)
        buttons.addWidget(save)
        buttons.addStretch(1)
        head = QFormLayout()
        head.addRow("model", self.name)
        head.addRow("dtype", self.dtype)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.form_host)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("model config (YAML, as `boltzmatch train --config` reads it; edit it here or "
                                "in the form)"))
        layout.addWidget(self.preview, 1)
        self.name.setCurrentText("schnet")
        self._rebuild_form("schnet")

    def _rebuild_form(self, name: str) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.fields = {}
        for key, value in defaults(name).items():
            edit = QLineEdit("" if value is None else _yaml_value(value))
            edit.setPlaceholderText(PLACEHOLDERS.get(key, ""))
            edit.textChanged.connect(self.validate)
            self.form.addRow(key, edit)
            self.fields[key] = edit
        self.validate()

    def config(self) -> dict:
        """The config dict the form holds (raises BoltzmatchError naming the key that does not parse)."""
        config: dict = {"name": self.name.currentText(), "dtype": self.dtype.currentText()}
        for key, edit in self.fields.items():
            text = edit.text().strip()
            if not text:
                continue
            try:
                config[key] = yaml.safe_load(text)
            except yaml.YAMLError:
                raise BoltzmatchError(f"model config: key {key!r}: {text!r} is not a value") from None
        return validate_config(config)

    def validate(self) -> bool:
        """Check the form with the library's own validation and a trial build; show the verdict."""
        try:
            config = self.config()
            trial = dict(config)
            trial.setdefault("elements", [1, 6, 8])
            parameters = sum(p.numel() for p in build_model(trial).parameters())
        except BoltzmatchError as exc:
            self.status.setText(f"✗ {exc}")
            self.status.setStyleSheet("color: #b00020")
            # the last valid YAML would say something the form no longer does
            self._show_yaml(f"# not valid: {exc}\n# fix the form to see the model YAML")
            return False
        elements = "" if "elements" in config else " (for H, C, O; the data's elements decide)"
        self.status.setText(f"✓ valid: {parameters:,} parameters{elements}")
        self.status.setStyleSheet("color: #1b5e20")
        self._show_yaml(yaml.safe_dump(config, sort_keys=False))
        return True

    def _show_yaml(self, text: str) -> None:
        if self._syncing or self.preview.toPlainText() == text:
            return
        self._syncing = True
        try:
            self.preview.setPlainText(text)
        finally:
            self._syncing = False

    def _yaml_edited(self) -> None:
        """The user edited the YAML: a valid config fills the form; anything else is said in the status line."""
        if self._syncing:
            return
        text = self.preview.toPlainText()
        try:
            config = yaml.safe_load(text)
            if not isinstance(config, dict):
                raise BoltzmatchError("the YAML must be a mapping of model keys, e.g. name: schnet")
            config = validate_config(config)
        except (yaml.YAMLError, BoltzmatchError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.status.setText(f"✗ YAML: {message}")
            self.status.setStyleSheet("color: #b00020")
            return
        self._syncing = True  # the form follows the YAML; the YAML the user is typing stays as typed
        try:
            self.set_config(config)
        finally:
            self._syncing = False

    def set_config(self, config: dict) -> None:
        config = validate_config(config)
        self.name.setCurrentText(config["name"])  # rebuilds the form with defaults
        self.dtype.setCurrentText(config.get("dtype", "float32"))
        for key, value in config.items():
            if key in self.fields:
                self.fields[key].setText(_yaml_value(value))
        self.validate()

    def load(self, path: str) -> None:
        self.set_config(load_config(path))

    def save(self, path: str) -> None:
        atomic_write_text(path, yaml.safe_dump(self.config(), sort_keys=False))

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model config", str(self.session.workdir), "YAML (*.yaml *.yml)")
        if path:
            try:
                self.load(path)
            except BoltzmatchError as exc:
                self.show_error(str(exc), "")

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Model config", str(self.session.workdir / "model.yaml"),
                                              "YAML (*.yaml *.yml)")
        if path:
            try:
                self.save(path)
            except BoltzmatchError as exc:
                self.show_error(str(exc), "")


def _yaml_value(value) -> str:
    """One value as YAML flow text (5.0, true, [64, 64])."""
    value = list(value) if isinstance(value, tuple) else value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
