#!/usr/bin/env bash
# NequIP 0.19 in its own environment: its e3nn >= 0.6 excludes the e3nn 0.4.4 that mace-torch pins, so it
# cannot share the main venv. boltzmatch's core and pytest beside it; the test
# tests/integration/test_nequip_environment.py runs the NequIP adapter's tests there.
# Usage: bash scripts/nequip_env.sh [VENV]  (default .venv-nequip); VENV/READY when done, VENV/FAILED if not.
set -uo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-nequip}"
rm -rf "$venv"
python3 -m venv "$venv"
if "$venv/bin/pip" install -q torch==2.13.0 "nequip==0.19.1" pytest hypothesis -e . ; then
  touch "$venv/READY"
else
  touch "$venv/FAILED"
fi
