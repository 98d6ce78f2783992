# %% [markdown]
# # The desktop app
#
# `boltzmatch gui` opens a Qt (PySide6, the `gui` extra) window for working locally: every pane
# drives the same functions as the CLI, in a worker thread with a progress bar and a Stop button,
# and writes the same run folders, so anything started in the app can be continued, compared or
# reported from the command line and the other way round. The working folder (`--workdir`,
# default: the last one used, else `~/boltzmatch-runs`) holds the data and runs it makes.
#
# `--screenshots DIR` runs a small workflow through every pane, saves one PNG per step and exits
# (`bash scripts/screenshots.sh` does so on a real X display, Xvfb, into `docs/screenshots/`). This page
# runs it off screen, so the pictures below are the current app.

# %%
import os
import shlex
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no display needed; leave it out to see the window

from boltzmatch.cli.main import main  # noqa: E402


def boltzmatch(command: str) -> None:
    print(f"$ boltzmatch {command}")
    assert main(shlex.split(command)) == 0


# the app's own data and runs go to a temporary folder: only the screenshots appear on this page
with tempfile.TemporaryDirectory(prefix="boltzmatch-gui-") as workdir:
    boltzmatch(f"gui --screenshots shots --workdir {workdir}")

# %% [markdown]
# One piece of work, in the order of the pictures (the walk the screenshots take):
#
# 1. **Data**: generate 0.15 ps of GFN2-xTB ethanol at 500 K (or open extxyz, ASE db including
#    SchNetPack's QM9 layout, MD17 npz); a summary table (energies to 0.1 meV), energy and force
#    histograms, and a 3-D structure viewer with a frame slider.
# 2. **Model**, the network builder: SchNet, PaiNN, MLP or the linear potential from parts (interactions,
#    features, cutoff, radial basis), validated as you type with a live parameter count; the YAML below
#    is the CLI's `--config` file and can be edited in place: form and YAML follow each other.
# 3. **Train / fine-tune**: train the SchNet by energy and forces, then fine-tune it by the Fisher
#    objective (each objective is explained under its name); live learning curves, Stop keeps a valid
#    run and Resume continues it, fine-tunes listed under their parents, runs compared by one number
#    (the kept epoch's validation force MAE), and the run's summary: why it ended (all epochs, early
#    stopping at epoch k of n, time budget) and its held-out errors. The linear potential's solver
#    (iterative or closed form) is chosen here.
# 4. **Compare** both runs on a *separately seeded* trajectory (there is no default: the training
#    file flatters): errors, parity plot (each model's MAE/RMSE in the legend; clicking a point opens
#    that frame of the test file in the "test frame" tab), MD survival, h(r), bond lengths, and
#    5. the **KS plots**: the empirical CDFs of MD samples and reference for potential energy, bond
#    lengths and angles, with the KS distance drawn where it is reached.
# 6. **Loss landscape** of the first run along random filter-normalised directions (or two
#    parameters from the tree, or the line to the other run); contour and rotatable surface; and
#    7. the seed's **classifier landscape**: hinge (or cross-entropy) of a digits classifier, the
#    objective list switching the runs to the classifier runs of the working folder.
# 8. **Simulate**: batched MD with a live survival curve and temperature; a stopped run's replicas are
#    drawn as censored, not collapsed; 9. the **trajectory** tab opens each replica in 3-D, a collapsed
#    one at its collapse with the bond that broke in red (here a linear potential fitted without
#    regularisation, at 2,000 K).
# 10. **Sweeps**: a W&B-style sweep run with Optuna and its report; 11. **Generative** and
#     12. **GFlowNets**: train and compare generative models and GFlowNets.
