#!/usr/bin/env bash
# The impossible-replays study of docs/estimators.md: ALICE, ROLR, RASCAL and ALICES on the
# test model test_branch (θ-dependent control flow: r_xz = 0 or ∞ for ~20% of the rows),
# (a) with those rows kept, (b) with --drop-invalid (drop_invalid_rows), and (c) on its
# reparameterization test_branch_smooth (same p(x|θ), no impossible replays); RMSE and R²
# of log r̂(x|θ0, 0.5) against the exact log r on a grid (θ0 ∈ {0.2, 0.35, 0.65, 0.8},
# x ∈ [−2, 3]). The models: tests/tools/plugins/impossible_models.hpp; the study itself is
# the hidden test "impossible-replays study" of tests/estimators/test_impossible.cpp.
#
#   scripts/impossible-replays-study.sh [BUILD_DIR] (env: LODE_STUDY_EVENTS=20000, LODE_STUDY_EPOCHS=20,
#   LODE_STUDY_SEED=1 (training seed), LODE_STUDY_METHOD=alice|rolr|rascal|alices (one only))
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
export LODE_STUDY_EVENTS=${LODE_STUDY_EVENTS:-20000} LODE_STUDY_EPOCHS=${LODE_STUDY_EPOCHS:-20}
cmake --build "$BUILD" --target lode_estimator_tests > /dev/null
"$BUILD/tests/lode_estimator_tests" "[study]"
