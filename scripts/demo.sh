#!/usr/bin/env bash
# The main job: install what is needed, then run the lifecycle demo on the local control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
