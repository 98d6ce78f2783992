"""Training GFlowNets: on-policy batches of trajectories, one loss, Adam (log Z with its own learning
rate, 0.1 as in torchgfn's examples), the run-directory contract (config.yaml ``kind: gflownet``,
model.pt, checkpoint.pt, metrics.csv, summary.txt) and exact ``resume``. Enumerable environments
report the exact L1 and log Z every ``eval_every`` iterations (progress bar and metrics.csv)."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..errors import BoltzmatchError
from ..runs import run_dir as rd
from ..training.loop import Step, run_loop, write_summary
from ..utils.device import default_device, resolve_device, tensors_to
from ..utils.table import format_table
from .adam import FunctionalAdam
from .env import Environment
from .evaluate import evaluate_exact
from .hypergrid import Hypergrid
from .losses import LOSSES, gflownet_loss
from .model import GFlowNetModel
from .sampler import TrajectoryBuffer, concat, sample_trajectories
from .tetris import Tetris
from .torsions import Torsions

# the losses that fit flows state by state learn them only where trajectories go: on-policy they left
# low-reward states' flows wrong (alanine dipeptide 12 × 12 torsions, 32,000 trajectories, exact L1 at ε 0 →
# ε 0.1: fm 0.40 → 0.025, db 0.67 → 0.09–0.13, subtb 1.48 → 0.03–0.04; hypergrid 8²: db 7.5e-4 → 1.4e-6,
# subtb 0.0053 → 0.0046). TB does best on-policy (torsions 0.005 → 0.028, hypergrid 0.0021 → 0.0155): 0.
EXPLORATION = {"tb": 0.0, "db": 0.1, "subtb": 0.1, "fm": 0.1}

ENVIRONMENTS: dict[str, type[Environment]] = {"hypergrid": Hypergrid, "tetris": Tetris, "torsions": Torsions}


@dataclass
class GFlowNetSettings:
    env: str
    env_options: dict = field(default_factory=dict)
    loss: str = "tb"
    batch_size: int = 16
    n_trajectories: int = 16_000
    lr: float = 1e-3
    lr_log_z: float = 0.1
    hidden: list = field(default_factory=lambda: [256, 256])
    backward: str = "uniform"
    tied: bool = False
    epsilon: float = 0.0
    policy_temperature: float = 1.0
    subtb_lambda: float = 0.9
    replay: int = 0
    replay_fraction: float = 0.5
    eval_every: int = 100
    seed: int = 0
    device: str = "auto"  # as asked (auto: CUDA when present); a resumed run keeps it unless another is given

    @classmethod
    def from_config(cls, training: dict) -> GFlowNetSettings:
        """The settings of a run's config.yaml, also as runs written before the renames stored them
        (``temperature`` for the policy temperature; environment options ``beta``, ``energy``)."""
        training = dict(training)
        if "temperature" in training:
            training["policy_temperature"] = training.pop("temperature")
        training["env_options"] = _renamed_options(training.get("env_options") or {})
        return cls(**training)


#: environment options renamed for one word per concept: tetris's dimensionless ``beta`` is a sharpness
#: (β is 1/k_B T everywhere else), torsions' ``energy`` the reference calculator as in ``generate``
_OLD_OPTION_NAMES = {"beta": "sharpness", "energy": "calculator"}


def _renamed_options(options: dict) -> dict:
    return {_OLD_OPTION_NAMES.get(key, key): value for key, value in options.items()}


def make_env(name: str, options: dict) -> Environment:
    if name not in ENVIRONMENTS:
        raise BoltzmatchError(f"unknown environment {name!r}; expected one of {', '.join(ENVIRONMENTS)}")
    try:
        return ENVIRONMENTS[name](**_renamed_options(options))
    except TypeError as exc:
        raise BoltzmatchError(f"{name}: {exc}") from None


def build(settings: GFlowNetSettings) -> tuple[Environment, GFlowNetModel]:
    env = make_env(settings.env, settings.env_options)
    model = GFlowNetModel(env.n_features, env.n_actions, env.n_backward, hidden=settings.hidden,
                          backward=settings.backward, exit_is_reward=settings.loss == "fm", tied=settings.tied)
    return env, model


def _check_numbers(*, lr: float, lr_log_z: float, subtb_lambda: float, eval_every: int, hidden: list) -> None:
    """One-line errors naming the option (they were accepted: a negative learning rate, a 0-wide layer)."""
    for name, value in (("lr", lr), ("lr-log-z", lr_log_z), ("subtb-lambda", subtb_lambda)):
        if not value > 0:
            raise BoltzmatchError(f"--{name} must be positive, got {value}")
    if eval_every < 1:
        raise BoltzmatchError(f"--eval-every must be a positive integer, got {eval_every}")
    if not hidden or any(int(h) < 1 for h in hidden):
        raise BoltzmatchError(f"--hidden must be positive layer widths, got {' '.join(map(str, hidden))}")


def _clear_or_refuse(out: Path, overwrite: bool) -> None:
    """A new run may not land on an old one unless asked: then the old one goes, plots and all."""
    out = Path(out)
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise BoltzmatchError(f"{out}: exists and is not empty; pass --overwrite to replace it, or --resume {out}")
    import shutil

    shutil.rmtree(out)


def train_gflownet(env: str | None = None, *, out: str | Path, env_options: dict | None = None, loss: str = "tb",
                   batch_size: int = 16, n_trajectories: int = 16_000, lr: float = 1e-3, lr_log_z: float = 0.1,
                   hidden: list[int] | None = None, backward: str = "uniform", epsilon: float | None = None,
                   policy_temperature: float = 1.0, subtb_lambda: float = 0.9, replay: int = 0,
                   replay_fraction: float = 0.5, eval_every: int = 100, seed: int = 0, resume: bool = False,
                   progress: bool = True, temperature: float | None = None, overwrite: bool = False,
                   device: str = "auto") -> dict:
    """Train a GFlowNet on ``env`` (``hypergrid``: ``env_options`` ndim, height, r0, r1, r2; ``tetris``:
    width, height, sharpness, pieces; ``torsions``: molecule, bins, temperature K, calculator
    openmm|xtb|emt|RUN_DIR) with ``loss`` (tb, db, subtb, fm) on ``n_trajectories`` trajectories in batches
    of ``batch_size``. ``epsilon``: share of uniform random actions (default :data:`EXPLORATION`: 0.1 for
    db, subtb and fm, 0 for tb); ``policy_temperature`` divides the sampling policy's logits
    (``temperature`` is its old name, deprecated: kelvin is ``temperature`` everywhere else). ``replay``:
    capacity of a trajectory replay buffer (0: none); each batch then draws ``replay_fraction`` of its
    trajectories from it (once it holds that many), the rest on-policy. An ``out`` that holds a run is
    refused unless ``overwrite`` (then it is emptied first: no old plots stay). ``device``: auto (CUDA when
    present), cpu, cuda[:N]."""
    if temperature is not None:
        warnings.warn("train_gflownet(temperature=...) is deprecated and goes in the next release; use "
                      "policy_temperature=...", DeprecationWarning, stacklevel=2)
        policy_temperature = temperature
    out = Path(out)
    if resume:
        settings = GFlowNetSettings.from_config(rd.read_run_config(out, "gflownet")["training"])
    else:
        if loss not in LOSSES:
            raise BoltzmatchError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")
        if batch_size < 1 or n_trajectories < batch_size:
            raise BoltzmatchError(f"need batch_size ≥ 1 and n_trajectories ≥ batch_size, got {batch_size}, "
                                  f"{n_trajectories}")
        if replay < 0 or not 0 <= replay_fraction < 1:
            raise BoltzmatchError(f"replay must be ≥ 0 and replay_fraction in [0, 1), got {replay}, {replay_fraction}")
        if epsilon is None:
            epsilon = EXPLORATION[loss]
        if not 0 <= epsilon <= 1 or not policy_temperature > 0:
            raise BoltzmatchError(f"epsilon must lie in [0, 1] and policy_temperature be positive, got {epsilon}, "
                                  f"{policy_temperature}")
        _check_numbers(lr=lr, lr_log_z=lr_log_z, subtb_lambda=subtb_lambda, eval_every=eval_every,
                       hidden=hidden or [256, 256])
        resolve_device(device)  # a device this machine lacks is refused before --overwrite empties anything
        _clear_or_refuse(out, overwrite)
        settings = GFlowNetSettings(env=env or "hypergrid", env_options=_renamed_options(env_options or {}),
                                    loss=loss,
                                    batch_size=batch_size, n_trajectories=n_trajectories, lr=lr, lr_log_z=lr_log_z,
                                    hidden=list(hidden or [256, 256]), backward=backward, epsilon=epsilon,
                                    policy_temperature=policy_temperature, subtb_lambda=subtb_lambda, replay=replay,
                                    replay_fraction=replay_fraction, eval_every=eval_every,
                                    seed=seed)
    settings.device = device if not resume or device != "auto" else settings.device
    with default_device(resolve_device(settings.device)):  # the environments' plain factory calls land there
        torch.manual_seed(settings.seed)
        environment, model = build(settings)
        others = [p for name, p in model.named_parameters() if name != "log_z"]
        # fused: one kernel over all parameters (a 2 x 256 policy's unfused Adam step was 7 % of an iteration);
        # functional: torch.optim.Optimizer's constructor imports torch._dynamo (1.6 s), see adam.py
        optimizer = FunctionalAdam([{"params": others, "lr": settings.lr},
                                    {"params": [model.log_z], "lr": settings.lr_log_z}])
        if not resume:
            out.mkdir(parents=True, exist_ok=True)
            rd.write_config(out, {"kind": "gflownet", "model": {"name": "gflownet", **environment.options()},
                                  "normalization": {}, "training": asdict(settings)})
        step = GFlowNetStep(environment, model, optimizer, settings)
        state = run_loop(step, out, epochs=step.blocks, resume=resume, progress=progress)
        summary = {"run_dir": str(out), "env": settings.env, **settings.env_options, "loss": settings.loss,
                   "trajectories": min(state["epoch"] * settings.eval_every, step.iterations) * settings.batch_size,
                   "wall_seconds": state["rows"][-1]["time_s"] if state["rows"] else 0.0}
        if environment.enumerable:
            model.eval()
            summary.update(evaluate_exact(environment, model, settings.loss, n_samples=10_000, seed=settings.seed))
        write_summary(out, format_gflownet_summary(summary))
        return summary


class GFlowNetStep(Step):
    """A block of ``eval_every`` iterations (the last block: the rest): on-policy trajectories (a
    ``replay_fraction`` of them from the replay buffer once it holds enough), the loss, Adam; each block
    ends with a row of the mean loss and, for enumerable environments, the exact L1 and log Z."""

    unit = "batch"

    def __init__(self, env: Environment, model: GFlowNetModel, optimizer: FunctionalAdam,
                 settings: GFlowNetSettings):
        self.env, self.model, self.optimizer, self.settings = env, model, optimizer, settings
        self.generator = torch.Generator(device=torch.get_default_device()).manual_seed(settings.seed)
        self.buffer = TrajectoryBuffer(settings.replay) if settings.replay else None
        self.iterations = settings.n_trajectories // settings.batch_size
        self.blocks = -(-self.iterations // settings.eval_every)
        self.desc = f"gflownet {settings.loss}"

    def units(self, index: int) -> int:
        return min((index + 1) * self.settings.eval_every, self.iterations) - index * self.settings.eval_every

    def row_index(self, index: int) -> dict:
        done = min((index + 1) * self.settings.eval_every, self.iterations)
        return {"iteration": done, "trajectories": done * self.settings.batch_size}

    def _iteration(self) -> float:
        settings, buffer = self.settings, self.buffer
        self.model.train()
        replayed = round(settings.batch_size * settings.replay_fraction) if buffer is not None else 0
        replayed = replayed if buffer is not None and buffer.size >= replayed else 0
        batch = sample_trajectories(self.env, self.model, settings.batch_size - replayed, self.generator,
                                    settings.epsilon, settings.policy_temperature)
        if buffer is not None:
            fresh = batch
            if replayed:
                batch = concat(batch, buffer.sample(replayed, self.generator))
            buffer.add(fresh)
        loss = gflownet_loss(settings.loss, self.env, self.model, batch, settings.subtb_lambda)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def run(self, index: int, state: dict) -> dict[str, float]:
        losses = [self._iteration() for _ in range(self.units(index))]
        row = {"loss": sum(losses) / len(losses)}
        if self.env.enumerable:
            exact = evaluate_exact(self.env, self.model, self.settings.loss)
            row.update(l1_exact=exact["l1_exact"], log_z=exact["log_z"], log_z_true=exact["log_z_true"])
        return row

    def postfix(self, row: dict) -> dict[str, str]:
        if "l1_exact" not in row:
            return {"loss": f"{row['loss']:.4g}"}
        return {"L1": f"{row['l1_exact']:.3f}", "logZ": f"{row['log_z']:.3f}"}

    def model_state(self) -> dict:
        return self.model.state_dict()

    def checkpoint(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(),
                "replay": None if self.buffer is None else self.buffer.state_dict()}

    def restore(self, checkpoint: dict) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.generator.set_state(checkpoint["generator"])
        if self.buffer is not None:
            self.buffer.load_state_dict(tensors_to(checkpoint["replay"], torch.get_default_device()))
        state = checkpoint["state"]
        if "iteration" in state:  # written before the run loop: a count of iterations, not of blocks
            state["epoch"] = -(-state.pop("iteration") // self.settings.eval_every)


def format_gflownet_summary(summary: dict) -> str:
    keys = [("run_dir", "run directory"), ("env", "environment"), ("loss", "loss"),
            ("trajectories", "trajectories"), ("l1_exact", "L1 exact (Σ|P_T − R/Z|)"), ("tv_exact", "total variation"),
            ("kl_exact", "KL(R/Z ‖ P_T) (nats)"), ("jsd_exact", "JSD (nats)"),
            ("l1_empirical", "L1 empirical (sampled terminal states)"),
            ("l1_empirical_floor", "L1 empirical of as many exact draws from R/Z"), ("log_z", "log Z (model)"),
            ("log_z_true", "log Z (exact)"), ("wall_seconds", "wall time (s)")]
    return format_table([[label, summary[key]] for key, label in keys if key in summary], title="GFlowNet summary")


def load_gflownet(run_dir: str | Path) -> tuple[Environment, GFlowNetModel, GFlowNetSettings]:
    run_dir = Path(run_dir)
    config = rd.read_run_config(run_dir, "gflownet")
    settings = GFlowNetSettings.from_config(config["training"])
    env, model = build(settings)
    path = run_dir / rd.MODEL
    if not path.exists():
        raise BoltzmatchError(f"{run_dir}: no {rd.MODEL}; the run has not reached its first evaluation")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return env, model.eval(), settings
