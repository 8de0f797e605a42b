#!/usr/bin/env bash
# Sets everything up (packages, build) and runs the main job on the default model (galton).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec build/tools/lode demo "$@"
