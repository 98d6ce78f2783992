"""Energy-based models trained by contrastive divergence: a plain EBM and JEM.

Loss (Du and Mordatch 2019): E_data[E] − E_model[E] + α·(E_data² + E_model²), the model samples
drawn from persistent chains (a replay buffer with 5 % fresh uniform restarts in the [−1, 1] box).
The defaults follow the data's dimension (:meth:`EBM.defaults_for`):

- **low-dimensional densities** (≤ 8 dimensions, the 2-D toys): Metropolis-adjusted Langevin chains
  (:func:`~boltzmatch.simulate.langevin.mala_sample`), 60 steps per update, noise √(2ε), α 0.001,
  Adam 1e-3 (β1 0) falling to 0 on a cosine over 8,000 updates. The rule for the step ε: none to
  pick — it starts at 1e-3 and adapts after every update to 57 % acceptance
  (:func:`~boltzmatch.simulate.langevin.adapt_step`); the Metropolis test keeps the chains exact for
  the current energy at any ε, so the steep walls of thin densities cannot blow them up. Measured
  (W2 / floor, MMD p): the image settings below collapse 8gaussians to one mode (17.8, 0.002);
  unadjusted Langevin with ε 1e-3 and noise √(2ε) reaches 1.00 / 0.056 on 8gaussians but diverges on
  moons (27, energies −800) where ε exceeds 2/curvature; α 0.1 or 0.01 caps the energy's range and
  blurs the modes (3.6 on 8gaussians); α 0 diverged on moons and swissroll after ~4,000 updates
  (energies 10⁵–10⁶, the adapted step 10⁻⁶: a sharper energy, smaller steps, chains that stop, a
  still sharper energy); at α 0.001 with a constant lr moons and swissroll still drifted into it
  after ~3,000 updates (data energy −22, chains' +34); the cosine decay keeps moons out of it (W2
  1.07 × floor, MMD p 0.42) but not swissroll (2.07, 0.002); unadjusted steps with the drift clipped
  below the noise kept swissroll healthy but let moons drift (chains' energy 15 above the data's by
  5,000 updates); one MALA step per chain instead of one for all made both drift sooner. Results
  with these defaults:
  ``benchmarks/results/generative_toys.md``.
- **images** (digits): short-run SGLD with the UvA deep-learning tutorial 8 settings (60 steps,
  step 10, noise 0.005, gradient clamp 0.03, α 0.1, Adam 1e-4, 1,200 updates): there MALA from
  uniform noise diverged (acceptance 0.2 %, energies −5·10⁷ within 260 epochs).

JEM's defaults are Grathwohl et al. 2020's (step 1, noise 0.01, 20 steps, buffer 10,000, reinit 0.05,
data noise 0.03).

JEM reads a classifier's logits f(x) as an energy E(x) = −logsumexp_y f(x)[y] and trains cross
entropy plus the CD term; class-conditional samples follow E(x | y) = −f(x)[y]. The ``classifier``
family is the same network with the CD term off: the baseline JEM's accuracy is judged against.

Samples are the persistent chains (the replay buffer) moved ``sample_steps`` = 20 more steps.
Measured on digits (MMD² permutation p against held-out digits, 270 each): EBM 0.78 / 0.48 /
0.002 / 0.002 after 1 / 20 / 60 / 256 steps, JEM 0.33 / 0.21 / 0.016 / 0.002 — short-run EBMs are
right for the chains they were trained with and drift to saturated modes beyond them; JEM's
class-conditional samples stay 100 % recognisable at 20 steps.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import BoltzmatchError
from ..simulate.langevin import ReplayBuffer, adapt_step, langevin_sample, mala_sample
from .base import Family, mlp, uniform

#: the EBM's defaults for low-dimensional densities (2-D toys): exact persistent chains
LOW_DIMENSIONAL = {"hidden": [256, 256], "sampler": "mala", "steps": 60, "step_size": 1e-3, "noise": None,
                   "grad_clip": None, "buffer": 8192, "reinit": 0.05, "alpha": 0.001, "data_noise": 0.0,
                   "beta1": 0.0, "sample_steps": 20, "lr_schedule": "cosine"}
#: and for images (digits): short-run SGLD as in the UvA tutorial 8 / IGEBM
IMAGES = {**LOW_DIMENSIONAL, "sampler": "sgld", "step_size": 10.0, "noise": 0.005, "grad_clip": 0.03,
          "alpha": 0.1, "data_noise": 0.005, "lr_schedule": "constant"}
#: data of more dimensions than this get the image defaults
MAX_LOW_DIMENSION = 8


class EBM(Family):
    name = "ebm"
    scaling = "range"
    defaults = LOW_DIMENSIONAL
    training = {"steps": 8000, "batch_size": 128, "lr": 1e-3}

    #: options and training for data of more than MAX_LOW_DIMENSION dimensions (None: as for any data)
    image_defaults: dict | None = IMAGES
    image_training: dict | None = {"steps": 1200, "batch_size": 128, "lr": 1e-4}

    @classmethod
    def defaults_for(cls, dim: int) -> dict:
        return cls.image_defaults if dim > MAX_LOW_DIMENSION and cls.image_defaults else cls.defaults

    @classmethod
    def training_for(cls, dim: int) -> dict:
        return cls.image_training if dim > MAX_LOW_DIMENSION and cls.image_training else cls.training

    def __init__(self, dim: int, n_classes: int = 0, options: dict | None = None):
        super().__init__(dim, n_classes, options)
        if self.options["sampler"] not in ("mala", "sgld"):
            raise BoltzmatchError(f"{self.name}: option sampler must be 'mala' or 'sgld', "
                                  f"got {self.options['sampler']!r}")
        self.nets["energy"] = mlp([dim, *self.options["hidden"], self._outputs()])
        self.buffer: ReplayBuffer | None = None
        self.step_size = float(self.options["step_size"])  # MALA adapts it; saved with the replay buffer
        self.acceptance = float("nan")
        self.updates, self.total_updates = 0, 0
        if self.options["lr_schedule"] not in ("cosine", "constant"):
            raise BoltzmatchError(f"{self.name}: option lr_schedule must be 'cosine' or 'constant', "
                                  f"got {self.options['lr_schedule']!r}")

    def plan(self, total_updates: int) -> None:
        self.total_updates = int(total_updates)

    def _outputs(self) -> int:
        return 1

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets["energy"](x).squeeze(-1)

    def build_optimizers(self, lr: float) -> None:
        self.optimizers = {"adam": torch.optim.Adam(self.nets.parameters(), lr=lr,
                                                    betas=(self.options["beta1"], 0.999))}

    def _buffer(self, generator: torch.Generator) -> ReplayBuffer:
        if self.buffer is None:
            self.buffer = ReplayBuffer(self.options["buffer"], lambda n: uniform(n, self.dim, generator),
                                       reinit=self.options["reinit"], generator=generator)
        return self.buffer

    def _sgld(self, energy_fn, start: torch.Tensor, steps: int, generator: torch.Generator,
              adapt: bool = False) -> torch.Tensor:
        o = self.options
        was_training = self.nets.training
        self.nets.eval()  # no dropout while sampling; parameters get no gradient from the chains
        try:
            if o.get("sampler", "sgld") == "mala":
                samples, self.acceptance = mala_sample(energy_fn, start, steps=steps, step_size=self.step_size,
                                                       bounds=(-1.0, 1.0), generator=generator)
                if adapt:
                    self.step_size = adapt_step(self.step_size, self.acceptance)
                return samples
            return langevin_sample(energy_fn, start, steps=steps, step_size=o["step_size"], noise=o["noise"],
                                   grad_clip=o["grad_clip"], bounds=(-1.0, 1.0), generator=generator)
        finally:
            self.nets.train(was_training)

    def contrastive_terms(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        o = self.options
        buffer = self._buffer(generator)
        index, start = buffer.draw(len(x))
        fake = self._sgld(self.energy, start, o["steps"], generator, adapt=True)
        buffer.push(index, fake)
        real = (x + o["data_noise"] * torch.randn(x.shape, generator=generator)).clamp(-1.0, 1.0)
        e_real, e_fake = self.energy(real), self.energy(fake)
        cd = e_real.mean() - e_fake.mean()
        reg = o["alpha"] * (e_real**2 + e_fake**2).mean()
        metrics = {"cd": float(cd.detach()), "energy_data": float(e_real.mean().detach()),
                   "energy_model": float(e_fake.mean().detach())}
        if o.get("sampler") == "mala":
            metrics.update(acceptance=self.acceptance, step_size=self.step_size)
        return cd + reg, metrics

    def train_step(self, x, y, generator):
        loss, metrics = self.contrastive_terms(x, generator)
        self._apply(loss)
        return {"loss": float(loss.detach()), **metrics}

    def _apply(self, loss: torch.Tensor) -> None:
        optimizer = self.optimizers["adam"]
        if self.options.get("lr_schedule") == "cosine" and self.total_updates:
            # the lr falls to 0 over the run: late in training a sharper energy, smaller MALA steps and
            # chains that stop fed each other until the energies ran away (swissroll, moons)
            progress = min(self.updates / self.total_updates, 1.0)
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * 0.5 * (1 + math.cos(math.pi * progress))
        self.updates += 1
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sample(self, n, generator, labels=None, steps: int | None = None, **options):
        """Chains from the replay buffer (as the model sees them in training), run ``steps`` more SGLD steps."""
        buffer = self._buffer(generator)
        index = torch.randint(buffer.size, (n,), generator=generator)
        return self._sgld(self.energy, buffer.samples[index], steps or self.options["sample_steps"], generator)

    def extra_state(self) -> dict:
        if self.buffer is None:
            return {}
        return {"buffer": self.buffer.state_dict(), "step_size": self.step_size, "updates": self.updates}

    def load_extra_state(self, state: dict) -> None:
        self.step_size = float(state.get("step_size", self.step_size))
        self.updates = int(state.get("updates", self.updates))
        if "buffer" in state:
            generator = torch.Generator(device=torch.get_default_device())
            self._buffer(generator).load_state_dict(state["buffer"])


class JEM(EBM):
    """A classifier whose logits define the energy (Grathwohl et al. 2020)."""

    image_defaults = image_training = None  # JEM's defaults are for digits already

    name = "jem"
    needs_labels = True
    defaults = {"hidden": [256, 256], "sampler": "sgld", "lr_schedule": "constant", "steps": 20, "step_size": 1.0,
                "noise": 0.01, "grad_clip": None, "buffer": 10_000, "reinit": 0.05, "alpha": 0.0, "data_noise": 0.03,
                "beta1": 0.9, "cd_weight": 1.0, "dropout": 0.0, "sample_steps": 20}
    training = {"steps": 4000, "batch_size": 64, "lr": 1e-4}

    def __init__(self, dim: int, n_classes: int = 0, options: dict | None = None):
        Family.__init__(self, dim, n_classes, options)
        self.nets["classifier"] = mlp([dim, *self.options["hidden"], n_classes], dropout=self.options["dropout"])
        self.buffer = None
        self.step_size, self.acceptance = float(self.options["step_size"]), float("nan")
        self.updates, self.total_updates = 0, 0

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets["classifier"](x)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.logsumexp(self.logits(x), dim=-1)

    def train_step(self, x, y, generator):
        noisy = x + self.options["data_noise"] * torch.randn(x.shape, generator=generator)
        cross_entropy = nn.functional.cross_entropy(self.logits(noisy), y)
        loss, metrics = cross_entropy, {"cross_entropy": float(cross_entropy.detach())}
        if self.options["cd_weight"]:
            cd, more = self.contrastive_terms(x, generator)
            loss = loss + self.options["cd_weight"] * cd
            metrics.update(more)
        self._apply(loss)
        return {"loss": float(loss.detach()), **metrics}

    def sample(self, n, generator, labels=None, steps: int | None = None, **options):
        """Class-conditional samples when ``labels`` (n,) are given: SGLD on E(x|y) = −f(x)[y]."""
        if labels is None:
            return super().sample(n, generator, steps=steps)
        buffer = self._buffer(generator)
        start = buffer.samples[torch.randint(buffer.size, (n,), generator=generator)]

        def conditional(x):
            return -self.logits(x).gather(1, labels[:, None]).squeeze(1)

        return self._sgld(conditional, start, steps or self.options["sample_steps"], generator)


class Classifier(JEM):
    """JEM's network trained by cross entropy alone: the baseline for JEM's accuracy."""

    name = "classifier"
    can_sample = False
    defaults = {**JEM.defaults, "cd_weight": 0.0, "data_noise": 0.0}

    def sample(self, n, generator, labels=None, **options):
        return Family.sample(self, n, generator)
