#!/usr/bin/env bash
# Issue 40's checks on a GPU in one command on the device machine (15 minutes of device time per task, start
# included). Prepare here, then run it there:
#   bash scripts/gpu_wheels.sh
#   python benchmarks/accelerator.py --part qm9 --update   (once: writes benchmarks/.cache/qm9_2000.xyz from qm9pack)
#   device run: command "bash scripts/gpu_check.sh", carry [".whl", "benchmarks/.cache/ethanol_xtb_500K_1000.xyz",
#               "benchmarks/.cache/qm9_2000.xyz"],
#               timeout_s 570
# It installs the carried wheels, runs the gpu-marked tests (every command on CUDA against the CPU; the
# synchronisations per training batch against the read-backs counted on the CPU), then
# benchmarks/accelerator.py on the GPU with the CPU column taken from the committed 2-core run, and leaves the
# logs and results under $OUT (at most 8 files come back); copy accelerator*.{json,md} into benchmarks/results/.
# A dry run here, on the CPU: PYTEST_MARK="not slow" BENCH_ARGS="--devices cpu --train-frames 64 --epochs 1"
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu_check_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__, 'cuda:', torch.cuda.is_available())"
} | tee "$out/gpu.txt"
timeout "${TEST_SECONDS:-180}" python3 -m pytest -p no:cacheprovider -q -m "${PYTEST_MARK:-gpu}" \
  tests/unit/test_device.py tests/unit/test_training_read_backs.py tests/unit/test_graphed_step.py tests/unit/simulate/test_graphed_forces.py \
  tests/unit/test_padding.py tests/unit/test_complete_training_pairs.py \
  tests/integration/test_commands_on_devices.py 2>&1 | tee "$out/gpu_tests.log"
tests=${PIPESTATUS[0]}
# shellcheck disable=SC2086  # BENCH_ARGS is a list of options
timeout "${BENCH_SECONDS:-330}" python3 benchmarks/accelerator.py \
  ${BENCH_ARGS:---devices cuda --cpu-from benchmarks/results/accelerator.json} 2>&1 | tee "$out/accelerator.log"
bench=${PIPESTATUS[0]}
cp benchmarks/results/accelerator.json benchmarks/results/accelerator.md "$out/" 2>/dev/null
cp benchmarks/results/accelerator_compile.json benchmarks/results/accelerator_compile.md "$out/" 2>/dev/null
echo "gpu tests: exit $tests; accelerator: exit $bench"
exit $((tests || bench))
