# %% [markdown]
# # Periodic systems: a metal surface, its stability and its stress
#
# Everything in boltzmatch works for periodic cells too: the neighbour lists use vesin's cell list, and the
# models see the periodic images through the pair vectors. Two things differ from a molecule. Metal atoms
# have neighbours, not bonds: the surface atoms of a slab move more than 0.5 Å from their mean neighbour
# distances all the time. Such a system therefore collapses when its distance histogram h(r) leaves the
# reference's, which is Fu et al.'s rule for solids and liquids. `--criterion auto`, the default, chooses
# it for any system whose bonds run through the periodic boundaries, and the molecular-graph criterion for
# molecules. And a periodic cell has a stress, which the ASE calculator gives for cell relaxations; the next
# tutorial trains on it and holds crystals at a pressure.
#
# Here the system is an Al(111) slab of 27 atoms with ASE's EMT at 600 K. For real work, run longer
# trajectories (tens of ps) and train for hundreds of epochs.

# %%
import json
import shlex

import matplotlib.pyplot as plt
import numpy as np
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS

from boltzmatch.cli.main import main
from boltzmatch.data import write_structures
from boltzmatch.simulate import BoltzmatchCalculator


def boltzmatch(command: str) -> None:
    print(f"$ boltzmatch {command}")
    assert main(shlex.split(command)) == 0


write_structures("slab.xyz", [fcc111("Al", size=(3, 3, 3), vacuum=6.0)])
for seed, name in ((0, "train"), (7, "test")):
    boltzmatch(f"generate slab.xyz --calculator emt --temperature 600 --time 1.5 --equilibration 400 "
               f"--seed {seed} --out slab-{name}.xyz --quiet")

# %% [markdown]
# Two SchNet models: one trained for 25 epochs (about half a minute here), and one stopped after a single epoch,
# as a first try often is.
# The held-out trajectory (seed 7) judges both.

# %%
for name, epochs in (("schnet", 25), ("schnet-1-epoch", 1)):
    boltzmatch(f"train slab-train.xyz --model schnet --epochs {epochs} --seed 0 --out runs/{name} --quiet")
    boltzmatch(f"evaluate runs/{name} slab-test.xyz")

# %% [markdown]
# ## Stability by h(r)
#
# Each replica's h(r) over its last 1 ps of checks is compared with the reference's. The rule cannot judge
# anything before a replica has run one window, so the runs here last 1.5 ps. The summary and
# `simulation.json` name the criterion that `auto` chose.

# %%
fig, ax = plt.subplots(figsize=(5, 3.2))
for name in ("schnet", "schnet-1-epoch"):
    boltzmatch(f"simulate runs/{name} --start slab-test.xyz --reference slab-train.xyz --temperature 600 "
               f"--replicas 4 --time 1.5 --seed 0 --out md-{name} --quiet")
    summary = json.loads(open(f"md-{name}/summary.json").read())
    ttc, collapsed = np.asarray(summary["time_to_collapse_ps"]), np.asarray(summary["collapsed"])
    t = np.linspace(0.0, summary["simulated_ps"], 300)
    ax.plot(t, [1.0 - np.mean(collapsed & (ttc <= x)) for x in t], label=name)
    print(f"{name}: criterion {summary['criterion']}, {summary['n_collapsed']}/{summary['replicas']} collapsed")
ax.set(xlabel="time (ps)", ylabel="fraction of replicas stable", ylim=(-0.05, 1.05), title="Al(111) slab, 600 K")
ax.legend()
fig.tight_layout()
fig.savefig("slab-survival.png", dpi=120)

# %% [markdown]
# ## Stress: a cell relaxation
#
# `BoltzmatchCalculator` gives the stress of periodic structures, σ = (1/V) ∂U/∂ε (eV/Å³, ASE's sign and Voigt
# order), by differentiating the energy under a strain of the positions and the cell. It is exact for every
# model. Here the slab-trained model relaxes bulk fcc aluminium, which it never saw, next to EMT itself.

# %%
for label, calculator in (("EMT", EMT()), ("SchNet (slab data)", BoltzmatchCalculator("runs/schnet"))):
    crystal = bulk("Al", "fcc", a=4.0, cubic=True).repeat((2, 2, 2))
    crystal.calc = calculator
    BFGS(FrechetCellFilter(crystal), logfile=None).run(fmax=1e-3, steps=100)
    print(f"{label:>19}: lattice constant {crystal.cell.lengths()[0] / 2:.3f} Å, "
          f"largest stress left {np.abs(crystal.get_stress()).max():.1e} eV/Å³")
