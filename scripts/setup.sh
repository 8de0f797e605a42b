#!/usr/bin/env bash
# Installs every Debian package lode needs (when missing) and builds it.
#   scripts/setup.sh [--bench] [BUILD_DIR]     (default: build)
# --bench also installs PyTorch for Python (python3-torch), only for the comparison
# tests/bench/trainer-vs-torch.sh; lode itself does not use it.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=0
if [ "${1:-}" = "--bench" ]; then
  BENCH=1
  shift
fi

PACKAGES=(
  g++ cmake ninja-build ccache pkg-config       # toolchain
  libtorch-dev                                   # estimators (LibTorch 1.13, CPU)
  libgloo-dev                                    # headers of LibTorch's Gloo process group (data-parallel lode train)
  libopenmpi-dev openmpi-bin                     # MPI mining: mpirun -np K lode mine (optional at configure time)
  libopenblas0-openmp                            # fast BLAS for LibTorch (cooperates with its OpenMP)
  libblas-dev                                    # links the fused training step to the same BLAS (libblas.so.3)
  libboost-context-dev                           # fibers: simulators run as Boost.Context fibers
  libboost-math-dev                              # special functions (lgamma, digamma, incomplete beta)
  libeigen3-dev                                  # linear algebra (multivariate normal)
  libfmt-dev                                     # formatting of messages and tables
  libcli11-dev                                   # the lode command line
  nlohmann-json3-dev                             # JSON output and meta.json
  librandom123-dev                               # Philox counter-based random streams
  catch2                                         # tests (v2)
  libbenchmark-dev                               # micro-benchmarks
  valgrind                                       # instruction counts per event (tests/bench/galton_ir.sh)
  gnuplot-nox                                    # plots as PNG images
  python3-numpy                                  # tests check that .npy files load in numpy
  pybind11-dev python3-dev                       # the Python module lode (tools/python; optional at configure time)
  python3-matplotlib                             # the Python example of a likelihood scan (examples/python)
  python3-sklearn                                # scripts/c2st.py: the SBI benchmark's C2ST (MLPClassifier)
  make                                           # the install test builds examples/mysim with its Makefile (pkg-config)
  clang                                          # Debian's clang 14: headers compile with clang too (CTest headers_clang), fuzz targets
  libclang-rt-14-dev                             # libFuzzer and clang's sanitizer runtimes (tests/fuzz, scripts/fuzz.sh)
)
if [ "$BENCH" = 1 ]; then PACKAGES+=(python3-torch); fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

BUILD_DIR="${1:-build}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j "$(nproc)"
