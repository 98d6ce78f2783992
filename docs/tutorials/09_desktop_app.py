# %% [markdown]
# # The desktop app
#
# `boltzmatch gui` opens a Qt (PySide6, the `gui` extra) window for working locally: every pane
# drives the same functions as the CLI, in a worker thread with a progress bar and a Stop button,
# and writes the same run folders, so anything started in the app can be continued, compared or
# reported from the command line and the other way round. The working folder (`--workdir`,
# default: the last one used, else `~/boltzmatch-runs`) holds the data and runs it makes.
#
# `--screenshots DIR` runs a small workflow through every pane (generate xTB ethanol, train and
# fine-tune SchNet, compare, landscape, simulate, a four-trial sweep, a VAE, a GFlowNet), saves one
# PNG per pane and exits. This page runs it off screen, so the pictures below are the current app.

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
# What each pane does, in the order of the pictures:
#
# 1. **Data**: open extxyz, ASE db (including SchNetPack's QM9 layout) or MD17 npz files, or
#    generate frames by MD with xTB, EMT or OpenMM; a summary table, energy and force histograms,
#    and a structure viewer with a frame slider.
# 2. **Model**: SchNet, PaiNN, MLP or the linear potential, with inline validation; the form
#    round-trips the CLI's model YAML.
# 3. **Train / fine-tune**: any objective, live learning curves, Stop keeps a valid run and Resume
#    continues it; fine-tuned runs are listed under their parents.
# 4. **Compare**: errors, parity plots, and optionally MD with survival, h(r) and bond-length
#    distributions; clicking a point opens that frame in the Data pane.
# 5. **Loss landscape**: random, parameter or line directions; contour and 3-D surface.
# 6. **Simulate**: batched MD with a live survival curve and temperature.
# 7. **Sweeps**: run a W&B-style sweep with Optuna and read its report.
# 8. **Generative**, 9. **GFlowNets**: train and compare generative models and GFlowNets.
