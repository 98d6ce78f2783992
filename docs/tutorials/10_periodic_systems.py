# %% [markdown]
# # Periodic systems: a metal surface, its stability and its stress, training on stress, NPT
#
# Everything in boltzmatch works for periodic cells too: the neighbour lists use vesin's cell list, and the
# models see the periodic images through the pair vectors. Two things differ from a molecule. Metal atoms
# have neighbours, not bonds: the surface atoms of a slab move more than 0.5 Å from their mean neighbour
# distances all the time. Such a system therefore collapses when its distance histogram h(r) leaves the
# reference's, which is Fu et al.'s rule for solids and liquids. `--criterion auto`, the default, chooses
# it for any system whose bonds run through the periodic boundaries, and the molecular-graph criterion for
# molecules. And a periodic cell has a stress, which the ASE calculator gives for cell relaxations, training
# can fit, and `simulate --pressure` holds at a pressure.
#
# Here the system is an Al(111) slab of 27 atoms with ASE's EMT at 600 K. For real work, run longer
# trajectories (tens of ps) and train for hundreds of epochs.

# %%
import json
import shlex

import matplotlib.pyplot as plt
import numpy as np
from ase import units
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.eos import EquationOfState
from ase.filters import FrechetCellFilter
from ase.md.langevinbaoab import LangevinBAOAB
from ase.optimize import BFGS

from boltzmatch.cli.main import main
from boltzmatch.data import write_structures
from boltzmatch.simulate import BoltzmatchCalculator
from boltzmatch.simulate.output import read_thermo
from boltzmatch.units import GPA_PER_EV_A3


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

# %% [markdown]
# ## Training on stress: the equation of state
#
# The slab model above learned forces and energies only. A crystal's frames from `generate` also carry EMT's
# stress, and training uses it by default (`--stress-weight`, 10 on the virial per atom): it is what pins the
# energy's dependence on volume. One volume pins only one pressure, so `--cell-scale` runs the crystal at
# several. Two models of bulk Cu, with and without the stress term, are judged on a separately seeded run at a
# volume between the training ones, and by their equation of state against EMT's.

# %%
boltzmatch("generate Cu-fcc-2x2x2 --calculator emt --temperature 600 --time 0.25 --equilibration 200 "
           "--cell-scale 0.98,1,1.02 --out cu-train.xyz --quiet")
boltzmatch("generate Cu-fcc-2x2x2 --calculator emt --temperature 600 --time 0.25 --equilibration 200 "
           "--cell-scale 0.99 --seed 7 --out cu-test.xyz --quiet")
for name, weight in (("cu-stress", 10), ("cu-no-stress", 0)):
    boltzmatch(f"train cu-train.xyz --model schnet --epochs 12 --stress-weight {weight} --seed 0 "
               f"--out runs/{name} --quiet")
    boltzmatch(f"evaluate runs/{name} cu-test.xyz")

# %%
fig, ax = plt.subplots(figsize=(5, 3.2))
for label, calculator in (("EMT", EMT()), ("SchNet, stress 10", BoltzmatchCalculator("runs/cu-stress")),
                          ("SchNet, stress 0", BoltzmatchCalculator("runs/cu-no-stress"))):
    volumes, energies = [], []
    for a in np.linspace(3.45, 3.75, 13):
        crystal = bulk("Cu", "fcc", a=a, cubic=True)
        crystal.calc = calculator
        volumes.append(crystal.get_volume() / 4)
        energies.append(crystal.get_potential_energy() / 4)
    v0, e0, b = EquationOfState(volumes, energies).fit()
    print(f"{label:>18}: a₀ {(4 * v0) ** (1 / 3):.3f} Å, B {b * GPA_PER_EV_A3:.0f} GPa")
    ax.plot(volumes, np.asarray(energies) - min(energies), "o-" if label == "EMT" else ".-", label=label)
ax.set(xlabel="volume per atom (Å³)", ylabel="energy per atom − min (eV)", title="Cu, equation of state")
ax.legend()
fig.tight_layout()
fig.savefig("cu-eos.png", dpi=120)

# %% [markdown]
# ## NPT: the lattice constant at temperature
#
# `simulate --pressure` (GPa) holds every replica at a pressure by stochastic cell rescaling (Bernetti and Bussi
# 2020): the cells breathe, alike in every direction, so the mean volume is the model's prediction at that
# temperature, thermal expansion included. Both models run two replicas for 0.8 ps of NPT at 0 GPa and 600 K;
# ASE's own barostat (`LangevinBAOAB`, hydrostatic) with EMT itself gives the reference. Run longer (tens of ps)
# for numbers to quote: `benchmarks/npt.py` does.

# %%
reference = bulk("Cu", "fcc", cubic=True).repeat(2)
reference.calc = EMT()
dynamics = LangevinBAOAB(reference, 2 * units.fs, temperature_K=600, externalstress=0.0, hydrostatic=True,
                         T_tau=100 * units.fs, P_tau=1000 * units.fs, rng=0)
volumes = []
dynamics.attach(lambda: volumes.append(reference.get_volume()), interval=10)
dynamics.run(1000)
print(f"EMT, ASE's barostat: ⟨a⟩ {(np.mean(volumes[20:]) / 8) ** (1 / 3):.3f} Å")
for name in ("cu-stress", "cu-no-stress"):
    boltzmatch(f"simulate runs/{name} --start cu-train.xyz --pressure 0 --temperature 600 --timestep 2 --time 0.8 "
               f"--replicas 2 --out md-npt-{name} --quiet")
    thermo = read_thermo(f"md-npt-{name}/thermo.csv")  # volume_A3 and pressure_GPa beside the energies
    after = thermo["time_ps"] >= 0.2  # the cells first relax from the starting frames' volumes
    print(f"{name}: ⟨a⟩ {(thermo['volume_A3'][after].mean() / 8) ** (1 / 3):.3f} Å, "
          f"⟨P⟩ {thermo['pressure_GPa'][after].mean():+.2f} GPa")
