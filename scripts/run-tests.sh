#!/usr/bin/env bash
# Sets everything up (packages, build) and runs all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
cd build && ctest --output-on-failure -j "$(nproc)"
