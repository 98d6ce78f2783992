"""The settings of a training run (``config.yaml`` under ``training``) and their checks."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BoltzmatchError
from ..models.prior import PRIORS
from ..objectives.registry import STRESS_OBJECTIVES
from ..objectives.supervised import LOSSES
from ..utils.device import check_precision

SCHEDULES = ("plateau", "cosine", "none")
SOLVERS = ("iterative", "closed-form")


def auto_ema_decay(batch_size: int) -> float:
    """The weight average's decay per optimizer step for ``ema_decay="auto"``: 0.99 up to batch 32 (a horizon of
    ~100 steps), and above it 0.99^(batch/32), the same horizon in structures (~3,200). With 0.99 at every batch, a
    batch of 512 averaged over ~63 epochs of weights, and validation lagged: SchNet on xTB ethanol took 418
    optimizer steps to first validate at 100 meV/Å force MAE with 0.99 and 246 with 0.851 (docs/gpu.md)."""
    return min(0.99, 0.99 ** (batch_size / 32))


#: the weight of the stress term (virial per atom, eV²/atom², objectives/supervised.py) that training of crystals
#: with stress labels (supervised objectives, fisher, fisher-cd) takes unless told: on EMT Cu at three volumes it
#: cut the held-out stress error 12× (0.98 → 0.082 GPa) for 2 % more force error, where 1 gave 0.21 GPa and 100 cost
#: 70 % more force error (docs/architecture.md, "Training on stress")
DEFAULT_STRESS_WEIGHT = 10.0


#: where the energy zero's undetermined part comes from, besides explicit values (``H=-10.7,C=-48.8``, eV)
ELEMENT_ENERGY_SOURCES = ("auto", "least-squares", "xtb", "emt")


def parse_element_energies(spec) -> str | dict[str, float] | None:
    """``--element-energies`` in its stored form: None for ``least-squares`` (the training energies fix what they
    can, the smallest norm the rest), ``xtb``/``emt`` (that method's isolated atoms fix the rest), ``auto`` (the
    default: the isolated atoms of the method every training frame names in ``info["reference_method"]``, as
    ``generate`` and refine's labels record it, else least squares; resolved when training starts), or
    {symbol: eV} from ``H=-10.7,C=-48.8`` or a mapping keyed by symbol or atomic number; one-line errors."""
    from ase.data import atomic_numbers, chemical_symbols

    if spec is None or spec == "least-squares":
        return None
    if isinstance(spec, str) and spec in ELEMENT_ENERGY_SOURCES:
        return spec
    if isinstance(spec, str):
        if "=" not in spec:
            raise BoltzmatchError(f"--element-energies: expected {', '.join(ELEMENT_ENERGY_SOURCES)} or values in "
                                  f"eV such as H=-10.7,C=-48.8, got {spec!r}")
        pairs = [item.partition("=")[::2] for item in spec.split(",") if item.strip()]
    elif isinstance(spec, dict):
        pairs = list(spec.items())
    else:
        raise BoltzmatchError(f"element_energies: expected a name or a mapping, got {spec!r}")
    values: dict[str, float] = {}
    for key, value in pairs:
        key = str(key).strip()
        symbol = chemical_symbols[int(key)] if key.isdigit() and 0 < int(key) < len(chemical_symbols) else key
        if symbol not in atomic_numbers or symbol == "X":
            raise BoltzmatchError(f"--element-energies: {key!r} is not an element symbol")
        try:
            values[symbol] = float(value)
        except (TypeError, ValueError):
            raise BoltzmatchError(f"--element-energies: {symbol}={value!r} is not a number of eV") from None
    return values


@dataclass
class TrainSettings:
    """Everything a run needs besides the model config; stored in ``config.yaml`` under ``training``."""

    data: str
    objective: str = "energy-forces"
    energy_weight: float = 1.0
    force_weight: float = 100.0
    #: None: :data:`DEFAULT_STRESS_WEIGHT` where some structure is a crystal with a stress label and the objective
    #: weighs stress (supervised, fisher, fisher-cd), else 0; the term reads the structures that carry a stress
    stress_weight: float | None = None
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    schedule: str = "plateau"
    patience: int = 20
    ema_decay: float | str | None = "auto"
    clip: float | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_method: str = "random"
    split_file: str | None = None
    #: a structure file whose frames validate (best model, schedule, ridge) instead of a share of ``data``
    val_data: str | None = None
    seed: int = 0
    max_minutes: float | None = None
    data_options: dict = field(default_factory=dict)
    temperature: float | None = None
    sigma: list | None = None
    n_probes: int = 1
    probe: str = "rademacher"
    antithetic: bool | None = None
    solver: str = "iterative"
    ridge: float | str = "auto"
    parent: str | None = None
    freeze: str | None = None
    cd_options: dict = field(default_factory=dict)
    prior: str | None = None
    huber_delta: float | None = None
    device: str = "auto"
    precision: str = "float32"
    cuda_graphs: bool = False
    #: the energy zero's part the training compositions leave open (:func:`parse_element_energies`)
    element_energies: str | dict | None = "auto"

    @classmethod
    def from_config(cls, training: dict) -> TrainSettings:
        """The settings a run's config.yaml holds; runs written before ``loss`` and ``objective`` became one
        word (``objective``) stored the supervised loss under ``loss`` and ``objective: null``, and runs from
        before training on stress have no ``stress_weight`` (0: they resume without the term)."""
        training = dict(training)
        training.setdefault("stress_weight", 0.0)  # runs from before training on stress had no stress term
        training.setdefault("element_energies", None)  # runs from before --element-energies: least squares
        loss = training.pop("loss", None)
        if training.get("objective") is None:
            training["objective"] = loss or "energy-forces"
        return cls(**training)

    @property
    def objective_name(self) -> str:
        return self.objective

    def check(self) -> TrainSettings:
        """One-line errors for values no run can use; fills the supervised weights' defaults."""
        if self.schedule not in SCHEDULES:
            raise BoltzmatchError(f"unknown schedule {self.schedule!r}; expected one of {', '.join(SCHEDULES)}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise BoltzmatchError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not self.lr > 0:
            raise BoltzmatchError(f"lr must be positive, got {self.lr}")
        if self.ema_decay == "auto":
            self.ema_decay = auto_ema_decay(self.batch_size)
        elif self.ema_decay is not None and not (isinstance(self.ema_decay, int | float) and 0 < self.ema_decay < 1):
            raise BoltzmatchError(f"ema_decay must be auto, a number in (0, 1) or None (off), got {self.ema_decay!r}")
        if self.solver not in SOLVERS:
            raise BoltzmatchError(f"unknown solver {self.solver!r}; expected one of {', '.join(SOLVERS)}")
        if self.prior is not None and self.prior not in PRIORS:
            raise BoltzmatchError(f"unknown prior {self.prior!r}; expected one of {', '.join(PRIORS)}")
        # supervised losses weigh energy 1 and forces 100 by default; score objectives add supervised
        # terms only when asked, so that they train on positions alone
        score = self.objective not in LOSSES
        if self.energy_weight is None:
            self.energy_weight = 0.0 if score else 1.0
        if self.force_weight is None:
            self.force_weight = 0.0 if score else 100.0
        if self.stress_weight is not None and not self.stress_weight >= 0:
            raise BoltzmatchError(f"stress_weight must be 0 or more, got {self.stress_weight}")
        if self.stress_weight and self.objective not in STRESS_OBJECTIVES:
            raise BoltzmatchError(f"stress-weight goes with the objectives {', '.join(STRESS_OBJECTIVES)}, "
                                  f"got objective {self.objective}")
        if self.stress_weight and self.solver == "closed-form":
            raise BoltzmatchError("stress-weight goes with the iterative solver; the closed form fits no stress")
        if self.val_data is not None and self.split_file is not None:
            raise BoltzmatchError("give val-data or split-file, not both: a split file names the validation frames "
                                  "of the training data")
        if self.sigma is not None:
            self.sigma = list(self.sigma)
        for key in ("data", "split_file", "val_data", "parent"):  # paths are stored as text
            value = getattr(self, key)
            setattr(self, key, None if value is None else str(value))
        self.precision = check_precision(self.precision)
        self.element_energies = parse_element_energies(self.element_energies)
        self.data_options = dict(self.data_options or {})
        self.cd_options = dict(self.cd_options or {})
        return self
