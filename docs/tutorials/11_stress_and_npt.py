# %% [markdown]
# # Stress and NPT: training on the stress, the lattice constant at temperature
#
# A periodic cell has a stress, σ = (1/V) ∂U/∂ε (eV/Å³). Energies and forces at one volume say little about how
# the energy changes with the volume; the stress says it directly. This tutorial trains two SchNet models of bulk
# copper on EMT data, with and without the stress term, compares their equations of state with EMT's, and then
# holds both at 0 GPa and 600 K with `simulate --pressure` to read the lattice constant at temperature.
# Sizes are small so that the page builds in about two minutes; `benchmarks/npt.py` runs the same comparison for
# numbers to quote.

# %%
import shlex

import matplotlib.pyplot as plt
import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.eos import EquationOfState
from ase.io import read

from boltzmatch.cli.main import main
from boltzmatch.simulate import BoltzmatchCalculator
from boltzmatch.simulate.output import read_thermo
from boltzmatch.units import GPA_PER_EV_A3


def boltzmatch(command: str) -> None:
    print(f"$ boltzmatch {command}")
    assert main(shlex.split(command)) == 0


# %% [markdown]
# ## Training on stress: the equation of state
#
# A model fitted to energies and forces alone need not get the volume right. A crystal's frames from `generate`
# also carry EMT's stress, and training uses it by default (`--stress-weight`, 10 on the virial per atom): it is
# what pins the energy's dependence on volume. One volume pins only one pressure, so `--cell-scale` runs the
# crystal at several. Two models of bulk Cu, with and without the stress term, are judged on a separately seeded
# run at a volume between the training ones, and by their equation of state against EMT's.

# %%
boltzmatch("generate Cu-fcc-2x2x2 --calculator emt --temperature 600 --time 0.25 --interval 20 --equilibration 200 "
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
# temperature, thermal expansion included. Both models run two replicas for 0.8 ps of NPT at 0 GPa and 600 K.
# EMT itself at 0 GPa gives the reference: `generate --pressure 0` runs it under ASE's barostat (`LangevinBAOAB`,
# its cell free in shape and volume), and `--reference` hands those frames to `simulate`, whose collapse rule
# compares the replicas' h(r) with theirs (the training frames, at three fixed volumes, are no reference for a
# run at a pressure). 0.8 ps is shorter than that rule's 1 ps window of h(r), so `simulate` warns that it judges
# nothing here. Run longer (tens of ps) for numbers to quote and a judgement: `benchmarks/npt.py` does. Cu is
# cubic, so its cells scale alike in every direction; for a crystal whose axes differ (hcp, tetragonal),
# `--pressure-coupling anisotropic` lets each axis find its own length.

# %%
boltzmatch("generate Cu-fcc-2x2x2 --calculator emt --pressure 0 --temperature 600 --timestep 2 --time 2 "
           "--interval 10 --equilibration 200 --seed 3 --out cu-npt.xyz --quiet")
volumes = [cell.get_volume() for cell in read("cu-npt.xyz", index=":")]
print(f"EMT at 0 GPa: ⟨a⟩ {(np.mean(volumes) / 8) ** (1 / 3):.3f} Å")
for name in ("cu-stress", "cu-no-stress"):
    boltzmatch(f"simulate runs/{name} --start cu-train.xyz --reference cu-npt.xyz --pressure 0 --temperature 600 "
               f"--timestep 2 --time 0.8 --replicas 2 --out md-npt-{name} --quiet")
    thermo = read_thermo(f"md-npt-{name}/thermo.csv")  # volume_A3 and pressure_GPa beside the energies
    after = thermo["time_ps"] >= 0.2  # the cells first relax from the starting frames' volumes
    print(f"{name}: ⟨a⟩ {(thermo['volume_A3'][after].mean() / 8) ** (1 / 3):.3f} Å, "
          f"⟨P⟩ {thermo['pressure_GPa'][after].mean():+.2f} GPa")
