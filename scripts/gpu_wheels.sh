#!/usr/bin/env bash
# The wheels a device machine lacks for issue 40's GPU checks (scripts/gpu_check.sh). Its image (see the device
# tool's KINDS.md) has Python 3.12 with torch, numpy, scipy, matplotlib, pandas, h5py, scikit-learn, sympy,
# opt-einsum(-fx), pytest, PyYAML, tqdm and threadpoolctl, and reaches no package index: boltzmatch's other needs
# travel as wheels in .whl/ (git-ignored). tblite is not among them: the benchmark's xTB frames travel ready-made
# (benchmarks/.cache), and the GPU tests label with EMT.
# Usage: bash scripts/gpu_wheels.sh [PYTHON_VERSION, default 312] [DIR, default .whl]
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-312}
dir=${2:-.whl}
# the versions `pip install -e '.[all]'` resolves in CI (e3nn 0.4.4 is MACE's pin; the image's own e3nn is newer)
wheels=(ase==3.29.0 vesin==0.6.2 POT==0.9.7.post1 e3nn==0.4.4 mace-torch==0.3.16 matscipy==1.3.1 torch-ema==0.3
        prettytable==3.19.0 wcwidth==0.9.4 ConfigArgParse==1.9.0 GitPython==3.2.1 gitdb==4.0.12 smmap==5.0.3
        lmdb==3.0.0 orjson==3.13.0)
platforms=()
for glibc in manylinux1 manylinux2014 manylinux_2_5 manylinux_2_17 manylinux_2_24 manylinux_2_27 manylinux_2_28 \
             manylinux_2_31 manylinux_2_34 manylinux_2_35; do
  platforms+=(--platform "${glibc}_x86_64")
done
mkdir -p "$dir"
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
  "${platforms[@]}" -d "$dir" "${wheels[@]}"
# python-hostlist (MACE's SLURM helper, imported with mace.tools) publishes no wheel: built here, pure Python
python3 -m pip wheel --quiet --no-deps python-hostlist==2.3.0 -w "$dir"
ls "$dir"
du -sh "$dir"
