#!/usr/bin/env bash
# Runs every test: unit tests first, then integration tests (real servers and databases on
# loopback), the reliability suite (faults injected into real processes; it prints its
# counts), then e2e tests on the real control plane (the operator-kill reliability test needs
# the bed and runs there, marked reliability). Exits non-zero on any failure,
# including a stage that collected no tests (pytest's exit code 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MODELSHIP_HELM="${MODELSHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelship}/tools/helm-${MODELSHIP_HELM_VERSION:-v3.16.4}/helm"

run_stage() {
  local name="$1"; shift
  echo "=== $name"
  set +e
  .venv/bin/python -m pytest "$@"
  local rc=$?
  set -e
  if [ $rc -eq 5 ]; then echo "stage $name collected no tests" >&2; exit 1; fi
  [ $rc -eq 0 ] || { echo "stage $name failed (pytest exit $rc)" >&2; exit $rc; }
}

run_stage unit tests/unit -q
echo "=== lint"
.venv/bin/ruff check operator tests scripts benchmarks
.venv/bin/ruff format --check operator tests scripts benchmarks
.venv/bin/mypy
(cd operator && ../.venv/bin/lint-imports ../pyproject.toml)
if [ -d tests/integration ]; then run_stage integration tests/integration -q; fi
run_stage browser tests/browser -q   # the web UI in Debian's chromium, driven by Playwright
run_stage reliability tests/reliability -q
run_stage e2e tests/e2e -q
# The image, built without a daemon by scripts/build-image.sh and run by buildah (tests/image):
# opt-in, as a cold build takes about 12 minutes on 2 cores (a warm one about 2.5).
if [ "${MODELSHIP_IMAGE_STAGE:-0}" = 1 ]; then run_stage image tests/image -q; fi
# After the session no namespace, link, route or nftables table of a bed may remain.
echo "=== test bed leftovers"
if ! .venv/bin/python -m tests.cluster.bed leftovers; then
  echo "the test bed left the objects above on the machine" >&2
  exit 1
fi
echo "all test stages passed"
