#!/usr/bin/env bash
# The install test (CTest: install_and_plugin; or by hand: tests/install/run.sh SRC BUILD):
#  1. cmake --install BUILD into a temporary prefix;
#  2. builds the example plugin examples/mysim against it, once with find_package(lode)
#     and once with pkg-config (its Makefile), with mysim_run, a program linking it
#     directly: with --as-needed forced, the model must be registered all the same;
#  3. runs the installed lode with --plugin on it: models, check, trace, mine;
#  4. builds a program that includes every installed lode::runtime header and links only
#     lode::runtime: no LibTorch header is compiled in (dependency list) and no LibTorch
#     library is linked (ldd); one linking lode::models without calling it: the
#     reference models are registered all the same; and one that includes every
#     lode::mining and lode::inference header and uses both libraries (find_package and
#     pkg-config), again without LibTorch.
set -euo pipefail
SRC=$(cd "${1:?usage: run.sh SOURCE_DIR BUILD_DIR}" && pwd)
BUILD=$(cd "${2:?usage: run.sh SOURCE_DIR BUILD_DIR}" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lode-install-test.XXXXXX")
if [ -z "${LODE_KEEP_TMP:-}" ]; then trap 'rm -rf "$TMP"' EXIT; else echo "keeping $TMP"; fi
P=$TMP/prefix
step() { echo "== $*"; }
# a python3 that can import numpy: the one in PATH (pyenv, venv) may lack it
PY=python3
$PY -c "import numpy" 2> /dev/null || PY=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
# (no `cmd | grep -q`: under pipefail, grep -q quitting early gives cmd SIGPIPE: a failure)

# the library directory the build installs into (lib, or lib/x86_64-linux-gnu for /usr)
LIBDIR=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
LIBDIR=${LIBDIR:-lib}
step "install into $P"
cmake --install "$BUILD" --prefix "$P" > "$TMP/install.log"
for f in bin/lode include/lode/lode.hpp include/lode/version.hpp include/lode/models/galton.hpp include/lode/mining/running_mean.hpp \
         include/lode/inference/scan.hpp $LIBDIR/liblode_runtime.so $LIBDIR/liblode_models.so \
         $LIBDIR/liblode_mining.so $LIBDIR/liblode_inference.so $LIBDIR/liblode_data.so $LIBDIR/cmake/lode/lodeConfig.cmake \
         $LIBDIR/cmake/lode/lodeConfigVersion.cmake $LIBDIR/cmake/lode/lodeTargets.cmake $LIBDIR/pkgconfig/lode.pc \
         $LIBDIR/pkgconfig/lode-mining.pc $LIBDIR/pkgconfig/lode-inference.pc $LIBDIR/pkgconfig/lode-data.pc; do
  [ -e "$P/$f" ] || fail "not installed: $f"
done
LODE=$P/bin/lode
# the installed tool uses the installed libraries (RPATH $ORIGIN/../lib), not the build tree
grep -Eq "$P/(bin/\.\./)?$LIBDIR/liblode_runtime.so" <<< "$(ldd "$LODE")" || { ldd "$LODE"; fail "installed lode does not use $P/$LIBDIR"; }
n=$("$LODE" models --json | $PY -c 'import json, sys; print(len(json.load(sys.stdin)))')
[ "$n" -ge 10 ] || fail "installed lode lists $n models, expected the 10 built-in ones"

# In a sanitizer build (LODE_SANITIZE, set by CTest) the installed libraries need the
# sanitizer runtime loaded first: every program built here is built with it too.
SAN=()
[ -n "${LODE_SANITIZE:-}" ] && SAN=(-fsanitize="$LODE_SANITIZE")
export CXXFLAGS="${SAN[*]}"
GEN=(-G Ninja)
command -v ninja > /dev/null || GEN=()
step "example plugin with find_package(lode CONFIG)"
# --as-needed forced for the programs: mysim_run must keep libmysim.so all the same
cmake -S "$SRC/examples/mysim" -B "$TMP/mysim-cmake" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$P" -DCMAKE_EXE_LINKER_FLAGS=-Wl,--as-needed > "$TMP/cmake.log" || { cat "$TMP/cmake.log"; fail "configure"; }
cmake --build "$TMP/mysim-cmake" -j 2 > "$TMP/build.log" || { cat "$TMP/build.log"; fail "build"; }
PLUGIN=$TMP/mysim-cmake/libmysim.so
[ -f "$PLUGIN" ] || fail "no $PLUGIN"

step "example plugin with pkg-config"
mkdir -p "$TMP/mysim-pc"
PKG_CONFIG_PATH="$P/$LIBDIR/pkgconfig" make -s -f "$SRC/examples/mysim/Makefile" OUT="$TMP/mysim-pc" \
  LDFLAGS="-Wl,--as-needed ${SAN[*]}"
[ -f "$TMP/mysim-pc/libmysim.so" ] || fail "no libmysim.so from pkg-config"
grep -q mysim <<< "$("$LODE" --plugin "$TMP/mysim-pc/libmysim.so" models)" || fail "pkg-config plugin: no model mysim"

step "a program linking the model library directly (mysim_run, --as-needed forced) sees the model"
for prog in "$TMP/mysim-cmake/mysim_run" "$TMP/mysim-pc/mysim_run"; do
  out=$("$prog" 2>&1) || { echo "$out"; fail "$prog: the model is not registered"; }
  grep -q "mysim at its reference point, event 0: x = " <<< "$out" || { echo "$out"; fail "$prog output"; }
  grep -q "generate with sensor = 0.8: weight .*x\[0\] = 0.8$" <<< "$out" || { echo "$out"; fail "$prog: generate"; }
  grep -q "update to the second reference point: log p " <<< "$out" || { echo "$out"; fail "$prog: update"; }
done
# the trap itself: the same program linked with --as-needed alone loses the model
g++ -O2 "${SAN[@]}" -Wl,--as-needed "$SRC/examples/mysim/run.cpp" -L"$TMP/mysim-pc" -Wl,-rpath,"$TMP/mysim-pc" -lmysim \
  $(PKG_CONFIG_PATH="$P/$LIBDIR/pkgconfig" pkg-config --cflags --libs lode) -o "$TMP/mysim_run_as_needed"
if "$TMP/mysim_run_as_needed" > /dev/null 2> "$TMP/err.txt"; then
  fail "linked with --as-needed alone, mysim_run still sees the model: the test no longer tests the fix"
fi
grep -q "model 'mysim' is not registered" "$TMP/err.txt" || { cat "$TMP/err.txt"; fail "mysim_run message"; }

step "lode --plugin ... models / check / trace / mine"
"$LODE" --plugin "$PLUGIN" models --json > "$TMP/models.json"
$PY - "$TMP/models.json" <<'PY'
import json, sys
models = {m["name"]: m for m in json.load(open(sys.argv[1]))}
assert len(models) >= 11, sorted(models)
m = models["mysim"]
assert m["parameters"] == ["drift", "log_step"], m
assert m["observables"] == ["sensor", "highest", "first_above"], m
PY
"$LODE" --plugin "$PLUGIN" check mysim -n 2000 > "$TMP/check.txt" || { cat "$TMP/check.txt"; fail "lode check mysim"; }
"$LODE" --plugin "$PLUGIN" trace mysim --seed 3 --at 0.15,-0.4 > "$TMP/trace.txt" || fail "lode trace mysim"
grep -q "step/11" "$TMP/trace.txt" || { cat "$TMP/trace.txt"; fail "trace lacks step/11"; }
grep -q "sensor" "$TMP/trace.txt" || fail "trace lacks sensor"
"$LODE" --plugin "$PLUGIN" mine mysim --for local --theta 0.1,-0.5 -n 1000 --seed 5 --threads 2 \
  --out "$TMP/data" 2> "$TMP/mine.log" || { cat "$TMP/mine.log"; fail "lode mine mysim"; }
$PY - "$TMP/data" <<'PY'
import numpy, sys
d = sys.argv[1]
x, t, theta = (numpy.load(f"{d}/{n}.npy") for n in ("x", "t_xz", "theta"))
assert x.shape == (1000, 3) and t.shape == (1000, 2) and theta.shape == (1000, 2), (x.shape, t.shape, theta.shape)
assert numpy.isfinite(x).all() and numpy.isfinite(t).all()
se = t.std(axis=0) / numpy.sqrt(len(t))
assert (abs(t.mean(axis=0)) < 5 * se).all(), (t.mean(axis=0), se)   # E[t] = 0
assert ((x[:, 2] >= 0) & (x[:, 2] <= 12)).all()
PY
# errors: a missing plugin is named with dlerror's reason, exit 1
if "$LODE" --plugin "$TMP/nonexistent.so" models > /dev/null 2> "$TMP/err.txt"; then fail "missing plugin accepted"; fi
grep -q "cannot load plugin '$TMP/nonexistent.so'" "$TMP/err.txt" || { cat "$TMP/err.txt"; fail "plugin error message"; }

step "programs using only lode::runtime, and only lode::mining + lode::inference: no LibTorch"
cp -r "$SRC/tests/install/runtime_only" "$TMP/runtime_only"
(cd "$P/include" && find lode -name '*.hpp' -not -path 'lode/models/*' -not -path 'lode/estimators/*' \
   -not -path 'lode/mining/*' -not -path 'lode/inference/*' | sort | sed 's/.*/#include "&"/') \
  > "$TMP/runtime_only/headers.inc"
[ "$(wc -l < "$TMP/runtime_only/headers.inc")" -ge 10 ] || fail "few runtime headers installed"
(cd "$P/include" && find lode/mining lode/inference -name '*.hpp' | sort | sed 's/.*/#include "&"/') \
  > "$TMP/runtime_only/libraries.inc"
[ "$(wc -l < "$TMP/runtime_only/libraries.inc")" -ge 4 ] || fail "few mining / inference headers installed"
cmake -S "$TMP/runtime_only" -B "$TMP/runtime_only/build" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$P" > "$TMP/cmake2.log" || { cat "$TMP/cmake2.log"; fail "configure"; }
cmake --build "$TMP/runtime_only/build" -j 2 > "$TMP/build2.log" || { cat "$TMP/build2.log"; fail "build"; }
"$TMP/runtime_only/build/runtime_only" > /dev/null || fail "runtime_only run"
"$TMP/runtime_only/build/models_only" > /dev/null || fail "a program linking lode::models does not see the 10 models"
"$TMP/runtime_only/build/mining_inference" || fail "mining_inference run (find_package)"
# every header the programs compiled (ninja keeps them in its deps log; make in .d files)
if [ ${#GEN[@]} -gt 0 ]; then
  deps=$(ninja -C "$TMP/runtime_only/build" -t deps)
else
  deps=$(find "$TMP/runtime_only/build" -name '*.d' -not -path '*CompilerId*' -exec cat {} +)
fi
for h in driver.hpp inference/scan.hpp inference/report.hpp mining/running_mean.hpp; do
  grep -q "$P/include/lode/$h" <<< "$deps" || fail "no header dependency on lode/$h found"
done
grep -q "/Random123/" <<< "$deps" || fail "header dependencies look incomplete (no Random123)"
if grep -Eq '/(torch|ATen|c10)/' <<< "$deps"; then fail "a runtime, mining or inference header includes LibTorch"; fi
libs=$(ldd "$TMP/runtime_only/build/runtime_only")
if grep -Eiq 'libtorch|libc10' <<< "$libs"; then
  ldd "$TMP/runtime_only/build/runtime_only"; fail "lode::runtime pulls in LibTorch"
fi
grep -q liblode_runtime <<< "$libs" || fail "not linked to liblode_runtime"
libs=$(ldd "$TMP/runtime_only/build/mining_inference")
if grep -Eiq 'libtorch|libc10|liblode_estimators' <<< "$libs"; then
  ldd "$TMP/runtime_only/build/mining_inference"; fail "lode::mining or lode::inference pulls in LibTorch"
fi
for l in liblode_mining liblode_inference liblode_data liblode_runtime; do
  grep -Eq "$l\.so\.[0-9.]+ => $P/" <<< "$libs" || { ldd "$TMP/runtime_only/build/mining_inference"; fail "mining_inference: $l not from $P"; }
done
# pkg-config, plain g++
g++ -O1 "${SAN[@]}" -I"$TMP/runtime_only" "$TMP/runtime_only/mining_inference.cpp" \
  $(PKG_CONFIG_PATH="$P/$LIBDIR/pkgconfig" pkg-config --cflags --libs lode-mining lode-inference) \
  -o "$TMP/mining_inference_pc" || fail "build with pkg-config lode-mining lode-inference"
"$TMP/mining_inference_pc" > /dev/null || fail "mining_inference (pkg-config)"

if [ -e "$P/$LIBDIR/liblode_estimators.so" ]; then
  step "a program using lode::estimators (find_package and pkg-config): no LibTorch headers needed"
  [ -e "$P/$LIBDIR/pkgconfig/lode-estimators.pc" ] || fail "not installed: lode-estimators.pc"
  [ -e "$P/include/lode/estimators/estimator.hpp" ] || fail "not installed: lode/estimators/estimator.hpp"
  cp -r "$SRC/tests/install/estimators_user" "$TMP/estimators_user"
  cmake -S "$TMP/estimators_user" -B "$TMP/estimators_user/build" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$P" > "$TMP/cmake3.log" || { cat "$TMP/cmake3.log"; fail "configure"; }
  cmake --build "$TMP/estimators_user/build" -j 2 > "$TMP/build3.log" || { cat "$TMP/build3.log"; fail "build"; }
  "$TMP/estimators_user/build/estimators_user" "$TMP/est-cmake" || fail "estimators_user (find_package)"
  if [ ${#GEN[@]} -gt 0 ]; then
    deps=$(ninja -C "$TMP/estimators_user/build" -t deps)
    grep -q "$P/include/lode/estimators/estimator.hpp" <<< "$deps" || fail "no header dependencies found"
    if grep -Eq '/(torch|ATen|c10)/' <<< "$deps"; then fail "an estimators header includes LibTorch"; fi
  fi
  # pkg-config, plain g++, no LibTorch include path
  g++ -O1 "${SAN[@]}" "$TMP/estimators_user/main.cpp" $(PKG_CONFIG_PATH="$P/$LIBDIR/pkgconfig" pkg-config --cflags --libs lode-estimators) \
    -o "$TMP/estimators_user_pc" || fail "build with pkg-config lode-estimators"
  "$TMP/estimators_user_pc" "$TMP/est-pc" || fail "estimators_user (pkg-config)"

  step "installed lode: no LibTorch of its own; train / evaluate / infer run by lode-estimators beside it"
  [ -x "$P/bin/lode-estimators" ] || fail "not installed: bin/lode-estimators"
  if grep -Eiq 'libtorch|libc10' <<< "$(ldd "$LODE")"; then ldd "$LODE"; fail "installed lode links LibTorch"; fi
  grep -q 'Usage: lode train' <<< "$("$LODE" train --help)" || fail "installed lode train --help"
  "$LODE" evaluate --model "$TMP/est-cmake" --x "$TMP/nonexistent.npy" --out "$TMP/never.npy" > /dev/null 2> "$TMP/err.txt" && fail "lode evaluate of a missing file succeeded"
  grep -q 'nonexistent.npy' "$TMP/err.txt" || { cat "$TMP/err.txt"; fail "installed lode evaluate: no message naming the file"; }
fi
echo "install test: all passed"
